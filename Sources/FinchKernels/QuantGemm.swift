import Foundation

/// Linear-layer products with a `QuantizedMatrix` weight `W[out, in]`, without a Float copy of W.
///
/// Small m (decoding) takes the fused kernels of `QuantGemv`: blocks are decoded in registers and read once.
/// Larger m (training, prefill) dequantises W a tile at a time (both threads share the work) into a
/// reusable per-thread buffer and multiplies it with `Gemm.sgemm`, so at most one tile of W (`tileFloats`)
/// ever exists in Float. `sgemm` is never called from inside a `parallelFor` body (the pool would run it
/// on one thread). `precision: .bf16` multiplies the tiles with the bf16 GEMM (`Gemm.gemm`), as a bf16 decoder
/// does its fp32 weights; the fused small-m kernels are fp32 either way (their speed is the reading of W).
public enum QuantGemm {
    /// Largest m the fused forward takes (`finch bench quant --fused-max-rows`: at m = 8 it is ~2x faster than the
    /// tile path on SmolLM2 shapes; at m = 16 the two are within ~15% either way, depending on shape and format).
    public static var fusedMaxRows = 16
    /// sgemm's k block (`Gemm.KC`): slices and bands of W along k come in multiples of it.
    static let kBlock = 256
    /// Floats in one dequantised tile of W (4 MiB; a forward tile of whole rows holds at least 512 of them).
    public static var tileFloats = 1 << 20

    /// y[m, w.rows] = x[m, w.cols] · Wᵀ (+ beta · y): a linear layer's forward.
    /// beta == 0 overwrites y (NaNs there are ignored).
    public static func forward(m: Int, x: UnsafePointer<Float>, ldx: Int, w: QuantizedMatrix, beta: Float,
                               y: UnsafeMutablePointer<Float>, ldy: Int, precision: GemmPrecision = .fp32) {
        precondition(m <= 1 || (ldx >= w.cols && ldy >= w.rows),
                     "QuantGemm.forward: ldx \(ldx) < cols \(w.cols) or ldy \(ldy) < rows \(w.rows)")
        guard m > 0, w.rows > 0 else { return }
        if w.cols == 0 { return zeroK(m: m, n: w.rows, beta: beta, c: y, ldc: ldy) }
        if m <= fusedMaxRows {
            switch w.format {
            case .q8_0: QuantGemv.forward(Q8_0.self, m: m, x: x, ldx: ldx, w: w, beta: beta, y: y, ldy: ldy)
            case .q4_0: QuantGemv.forward(Q4_0.self, m: m, x: x, ldx: ldx, w: w, beta: beta, y: y, ldy: ldy)
            case .q4_1: QuantGemv.forward(Q4_1.self, m: m, x: x, ldx: ldx, w: w, beta: beta, y: y, ldy: ldy)
            case .q4_K: QuantGemv.forward(Q4_K.self, m: m, x: x, ldx: ldx, w: w, beta: beta, y: y, ldy: ldy)
            case .q6_K: QuantGemv.forward(Q6_K.self, m: m, x: x, ldx: ldx, w: w, beta: beta, y: y, ldy: ldy)
            case .q5_0: QuantGemv.forward(Q5_0.self, m: m, x: x, ldx: ldx, w: w, beta: beta, y: y, ldy: ldy)
            }
            return
        }
        if w.rows * kBlock <= tileFloats {
            // Slices of W's columns (the k of this product) in multiples of sgemm's k block, accumulated into y:
            // x is packed once and y revisited once per k block, exactly as sgemm does on the whole matrix.
            let kc = max(kBlock, tileFloats / w.rows / kBlock * kBlock)
            let tile = QuantTile.current.floats(w.rows * min(kc, w.cols))
            var k0 = 0
            while k0 < w.cols {
                let kw = min(kc, w.cols - k0)
                dequantize(w, rows: 0..<w.rows, cols: k0..<(k0 + kw), into: tile)
                Gemm.gemm(precision: precision, transA: false, transB: true, m: m, n: w.rows, k: kw, a: x + k0, lda: ldx, b: tile, ldb: kw,
                           beta: k0 == 0 ? beta : 1, c: y, ldc: ldy)
                k0 += kw
            }
            return
        }
        // Too many rows for that: tiles of whole W rows (output columns of y), each sgemm seeing the full k. Each
        // call repacks x, so a tile keeps at least 512 rows (measured: 64-row tiles ran at ~65% of sgemm).
        forEachTile(w, rowsPerTile: max(512, tileFloats / w.cols / 64 * 64)) { n0, nt, tile in
            Gemm.gemm(precision: precision, transA: false, transB: true, m: m, n: nt, k: w.cols, a: x, lda: ldx, b: tile, ldb: w.cols,
                       beta: beta, c: y + n0, ldc: ldy)
        }
    }

    /// dx[m, w.cols] = dy[m, w.rows] · W (+ beta · dx): the input gradient of a linear layer.
    /// beta == 0 overwrites dx (NaNs there are ignored).
    public static func inputGradient(m: Int, dy: UnsafePointer<Float>, lddy: Int, w: QuantizedMatrix, beta: Float,
                                     dx: UnsafeMutablePointer<Float>, lddx: Int, precision: GemmPrecision = .fp32) {
        precondition(m <= 1 || (lddy >= w.rows && lddx >= w.cols),
                     "QuantGemm.inputGradient: lddy \(lddy) < rows \(w.rows) or lddx \(lddx) < cols \(w.cols)")
        guard m > 0, w.cols > 0 else { return }
        if w.rows == 0 { return zeroK(m: m, n: w.cols, beta: beta, c: dx, ldc: lddx) }
        // Bands of W rows (the k of this product) in multiples of sgemm's k block, accumulated into dx:
        // sgemm itself revisits C once per k block, so the bands add no traffic of their own.
        forEachTile(w, rowsPerTile: max(kBlock, tileFloats / w.cols / kBlock * kBlock)) { k0, kb, tile in
            Gemm.gemm(precision: precision, transA: false, transB: false, m: m, n: w.cols, k: kb, a: dy + k0, lda: lddy, b: tile, ldb: w.cols,
                       beta: k0 == 0 ? beta : 1, c: dx, ldc: lddx)
        }
    }

    /// Calls `body(r0, count, tile)` for consecutive bands of at most `rowsPerTile` rows of `w`, each dequantised
    /// (all columns, row stride `w.cols`) into the calling thread's one reused tile. The body runs outside
    /// any `parallelFor`, so it may use the pool.
    static func forEachTile(_ w: QuantizedMatrix, rowsPerTile: Int, _ body: (Int, Int, UnsafePointer<Float>) -> Void) {
        let tile = QuantTile.current.floats(min(rowsPerTile, w.rows) * w.cols)
        var r0 = 0
        while r0 < w.rows {
            let count = min(rowsPerTile, w.rows - r0)
            dequantize(w, rows: r0..<(r0 + count), cols: 0..<w.cols, into: tile)
            body(r0, count, tile)
            r0 += count
        }
    }

    /// Rows `rows`, columns `cols` of `w` into `dst` with row stride `cols.count`, split across the pool.
    static func dequantize(_ w: QuantizedMatrix, rows: Range<Int>, cols: Range<Int>, into dst: UnsafeMutablePointer<Float>) {
        let ld = cols.count
        ThreadPool.shared.parallelFor(rows.count, minChunk: max(1, 16_384 / max(1, ld))) { _, r in
            w.dequantize(rows: (rows.lowerBound + r.lowerBound)..<(rows.lowerBound + r.upperBound), cols: cols,
                         into: dst + r.lowerBound * ld, ld: ld)
        }
    }

    /// c = beta · c for an empty inner dimension.
    private static func zeroK(m: Int, n: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        for i in 0..<m {
            let row = c + i * ldc
            if beta == 0 { row.update(repeating: 0, count: n) } else { for j in 0..<n { row[j] *= beta } }
        }
    }
}

/// A per-thread, grow-only Float buffer for one dequantised tile (kept in the thread's dictionary, so a
/// training step reuses it instead of page-faulting megabytes per call).
final class QuantTile {
    private var buffer = UnsafeMutableBufferPointer<Float>(start: nil, count: 0)

    static var current: QuantTile {
        let key = "finch.QuantTile"
        let dict = Thread.current.threadDictionary
        if let t = dict[key] as? QuantTile { return t }
        let t = QuantTile()
        dict[key] = t
        return t
    }

    func floats(_ count: Int) -> UnsafeMutablePointer<Float> {
        if buffer.count < count {
            buffer.deallocate()
            buffer = .allocate(capacity: max(count, 16))
        }
        return buffer.baseAddress!
    }

    deinit { buffer.deallocate() }
}
