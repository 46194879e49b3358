import CFinchSIMD

/// A row-major `[rows, cols]` weight held as bf16 (half the bytes of fp32): a bf16 GGUF file's projections and
/// head kept in their own type for inference. Reading it back to fp32 is exact (a 16-bit shift), so decoding
/// multiplies the same weights the fp32 path would after loading the file. Inference only: no backward.
public final class BF16Matrix: @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    /// `rows · cols` bf16 values, row-major.
    public let data: UnsafeMutablePointer<UInt16>
    public var byteCount: Int { rows * cols * 2 }

    /// Rounds `src` ([rows, cols] fp32, row-major) to bf16, nearest-even (exact for values that are bf16 already,
    /// as those of a bf16 file). NaN stays NaN.
    public init(rows: Int, cols: Int, from src: UnsafePointer<Float>) {
        precondition(rows >= 0 && cols >= 0, "BF16Matrix: shape \(rows)×\(cols) has a negative dimension")
        self.rows = rows; self.cols = cols
        data = .allocate(capacity: max(1, rows * cols))
        for i in 0..<(rows * cols) { data[i] = BF16Matrix.round(src[i]) }
    }

    deinit { data.deallocate() }

    /// fp32 → bf16, round to nearest even (as PyTorch's `.to(torch.bfloat16)`).
    @inline(__always)
    static func round(_ x: Float) -> UInt16 {
        let b = x.bitPattern
        if x.isNaN { return UInt16(b >> 16) | 0x40 }
        return UInt16((b &+ 0x7FFF &+ ((b >> 16) & 1)) >> 16)
    }

    /// Rows `r0..<r1` widened to fp32 into `dst` (row stride `cols`).
    public func expand(rows r: Range<Int>, into dst: UnsafeMutablePointer<Float>) {
        for i in (r.lowerBound * cols)..<(r.upperBound * cols) {
            dst[i - r.lowerBound * cols] = Float(bitPattern: UInt32(data[i]) << 16)
        }
    }

    /// y[m, rows] = x[m, cols] · Wᵀ (+ beta · y) (`HalfMatrixProduct`). Up to `QuantGemm.fusedMaxRows` x rows:
    /// fp32 arithmetic, W widened in registers; more rows (prompt processing) multiply bands of W widened to fp32
    /// with `Gemm.gemm(precision: .bf16)`, which rounds x to bf16 as llama.cpp does for bf16 weights (W loses
    /// nothing: it is bf16 already). `simd: false` runs the portable C loops (tests).
    public func forward(m: Int, x: UnsafePointer<Float>, ldx: Int, beta: Float, y: UnsafeMutablePointer<Float>, ldy: Int,
                        simd: Bool = true) {
        HalfMatrixProduct.forward(rows: rows, cols: cols, m: m, x: x, ldx: ldx, beta: beta, y: y, ldy: ldy, precision: .bf16,
                                  gemv: { r in
            cfinch_gemv_bf16(cols, data, cols, r.lowerBound, r.upperBound, Int32(m), x, ldx, y, ldy, beta, simd ? 1 : 0)
        }, expand: { r, dst in expand(rows: r, into: dst) })
    }
}
