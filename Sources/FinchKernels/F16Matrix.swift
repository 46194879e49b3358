import CFinchSIMD

/// A row-major `[rows, cols]` weight held as IEEE half (half the bytes of fp32): an f16 GGUF file's projections
/// and head kept in their own type for inference, as `BF16Matrix` keeps a bf16 file's. Widening back to fp32 is
/// exact and x stays fp32 throughout (decode and prompt processing), so the products equal the fp32 path's on the
/// same weights up to the order of the sums. Inference only: no backward.
public final class F16Matrix: @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    /// `rows · cols` IEEE half bit patterns, row-major.
    public let data: UnsafeMutablePointer<UInt16>
    public var byteCount: Int { rows * cols * 2 }

    /// Which C kernel `forward` runs for up to `QuantGemm.fusedMaxRows` rows (tests compare them; `.best` is
    /// AVX-512 where the CPU has it, else AVX2 + F16C, else portable C).
    public enum Kernel: Int32 { case portable = 0, f16c = 1, best = 2 }

    /// Rounds `src` ([rows, cols] fp32, row-major) to half, nearest-even (exact for values that are half already,
    /// as those of an f16 file; beyond ±65504 they become ±inf).
    public init(rows: Int, cols: Int, from src: UnsafePointer<Float>) {
        precondition(rows >= 0 && cols >= 0, "F16Matrix: shape \(rows)×\(cols) has a negative dimension")
        self.rows = rows; self.cols = cols
        data = .allocate(capacity: max(1, rows * cols))
        for i in 0..<(rows * cols) { data[i] = Float16(src[i]).bitPattern }
    }

    deinit { data.deallocate() }

    /// Rows `r0..<r1` widened to fp32 into `dst` (row stride `cols`).
    public func expand(rows r: Range<Int>, into dst: UnsafeMutablePointer<Float>) {
        cfinch_f16_to_f32(data + r.lowerBound * cols, r.count * cols, dst, Kernel.best.rawValue)
    }

    /// y[m, rows] = x[m, cols] · Wᵀ (+ beta · y) (`HalfMatrixProduct`): fp32 arithmetic on the widened weights for
    /// any m (prompt rows through `Gemm.gemm(precision: .fp32)` on widened bands of W).
    public func forward(m: Int, x: UnsafePointer<Float>, ldx: Int, beta: Float, y: UnsafeMutablePointer<Float>, ldy: Int,
                        kernel: Kernel = .best) {
        HalfMatrixProduct.forward(rows: rows, cols: cols, m: m, x: x, ldx: ldx, beta: beta, y: y, ldy: ldy, precision: .fp32,
                                  gemv: { r in
            cfinch_gemv_f16(cols, data, cols, r.lowerBound, r.upperBound, Int32(m), x, ldx, y, ldy, beta, kernel.rawValue)
        }, expand: { r, dst in expand(rows: r, into: dst) })
    }
}
