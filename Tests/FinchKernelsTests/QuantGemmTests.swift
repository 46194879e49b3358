import XCTest
import FinchGGUF
import FinchKernels

/// Quantised weights against FinchGGUF's reference: blocks written by `GGMLQuantizer` (bit-exact with ggml),
/// dequantised by `GGMLQuants`, multiplied in Double.
final class QuantGemmTests: XCTestCase {
    private func ggml(_ f: QuantFormat) -> GGMLType { GGMLType(name: f.rawValue)! }

    /// Random weights (rows of different magnitudes, some all-zero sub-blocks) as blocks, and the reference Floats.
    private func matrix(_ f: QuantFormat, rows: Int, cols: Int, rng: inout MKRNG) throws -> (QuantizedMatrix, [Float]) {
        var v = [Float](repeating: 0, count: rows * cols)
        for r in 0..<rows {
            let scale = Float(1 + r % 5) * 0.3
            for c in 0..<cols where (r + c / 32) % 11 != 3 { v[r * cols + c] = scale * rng.float() * (1 + rng.float()) }
        }
        let bytes = try GGMLQuantizer.quantize(ggml(f), v, threads: 1)
        let w = try QuantizedMatrix(format: f, rows: rows, cols: cols, bytes: bytes)
        let ref = try bytes.withUnsafeBytes { try GGMLQuants.dequantize(ggml(f), $0, count: rows * cols, threads: 1) }
        return (w, ref)
    }

    func testFormatSizesMatchGGML() {
        for f in QuantFormat.allCases {
            XCTAssertEqual(f.blockSize, ggml(f).blockSize, f.rawValue)
            XCTAssertEqual(f.blockBytes, ggml(f).typeSize, f.rawValue)
        }
    }

    func testDequantizeIsBitIdenticalToGGMLQuants() throws {
        var rng = MKRNG(7)
        for f in QuantFormat.allCases {
            let rows = 7, cols = f.blockSize == 32 ? 160 : 512
            let (w, ref) = try matrix(f, rows: rows, cols: cols, rng: &rng)
            XCTAssertEqual(w.byteCount, rows * cols / f.blockSize * f.blockBytes)
            for (rr, cr) in [(0..<rows, 0..<cols), (2..<5, 32..<128), (6..<7, 96..<cols), (1..<4, 64..<160)]
                                   + (f.blockSize == 256 ? [(0..<7, 224..<288), (3..<6, 480..<512)] : []) {
                let ld = cr.count + 5
                var out = [Float](repeating: .nan, count: rr.count * ld)
                w.dequantize(rows: rr, cols: cr, into: &out, ld: ld)
                for r in rr {
                    for c in cr {
                        let got = out[(r - rr.lowerBound) * ld + c - cr.lowerBound], want = ref[r * cols + c]
                        XCTAssertEqual(got.bitPattern, want.bitPattern, "\(f) r=\(r) c=\(c): \(got) vs \(want)")
                        if got.bitPattern != want.bitPattern { return }
                    }
                    // Padding stays untouched.
                    for c in cr.count..<ld { XCTAssertTrue(out[(r - rr.lowerBound) * ld + c].isNaN) }
                }
            }
        }
    }

    func testBorrowedBytesMatchCopiedBytes() throws {
        var rng = MKRNG(11)
        let (w, ref) = try matrix(.q4_K, rows: 3, cols: 256, rng: &rng)
        let borrowed = try QuantizedMatrix(format: .q4_K, rows: 3, cols: 256, borrowing: w.data, owner: w)
        var out = [Float](repeating: 0, count: 3 * 256)
        borrowed.dequantize(rows: 0..<3, cols: 0..<256, into: &out, ld: 256)
        XCTAssertEqual(out.map(\.bitPattern), ref.map(\.bitPattern))
    }

    func testBadShapesThrowClearly() {
        for (f, cols) in [(QuantFormat.q4_0, 48), (.q8_0, 33), (.q4_K, 288), (.q6_K, 32)] {
            XCTAssertThrowsError(try QuantizedMatrix(format: f, rows: 2, cols: cols, bytes: [])) { e in
                let s = "\(e)"
                XCTAssertTrue(s.contains("not a multiple of \(f.blockSize)") && s.contains("\(cols)"), s)
            }
        }
        XCTAssertThrowsError(try QuantizedMatrix(format: .q8_0, rows: 2, cols: 32, bytes: [UInt8](repeating: 0, count: 67))) { e in
            XCTAssertTrue("\(e)".contains("needs 68 bytes"), "\(e)")
        }
    }

    func testEmptyInnerDimensionScalesOrZeroes() throws {
        let w = try QuantizedMatrix(format: .q8_0, rows: 3, cols: 0, bytes: [])
        var y: [Float] = [1, 2, 3, .nan, 5, 6], dx: [Float] = []
        QuantGemm.forward(m: 2, x: [], ldx: 0, w: w, beta: 0, y: &y, ldy: 3)
        XCTAssertEqual(y, [0, 0, 0, 0, 0, 0])
        y = [1, 2, 3, 4, 5, 6]
        QuantGemm.forward(m: 2, x: [], ldx: 0, w: w, beta: 0.5, y: &y, ldy: 3)
        XCTAssertEqual(y, [0.5, 1, 1.5, 2, 2.5, 3])
        QuantGemm.inputGradient(m: 2, dy: [Float](repeating: 1, count: 6), lddy: 3, w: w, beta: 0, dx: &dx, lddx: 0)
        let none = try QuantizedMatrix(format: .q4_K, rows: 0, cols: 256, bytes: [])
        var g = [Float](repeating: 7, count: 256)
        QuantGemm.inputGradient(m: 1, dy: [], lddy: 0, w: none, beta: 0, dx: &g, lddx: 256)
        XCTAssertEqual(g, [Float](repeating: 0, count: 256))
    }

    /// Checks `got[i, j]` (row stride `ld`) against Σ_p a(i, p)·b(p, j) over `k` terms (+ beta · before), within 1e-5
    /// of Σ|a||b|, and that padding columns are untouched.
    private func check(_ got: [Float], ld: Int, m: Int, n: Int, k: Int, before: [Float], beta: Float,
                       a: (Int, Int) -> Float, b: (Int, Int) -> Float, _ what: String) {
        var worst = 0.0
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0, mag = 0.0
                for p in 0..<k {
                    let t = Double(a(i, p)) * Double(b(p, j))
                    s += t; mag += abs(t)
                }
                let old = beta == 0 ? 0 : Double(beta) * Double(before[i * ld + j])
                let err = abs(Double(got[i * ld + j]) - (s + old)) / (mag + abs(old) + 1e-30)
                if !(err <= worst) { worst = err }
            }
            for j in n..<ld where got[i * ld + j].bitPattern != before[i * ld + j].bitPattern {
                XCTFail("\(what): padding column \(j) of row \(i) written"); return
            }
        }
        XCTAssertLessThan(worst, 1e-5, what)
    }

    private func runProducts(threads: Int) throws {
        let pool = ThreadPool.shared
        let saved = (pool.threads, QuantGemm.tileFloats)
        defer { pool.setThreads(saved.0); QuantGemm.tileFloats = saved.1 }
        pool.setThreads(threads)
        var rng = MKRNG(UInt64(99 + threads))
        let ms = [1, 2, 3, 5, 8, 13, 16, 17, 64, 300], rowCounts = [1, 7, 65, 577]
        for (fi, f) in QuantFormat.allCases.enumerated() {
            let colCounts = f.blockSize == 32 ? [32, 96, 256, 768] : [256, 512, 768]
            for (mi, m) in ms.enumerated() {
                for variant in 0..<2 {
                    let rows = rowCounts[(mi + fi + 2 * variant) % rowCounts.count]
                    let cols = colCounts[(mi * 3 + fi + variant) % colCounts.count]
                    let beta: Float = (mi + variant) % 2 == 0 ? 0 : 1
                    let pad = (mi + fi + variant) % 3 == 0 ? 0 : 3
                    // Small tiles make the tile path take several column slices (forward), row tiles and row bands
                    // even on small matrices.
                    QuantGemm.tileFloats = [1 << 20, 256 * rows, 64 * cols][mi % 3]
                    let (w, ref) = try matrix(f, rows: rows, cols: cols, rng: &rng)
                    let what = "\(f) m=\(m) rows=\(rows) cols=\(cols) beta=\(beta) pad=\(pad) threads=\(threads)"

                    let ldx = cols + pad, ldy = rows + pad
                    let x = (0..<(m * ldx)).map { _ in rng.float() }
                    var y = (0..<(m * ldy)).map { _ in rng.float() }
                    if beta == 0 { for i in stride(from: 0, to: y.count, by: 4) where i % ldy < rows { y[i] = .nan } }
                    let y0 = y
                    QuantGemm.forward(m: m, x: x, ldx: ldx, w: w, beta: beta, y: &y, ldy: ldy)
                    check(y, ld: ldy, m: m, n: rows, k: cols, before: y0, beta: beta,
                          a: { x[$0 * ldx + $1] }, b: { ref[$1 * cols + $0] }, "forward " + what)

                    let lddy = rows + pad, lddx = cols + pad
                    let dy = (0..<(m * lddy)).map { _ in rng.float() }
                    var dx = (0..<(m * lddx)).map { _ in rng.float() }
                    if beta == 0 { for i in stride(from: 1, to: dx.count, by: 4) where i % lddx < cols { dx[i] = .nan } }
                    let dx0 = dx
                    QuantGemm.inputGradient(m: m, dy: dy, lddy: lddy, w: w, beta: beta, dx: &dx, lddx: lddx)
                    check(dx, ld: lddx, m: m, n: cols, k: rows, before: dx0, beta: beta,
                          a: { dy[$0 * lddy + $1] }, b: { ref[$0 * cols + $1] }, "inputGradient " + what)
                }
            }
        }
    }

    func testProductsOneThread() throws { try runProducts(threads: 1) }
    func testProductsTwoThreads() throws { try runProducts(threads: 2) }

    /// The fused kernels and the tile path agree (each within rounding of the exact product) for every m.
    func testFusedAndTilePathsAgree() throws {
        var rng = MKRNG(5)
        let saved = QuantGemm.fusedMaxRows
        defer { QuantGemm.fusedMaxRows = saved }
        for f in QuantFormat.allCases {
            let (w, _) = try matrix(f, rows: 33, cols: 512, rng: &rng)
            let m = 6
            let x = (0..<(m * 512)).map { _ in rng.float() }
            var fused = [Float](repeating: 0, count: m * 33), tiled = fused
            QuantGemm.fusedMaxRows = 16
            QuantGemm.forward(m: m, x: x, ldx: 512, w: w, beta: 0, y: &fused, ldy: 33)
            QuantGemm.fusedMaxRows = 0
            QuantGemm.forward(m: m, x: x, ldx: 512, w: w, beta: 0, y: &tiled, ldy: 33)
            for i in 0..<fused.count { XCTAssertEqual(fused[i], tiled[i], accuracy: 1e-4 * max(1, abs(tiled[i])), "\(f) \(i)") }
        }
    }
}
