import Foundation

/// Rotary position embedding in Hugging Face's "rotate_half" convention (Llama):
/// `inv_freq[i] = 1/θ^(2i/hd)`, angle = `Float(pos)·inv_freq[i]` (float32, as HF), and for each head
/// `x'[i] = x[i]·cos − x[i+hd/2]·sin`, `x'[i+hd/2] = x[i+hd/2]·cos + x[i]·sin`, i < hd/2.
public final class RopeTable {
    public let headDim: Int
    public let maxPositions: Int
    let cos: UnsafeMutablePointer<Float>   // [maxPositions, headDim/2]
    let sin: UnsafeMutablePointer<Float>

    public convenience init(headDim: Int, theta: Float, maxPositions: Int) {
        self.init(headDim: headDim, inverseFrequencies: RopeTable.defaultInverseFrequencies(headDim: headDim, theta: theta),
                  maxPositions: maxPositions)
    }

    /// `inv_freq[i] = 1/θ^(2i/hd)` in float32, i < hd/2 (HF `_compute_default_rope_parameters`).
    public static func defaultInverseFrequencies(headDim: Int, theta: Float) -> [Float] {
        let half = headDim / 2
        var invFreq = [Float](repeating: 0, count: half)
        for i in 0..<half { invFreq[i] = 1 / powf(theta, Float(2 * i) / Float(headDim)) }
        return invFreq
    }

    /// A table over given inverse frequencies (hd/2 of them), e.g. scaled ones (linear, Llama 3).
    public init(headDim: Int, inverseFrequencies invFreq: [Float], maxPositions: Int) {
        precondition(headDim % 2 == 0, "RoPE needs an even head dimension, got \(headDim)")
        precondition(invFreq.count == headDim / 2, "RoPE: \(invFreq.count) inverse frequencies for head dimension \(headDim)")
        self.headDim = headDim
        self.maxPositions = max(maxPositions, 1)
        let half = headDim / 2
        cos = .allocate(capacity: self.maxPositions * max(half, 1))
        sin = .allocate(capacity: self.maxPositions * max(half, 1))
        for p in 0..<self.maxPositions {
            for i in 0..<half {
                let angle = Float(p) * invFreq[i]   // float32 product, as HF computes it
                cos[p * half + i] = Float(Foundation.cos(Double(angle)))
                sin[p * half + i] = Float(Foundation.sin(Double(angle)))
            }
        }
    }

    deinit { cos.deallocate(); sin.deallocate() }

    /// Rotates `heads` heads of every row in place. x: rows of `heads·headDim` values starting at `x`,
    /// row stride `ld`; positions: one per row. `inverse` rotates by −angle (the backward).
    public func apply(_ x: UnsafeMutablePointer<Float>, ld: Int, rows: Int, heads: Int,
                      positions: UnsafePointer<Int32>, inverse: Bool = false) {
        let half = headDim / 2
        let hd = headDim
        ThreadPool.shared.parallelFor(rows, minChunk: 32) { _, range in
            for r in range {
                let p = Int(positions[r])
                precondition(p >= 0 && p < maxPositions, "RoPE position \(p) outside 0..<\(maxPositions)")
                let c = cos + p * half, s = sin + p * half
                for h in 0..<heads {
                    let a = x + r * ld + h * hd, b = a + half
                    var i = 0
                    while i + 16 <= half {
                        let av = load16(a + i), bv = load16(b + i), cv = load16(c + i)
                        let sv = inverse ? -load16(s + i) : load16(s + i)
                        store16(av * cv - bv * sv, a + i)
                        store16(bv * cv + av * sv, b + i)
                        i += 16
                    }
                    while i < half {
                        let av = a[i], bv = b[i], cv = c[i], sv = inverse ? -s[i] : s[i]
                        a[i] = av * cv - bv * sv
                        b[i] = bv * cv + av * sv
                        i += 1
                    }
                }
            }
        }
    }
}
