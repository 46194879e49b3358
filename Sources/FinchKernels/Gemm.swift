/// Single-precision GEMM on row-major buffers.
///
/// `C[m×n] = alpha · op(A) · op(B) + beta · C` where `op(A)` is `m×k` (A stored `[m,k]`, or `[k,m]`
/// when `transA`), and `op(B)` is `k×n` (B stored `[k,n]`, or `[n,k]` when `transB`).
/// `lda`/`ldb`/`ldc` are row strides in elements. beta == 0 overwrites C (NaNs in C are ignored).
/// NOTE: placeholder naive implementation; the optimized packed/blocked kernel replaces it.
public enum Gemm {
    public static func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                             alpha: Float = 1,
                             a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0,
                             c: UnsafeMutablePointer<Float>, ldc: Int) {
        for i in 0..<m {
            for j in 0..<n {
                var s: Float = 0
                for p in 0..<k {
                    let av = transA ? a[p * lda + i] : a[i * lda + p]
                    let bv = transB ? b[j * ldb + p] : b[p * ldb + j]
                    s += av * bv
                }
                c[i * ldc + j] = beta == 0 ? alpha * s : alpha * s + beta * c[i * ldc + j]
            }
        }
    }
}
