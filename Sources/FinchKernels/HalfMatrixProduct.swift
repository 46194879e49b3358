/// The product shared by the 16-bit weight types (`BF16Matrix`, `F16Matrix`): y[m, rows] = x[m, cols] · Wᵀ
/// (+ beta · y). Up to `QuantGemm.fusedMaxRows` x rows stream W once through the type's C kernel (`gemv` over a
/// range of W rows; W widened in registers); more rows (prompt processing) widen bands of W into a per-thread
/// tile (`expand`, never the whole matrix) and multiply them with `Gemm.gemm` at `precision`.
enum HalfMatrixProduct {
    static func forward(rows: Int, cols: Int, m: Int, x: UnsafePointer<Float>, ldx: Int, beta: Float,
                        y: UnsafeMutablePointer<Float>, ldy: Int, precision: GemmPrecision,
                        gemv: (Range<Int>) -> Void, expand: (Range<Int>, UnsafeMutablePointer<Float>) -> Void) {
        guard m > 0, rows > 0 else { return }
        if m <= QuantGemm.fusedMaxRows || cols == 0 {
            ThreadPool.shared.parallelFor(rows, minChunk: max(1, 32_768 / max(1, 2 * cols))) { _, r in gemv(r) }
            return
        }
        let band = max(512, QuantGemm.tileFloats / cols / 64 * 64)
        let tile = QuantTile.current.floats(min(band, rows) * cols)
        var r0 = 0
        while r0 < rows {
            let count = min(band, rows - r0)
            ThreadPool.shared.parallelFor(count, minChunk: max(1, 16_384 / cols)) { _, r in
                expand((r0 + r.lowerBound)..<(r0 + r.upperBound), tile + r.lowerBound * cols)
            }
            Gemm.gemm(precision: precision, transA: false, transB: true, m: m, n: count, k: cols, a: x, lda: ldx,
                      b: tile, ldb: cols, beta: beta, c: y + r0, ldc: ldy)
            r0 += count
        }
    }
}
