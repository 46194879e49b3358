import CFinchSIMD

/// Decoding's one-row product with fp32 weights, `y = x · Wᵀ`: each W row is read front to back (one stream for
/// the prefetcher; `Gemm.gemv` interleaves four) by the C kernel. Same arithmetic as an fp32 dot product, in a
/// different summation order than `Gemm.gemm`, so inference only (training keeps `Gemm`'s bits).
public enum DecodeGemv {
    /// y[j] = Σ_p x[p] · w[j·ldw + p] (+ beta · y[j]) for j < n. `simd: false` runs the portable C loop (tests).
    public static func f32(n: Int, k: Int, x: UnsafePointer<Float>, w: UnsafePointer<Float>, ldw: Int, beta: Float,
                           y: UnsafeMutablePointer<Float>, simd: Bool = true) {
        guard n > 0 else { return }
        ThreadPool.shared.parallelFor(n, minChunk: max(1, 16_384 / max(1, k))) { _, r in
            cfinch_gemv_f32(k, w, ldw, r.lowerBound, r.upperBound, x, y, beta, simd ? 1 : 0)
        }
    }
}
