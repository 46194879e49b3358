import CFinchSIMD

/// Decoding's `y = x · Wᵀ` for a quantised W with x quantised to int8 first, as llama.cpp does: x rows become
/// 32-element q8_0 blocks once per call, and every weight block meets them in integer dot products (AVX-512
/// VNNI `vpdpbusd`, C kernels in CFinchSIMD). Inference only: the result differs from the fp32 product by x's
/// rounding to 8 bits (≤ 1/254 of each block's largest |x|), so training never takes this path.
///
/// Tolerance (tested in QuantGemvInt8Tests): |y − y_fp32| ≤ 1e-2 · Σ|x·w| + 1e-5 per output.
public enum QuantGemvInt8 {
    /// Whether this CPU runs the integer kernels (else callers keep the fp32 fused kernels, which are faster
    /// than the portable C loops).
    public static let available: Bool = cfinch_cpu_has_avx512vnni() != 0

    /// The C kernel's code for `format`, nil when it has no integer kernel.
    static func code(_ format: QuantFormat) -> Int32? {
        switch format {
        case .q8_0: return Int32(CFINCH_Q8_0)
        case .q4_0: return Int32(CFINCH_Q4_0)
        case .q5_0: return Int32(CFINCH_Q5_0)
        case .q4_K: return Int32(CFINCH_Q4_K)
        case .q6_K: return Int32(CFINCH_Q6_K)
        default: return nil
        }
    }

    /// Whether `forward` takes W's format.
    public static func supports(_ format: QuantFormat) -> Bool { code(format) != nil }

    /// y[m, w.rows] = x[m, w.cols] · Wᵀ (+ beta · y) through int8 x. `simd: false` runs the portable C loops
    /// (tests compare the two). Precondition: `supports(w.format)`.
    public static func forward(m: Int, x: UnsafePointer<Float>, ldx: Int, w: QuantizedMatrix, beta: Float,
                               y: UnsafeMutablePointer<Float>, ldy: Int, simd: Bool = true) {
        forward(m: m, x: x, ldx: ldx, [(w, y)], beta: beta, ldy: ldy, simd: simd)
    }

    /// Several products of the same x (q, k and v; gate and up): x is quantised once and the rows of all the
    /// matrices are split between the threads as one list, so small matrices (k and v: 192 rows) neither run on
    /// one thread nor cost a dispatch each. Every matrix has `x`'s columns; `outputs[i].1` gets matrix i's y.
    public static func forward(m: Int, x: UnsafePointer<Float>, ldx: Int, _ outputs: [(QuantizedMatrix, UnsafeMutablePointer<Float>)],
                               beta: Float, ldy: Int, simd: Bool = true) {
        guard let k = outputs.first?.0.cols, m > 0 else { return }
        let codes = outputs.map { o -> Int32 in
            precondition(o.0.cols == k, "QuantGemvInt8: matrices of \(o.0.cols) and \(k) columns share one x")
            guard let c = code(o.0.format) else { preconditionFailure("QuantGemvInt8: no integer kernel for \(o.0.format)") }
            return c
        }
        let blocks = k / 32
        var starts = [0]
        for o in outputs { starts.append(starts.last! + o.0.rows) }
        let total = starts.last!, bytes = outputs.reduce(0) { $0 + $1.0.byteCount }
        guard total > 0 else { return }
        withUnsafeTemporaryAllocation(of: Int8.self, capacity: max(1, m * k)) { q in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: max(1, m * blocks)) { d in
                withUnsafeTemporaryAllocation(of: Int32.self, capacity: max(1, m * blocks)) { s in
                    let qp = q.baseAddress!, dp = d.baseAddress!, sp = s.baseAddress!
                    for i in 0..<m {
                        cfinch_quantize_q8_32(x + i * ldx, k, qp + i * k, dp + i * blocks, sp + i * blocks, simd ? 1 : 0)
                    }
                    // A chunk of at least ~64 KiB of weights is worth a thread (as the fp32 fused kernel).
                    ThreadPool.shared.parallelFor(total, minChunk: max(1, 65_536 * total / max(1, bytes))) { _, r in
                        for (i, o) in outputs.enumerated() {
                            let lo = max(r.lowerBound, starts[i]) - starts[i], hi = min(r.upperBound, starts[i + 1]) - starts[i]
                            guard lo < hi else { continue }
                            cfinch_gemv_i8(codes[i], k, o.0.data, o.0.rowBytes, lo, hi, Int32(m), qp, dp, sp, o.1, ldy, beta,
                                           simd ? 1 : 0)
                        }
                    }
                }
            }
        }
    }
}
