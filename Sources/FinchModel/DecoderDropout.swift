import Foundation
import FinchKernels

/// The dropout of one training forward: probability, seed and step counter. Every mask is a pure
/// function of (seed, step, layer, site, element), so the backward re-derives it instead of storing
/// it, and a resumed run that sets the same step counter draws the same masks.
struct DropoutStream: Equatable {
    let p: Float
    let seed: UInt64
    let step: UInt64

    /// SplitMix64 finalizer: a well-mixed 64-bit hash of `x`.
    @inline(__always) static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The per-(layer, site) key the element hashes start from.
    func siteKey(layer: Int, site: BlockSite) -> UInt64 {
        let s = UInt64(layer) &* 2 &+ (site == .attention ? 0 : 1)
        return Self.mix(Self.mix(Self.mix(seed) ^ step) ^ s)
    }

    /// Multiplies `x[0..<count]` in place by the inverted-dropout mask of (layer, site): 0 with
    /// probability p, else 1/(1-p). Used on the sub-layer output (forward) and on its gradient (backward).
    func apply(layer: Int, site: BlockSite, to x: UnsafeMutablePointer<Float>, count: Int) {
        let key = siteKey(layer: layer, site: site)
        let scale = 1 / (1 - p), p = self.p
        ThreadPool.shared.parallelFor(count, minChunk: 16384) { _, range in
            for i in range {
                let u = Float(Self.mix(key ^ (UInt64(i) &* 0xD6E8_FEB8_6659_FD93)) >> 40) * 0x1p-24   // uniform in [0, 1)
                x[i] = u < p ? 0 : x[i] * scale
            }
        }
    }
}

extension Decoder {
    /// The dropout of the next `forwardHidden`: nil unless `training` and `dropout > 0` (so p = 0,
    /// evaluation and generation take exactly the no-dropout path).
    var activeDropout: DropoutStream? {
        guard training, dropout > 0 else { return nil }
        precondition(dropout < 1, "Decoder.dropout must be in [0, 1) (got \(dropout))")
        return DropoutStream(p: dropout, seed: dropoutSeed, step: dropoutStep)
    }

    /// The inverted-dropout multipliers (0 or 1/(1-p)) the current settings (`dropout`, `dropoutSeed`,
    /// `dropoutStep`) give the first `count` elements of `layer`'s `site` sub-layer output in a training
    /// forward; all ones when dropout is off. For tests and debugging.
    public func dropoutMask(layer: Int, site: BlockSite, count: Int) -> [Float] {
        var m = [Float](repeating: 1, count: count)
        if let d = activeDropout, count > 0 {
            m.withUnsafeMutableBufferPointer { d.apply(layer: layer, site: site, to: $0.baseAddress!, count: count) }
        }
        return m
    }

    /// The gradient w.r.t. a sub-layer's output before dropout, from the gradient after it (`dDropped`,
    /// which may be the residual gradient itself, so it is copied to `dSub` first).
    func dropoutGradient(_ d: DropoutStream, layer: Int, site: BlockSite, dDropped: UnsafeMutablePointer<Float>,
                         _ bf: DecoderBuffers) -> UnsafeMutablePointer<Float> {
        let n = bf.rows * config.hiddenSize
        let out = bf.dSub.ptr
        if dDropped != out { out.update(from: dDropped, count: n) }
        d.apply(layer: layer, site: site, to: out, count: n)
        return out
    }
}
