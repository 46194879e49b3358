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
        default: return nil
        }
    }

    /// Whether `forward` takes W's format.
    public static func supports(_ format: QuantFormat) -> Bool { code(format) != nil }

    /// y[m, w.rows] = x[m, w.cols] · Wᵀ (+ beta · y) through int8 x. `simd: false` runs the portable C loops
    /// (tests compare the two). Precondition: `supports(w.format)`.
    public static func forward(m: Int, x: UnsafePointer<Float>, ldx: Int, w: QuantizedMatrix, beta: Float,
                               y: UnsafeMutablePointer<Float>, ldy: Int, simd: Bool = true) {
        guard let format = code(w.format) else { preconditionFailure("QuantGemvInt8: no integer kernel for \(w.format)") }
        let k = w.cols, blocks = k / 32, n = w.rows
        guard m > 0, n > 0 else { return }
        withUnsafeTemporaryAllocation(of: Int8.self, capacity: max(1, m * k)) { q in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: max(1, m * blocks)) { d in
                withUnsafeTemporaryAllocation(of: Int32.self, capacity: max(1, m * blocks)) { s in
                    let qp = q.baseAddress!, dp = d.baseAddress!, sp = s.baseAddress!
                    for i in 0..<m {
                        cfinch_quantize_q8_32(x + i * ldx, k, qp + i * k, dp + i * blocks, sp + i * blocks, simd ? 1 : 0)
                    }
                    // A chunk of at least ~64 KiB of weights is worth a thread (as the fp32 fused kernel).
                    ThreadPool.shared.parallelFor(n, minChunk: max(1, 65_536 / max(1, w.rowBytes))) { _, r in
                        cfinch_gemv_i8(format, k, w.data, w.rowBytes, r.lowerBound, r.upperBound, Int32(m), qp, dp, sp,
                                       y, ldy, beta, simd ? 1 : 0)
                    }
                }
            }
        }
    }
}
