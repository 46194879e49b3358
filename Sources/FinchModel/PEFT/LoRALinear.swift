import Foundation
import FinchKernels

/// LoRA (and DoRA) beside one projection of the decoder: `y += s·(x̃ Aᵀ) Bᵀ`, with `x̃` the input after
/// LoRA dropout (inverted dropout, a seeded mask, training only).
///
/// DoRA (PEFT's `DoraLinearLayer`): the adapted projection is `m/‖W + s·BA‖_row ⊙ (x̃ Wᵀ + s·x̃ Aᵀ Bᵀ)` (+ bias
/// on the un-dropped path), written as the delta `(k-1)⊙x̃ Wᵀ + k⊙s·x̃ Aᵀ Bᵀ` with `k = m/‖W + s·BA‖` per output
/// row. Like PEFT, the row norm is treated as a constant in the backward (it is detached there).
///
/// `A [r, in]`, `B [out, r]` are PEFT's shapes for Linear and Conv1D layers alike; only the base weight's
/// layout differs (`conv1D`: `[in, out]`, applied as `x·W`).
public final class LoRALinear: LinearAdapter {
    public let module: String
    public let a: Tensor, b: Tensor
    public let gradA: Tensor, gradB: Tensor
    /// DoRA's per-output magnitude and its gradient (nil for plain LoRA).
    public let magnitude: Tensor?, gradMagnitude: Tensor?
    public let scale: Float
    public let dropout: Float
    /// The base weight (needed by DoRA only) and its layout.
    let baseWeight: Tensor?
    let conv1D: Bool
    /// Dropout is applied only while training. Each forward's mask comes from (`seed`, `step`, the number of
    /// forwards since `step` last changed), so a resumed run, which sets the trainer's micro-batch counter as
    /// `step`, draws exactly the masks of an uninterrupted one.
    public var training = false
    public var seed: UInt64 = 0
    public var step: UInt64 = 0 { didSet { if step != oldValue { calls = 0 } } }
    private var calls: UInt64 = 0
    /// The seed and row count of the last training forward's mask; the backward regenerates the mask
    /// from them instead of keeping [rows, in] floats per adapted projection alive between the passes.
    private var maskSeed: UInt64 = 0
    private var maskRows = 0
    /// Scratch reused by every call.
    private var scratch: [Float] = [], scratch2: [Float] = [], scratch3: [Float] = []

    public var rank: Int { a.shape[0] }
    public var inFeatures: Int { a.shape[1] }
    public var outFeatures: Int { b.shape[0] }

    /// - Parameters: `baseWeight` is required for DoRA (`magnitude` non-nil); `conv1D`: the base weight is `[in, out]`.
    public init(module: String, a: Tensor, b: Tensor, scale: Float, dropout: Float = 0, magnitude: Tensor? = nil,
                baseWeight: Tensor? = nil, conv1D: Bool = false) {
        precondition(magnitude == nil || baseWeight != nil, "LoRALinear: DoRA needs the base weight")
        self.module = module; self.a = a; self.b = b; self.scale = scale; self.dropout = dropout
        self.magnitude = magnitude; self.baseWeight = baseWeight; self.conv1D = conv1D
        gradA = Tensor(shape: a.shape); gradB = Tensor(shape: b.shape)
        gradMagnitude = magnitude.map { Tensor(shape: $0.shape) }
    }

    var dropoutActive: Bool { training && dropout > 0 }

    // MARK: forward

    public func forward(x: UnsafePointer<Float>, ldx: Int, y: UnsafeMutablePointer<Float>, ldy: Int, rows: Int) {
        let r = rank, inF = inFeatures, outF = outFeatures
        guard rows > 0 else { return }
        // x̃: the dropped input (a copy) or x itself.
        var xd = x, ldxd = ldx
        var dropped: [Float] = []
        if dropoutActive {
            maskSeed = Self.mix(seed ^ Self.mix(step &+ 0x632B_E59B_D9B4_E019) ^ Self.mix(calls &+ 0x9E37_79B9_7F4A_7C15))
            calls &+= 1
            maskRows = rows
            let mask = makeMask(rows: rows)
            dropped = [Float](repeating: 0, count: rows * inF)
            for i in 0..<rows { for j in 0..<inF { dropped[i * inF + j] = x[i * ldx + j] * mask[i * inF + j] } }
        }
        ensure(&scratch, rows * r)
        dropped.withUnsafeBufferPointer { dp in
            if !dp.isEmpty { xd = dp.baseAddress!; ldxd = inF }
            scratch.withUnsafeMutableBufferPointer { u in
                // u[rows, r] = x̃·Aᵀ
                Gemm.sgemm(transA: false, transB: true, m: rows, n: r, k: inF, a: xd, lda: ldxd, b: a.ptr, ldb: inF,
                           beta: 0, c: u.baseAddress!, ldc: r)
                if let m = magnitude {
                    doraForward(xd: xd, ldxd: ldxd, u: u.baseAddress!, y: y, ldy: ldy, rows: rows, m: m)
                } else {
                    // y += s·u·Bᵀ
                    Gemm.sgemm(transA: false, transB: true, m: rows, n: outF, k: r, alpha: scale, a: u.baseAddress!, lda: r,
                               b: b.ptr, ldb: r, beta: 1, c: y, ldc: ldy)
                }
            }
        }
    }

    /// k[o] = m[o] / ‖W[o,:] + s·(BA)[o,:]‖ (the DoRA factor per output row).
    func doraFactor(_ m: Tensor) -> [Float] {
        let n = weightNorms()
        return (0..<outFeatures).map { m.ptr[$0] / n[$0] }
    }

    /// ‖W[o,:] + s·(BA)[o,:]‖ per output row o (W read as [out, in] whatever its layout).
    public func weightNorms() -> [Float] {
        let W = baseWeight!, inF = inFeatures, outF = outFeatures, r = rank
        // merged = W + s·BA in the base weight's own layout, then row (Linear) or column (Conv1D) norms,
        // walking memory in order.
        var merged = Array(UnsafeBufferPointer(start: W.ptr, count: W.count))
        merged.withUnsafeMutableBufferPointer { d in
            if conv1D {   // W[in, out] += s·(BA)ᵀ = s·Aᵀ·Bᵀ
                Gemm.sgemm(transA: true, transB: true, m: inF, n: outF, k: r, alpha: scale, a: a.ptr, lda: inF,
                           b: b.ptr, ldb: r, beta: 1, c: d.baseAddress!, ldc: outF)
            } else {      // W[out, in] += s·B·A
                Gemm.sgemm(transA: false, transB: false, m: outF, n: inF, k: r, alpha: scale, a: b.ptr, lda: r,
                           b: a.ptr, ldb: inF, beta: 1, c: d.baseAddress!, ldc: inF)
            }
        }
        var sums = [Double](repeating: 0, count: outF)
        if conv1D {
            for i in 0..<inF { for o in 0..<outF { let v = Double(merged[i * outF + o]); sums[o] += v * v } }
        } else {
            for o in 0..<outF { var acc: Double = 0; for i in 0..<inF { let v = Double(merged[o * inF + i]); acc += v * v }; sums[o] = acc }
        }
        return sums.map { Float($0.squareRoot()) }
    }

    /// base[rows, out] = x̃·Wᵀ (Linear) or x̃·W (Conv1D), without bias.
    private func baseProjection(xd: UnsafePointer<Float>, ldxd: Int, rows: Int, into base: UnsafeMutablePointer<Float>) {
        let W = baseWeight!, inF = inFeatures, outF = outFeatures
        Gemm.sgemm(transA: false, transB: !conv1D, m: rows, n: outF, k: inF, a: xd, lda: ldxd, b: W.ptr,
                   ldb: conv1D ? outF : inF, beta: 0, c: base, ldc: outF)
    }

    private func doraForward(xd: UnsafePointer<Float>, ldxd: Int, u: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                             ldy: Int, rows: Int, m: Tensor) {
        let outF = outFeatures, r = rank
        let k = doraFactor(m)
        ensure(&scratch2, rows * outF); ensure(&scratch3, rows * outF)
        scratch2.withUnsafeMutableBufferPointer { baseBuf in
            scratch3.withUnsafeMutableBufferPointer { loraBuf in
                let base = baseBuf.baseAddress!, lora = loraBuf.baseAddress!
                baseProjection(xd: xd, ldxd: ldxd, rows: rows, into: base)
                Gemm.sgemm(transA: false, transB: true, m: rows, n: outF, k: r, alpha: scale, a: u, lda: r,
                           b: b.ptr, ldb: r, beta: 0, c: lora, ldc: outF)
                for i in 0..<rows {
                    for o in 0..<outF {
                        y[i * ldy + o] += (k[o] - 1) * base[i * outF + o] + k[o] * lora[i * outF + o]
                    }
                }
            }
        }
    }

    // MARK: backward

    public func backward(x: UnsafePointer<Float>, ldx: Int, dy: UnsafePointer<Float>, ldy: Int,
                         dx: UnsafeMutablePointer<Float>?, lddx: Int, rows: Int) {
        let r = rank, inF = inFeatures, outF = outFeatures
        guard rows > 0 else { return }
        let useMask = dropoutActive
        precondition(!useMask || maskRows == rows, "LoRALinear \(module): backward of \(rows) rows after a forward of \(maskRows)")
        var dropped: [Float] = []
        let mask = useMask ? makeMask(rows: rows) : []
        if useMask {
            dropped = [Float](repeating: 0, count: rows * inF)
            for i in 0..<rows { for j in 0..<inF { dropped[i * inF + j] = x[i * ldx + j] * mask[i * inF + j] } }
        }
        // DoRA: the LoRA branch sees dy⊙k, the base branch dy⊙(k-1); dm[o] += Σ dy·(base + s·lora)/‖·‖.
        var dyEff: [Float] = [], dyBase: [Float] = []
        let norms = magnitude == nil ? [] : weightNorms()
        let k = magnitude.map { m in (0..<outF).map { m.ptr[$0] / norms[$0] } }
        ensure(&scratch, rows * r); ensure(&scratch2, rows * r)
        dropped.withUnsafeBufferPointer { dp in
            let xd = dp.isEmpty ? x : dp.baseAddress!, ldxd = dp.isEmpty ? ldx : inF
            var dyL = dy, lddyL = ldy
            if let k = k, let gm = gradMagnitude {
                dyEff = [Float](repeating: 0, count: rows * outF); dyBase = dyEff
                var base = [Float](repeating: 0, count: rows * outF), lora = base
                base.withUnsafeMutableBufferPointer { baseProjection(xd: xd, ldxd: ldxd, rows: rows, into: $0.baseAddress!) }
                scratch.withUnsafeMutableBufferPointer { u in
                    Gemm.sgemm(transA: false, transB: true, m: rows, n: r, k: inF, a: xd, lda: ldxd, b: a.ptr, ldb: inF,
                               beta: 0, c: u.baseAddress!, ldc: r)
                    lora.withUnsafeMutableBufferPointer { l in
                        Gemm.sgemm(transA: false, transB: true, m: rows, n: outF, k: r, alpha: scale, a: u.baseAddress!, lda: r,
                                   b: b.ptr, ldb: r, beta: 0, c: l.baseAddress!, ldc: outF)
                    }
                }
                var sums = [Float](repeating: 0, count: outF)
                for i in 0..<rows {
                    for o in 0..<outF {
                        let g = dy[i * ldy + o]
                        sums[o] += g * (base[i * outF + o] + lora[i * outF + o])
                        dyEff[i * outF + o] = g * k[o]
                        dyBase[i * outF + o] = g * (k[o] - 1)
                    }
                }
                for o in 0..<outF { gm.ptr[o] += sums[o] / norms[o] }
            }
            dyEff.withUnsafeBufferPointer { de in
                if !de.isEmpty { dyL = de.baseAddress!; lddyL = outF }
                scratch.withUnsafeMutableBufferPointer { uBuf in
                    scratch2.withUnsafeMutableBufferPointer { gBuf in
                        let u = uBuf.baseAddress!, g = gBuf.baseAddress!
                        // u = x̃·Aᵀ; g = s·dy·B [rows, r]
                        Gemm.sgemm(transA: false, transB: true, m: rows, n: r, k: inF, a: xd, lda: ldxd, b: a.ptr, ldb: inF,
                                   beta: 0, c: u, ldc: r)
                        Gemm.sgemm(transA: false, transB: false, m: rows, n: r, k: outF, alpha: scale, a: dyL, lda: lddyL,
                                   b: b.ptr, ldb: r, beta: 0, c: g, ldc: r)
                        // dB[out, r] += s·dyᵀ·u;  dA[r, in] += gᵀ·x̃
                        Gemm.sgemm(transA: true, transB: false, m: outF, n: r, k: rows, alpha: scale, a: dyL, lda: lddyL,
                                   b: u, ldb: r, beta: 1, c: gradB.ptr, ldc: r)
                        Gemm.sgemm(transA: true, transB: false, m: r, n: inF, k: rows, a: g, lda: r, b: xd, ldb: ldxd,
                                   beta: 1, c: gradA.ptr, ldc: inF)
                        guard let dx = dx else { return }
                        // dx̃ = g·A (+ DoRA's base branch dyBase·W); dx += dx̃ ⊙ mask
                        if !useMask && dyBase.isEmpty {
                            Gemm.sgemm(transA: false, transB: false, m: rows, n: inF, k: r, a: g, lda: r, b: a.ptr, ldb: inF,
                                       beta: 1, c: dx, ldc: lddx)
                            return
                        }
                        var dxd = [Float](repeating: 0, count: rows * inF)
                        dxd.withUnsafeMutableBufferPointer { d in
                            Gemm.sgemm(transA: false, transB: false, m: rows, n: inF, k: r, a: g, lda: r, b: a.ptr, ldb: inF,
                                       beta: 0, c: d.baseAddress!, ldc: inF)
                            if !dyBase.isEmpty, let W = baseWeight {
                                dyBase.withUnsafeBufferPointer { db in
                                    Gemm.sgemm(transA: false, transB: conv1D, m: rows, n: inF, k: outF, a: db.baseAddress!, lda: outF,
                                               b: W.ptr, ldb: conv1D ? outF : inF, beta: 1, c: d.baseAddress!, ldc: inF)
                                }
                            }
                        }
                        for i in 0..<rows {
                            for j in 0..<inF {
                                dx[i * lddx + j] += useMask ? dxd[i * inF + j] * mask[i * inF + j] : dxd[i * inF + j]
                            }
                        }
                    }
                }
            }
        }
    }

    // MARK: helpers

    public func zeroGradients() { gradA.zero(); gradB.zero(); gradMagnitude?.zero() }

    /// SplitMix64's finaliser: nearby inputs give unrelated seeds.
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The inverted-dropout multipliers (0 or 1/(1-p)) [rows, in] of the last training forward.
    private func makeMask(rows: Int) -> [Float] {
        var rng = SeededRNG(seed: maskSeed)
        let keep = 1 / (1 - dropout), p = Double(dropout)
        return (0..<(rows * inFeatures)).map { _ in rng.uniformDouble() < p ? 0 : keep }
    }

    private func ensure(_ buf: inout [Float], _ n: Int) { if buf.count < n { buf = [Float](repeating: 0, count: n) } }
}
