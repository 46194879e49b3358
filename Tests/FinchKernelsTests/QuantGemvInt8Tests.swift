import XCTest
import FinchGGUF
import FinchKernels

/// The inference-only decode kernels against fp64 references on the same weights: int8-activation products of
/// quantised blocks (tolerance 1e-2 · Σ|x·w| + 1e-5 per output, from x's rounding to 8 bits) and bf16-held
/// weights (fp32 arithmetic for m ≤ 16: 1e-5 · Σ|x·w|; bf16-rounded x for prompt rows: 2⁻⁷ · Σ|x·w|).
/// Odd shapes: m = 1…16, k not a multiple of 256 where the format allows, 1 and 2 threads, beta 0 and 1.
final class QuantGemvInt8Tests: XCTestCase {
    private func weights(rows: Int, cols: Int, rng: inout MKRNG) -> [Float] {
        var v = [Float](repeating: 0, count: rows * cols)
        for r in 0..<rows {
            let scale = Float(1 + r % 5) * 0.3
            for c in 0..<cols where (r + c / 32) % 11 != 3 { v[r * cols + c] = scale * rng.float() * (1 + rng.float()) }
        }
        return v
    }

    /// Checks y (beta applied to `y0`) against the Double product of x [m, k] and w [n, k].
    private func check(_ y: [Float], _ y0: [Float], beta: Float, x: [Float], w: [Float], m: Int, n: Int, k: Int,
                       rel: Double, _ what: String) -> Bool {
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0, a = 0.0
                for p in 0..<k { s += Double(x[i * k + p]) * Double(w[j * k + p]); a += abs(Double(x[i * k + p]) * Double(w[j * k + p])) }
                let want = s + Double(beta) * Double(y0[i * n + j])
                let got = Double(y[i * n + j])
                if abs(got - want) > rel * a + 1e-5 {
                    XCTFail("\(what) m=\(m) i=\(i) j=\(j): \(got) vs \(want) (Σ|xw| \(a))")
                    return false
                }
            }
        }
        return true
    }

    func testInt8ProductsMatchFP32ReferenceOnOddShapes() throws {
        try XCTSkipUnless(QuantGemvInt8.available, "no AVX512-VNNI: decoding keeps the fp32 fused kernels")
        var rng = MKRNG(21)
        let saved = ThreadPool.shared.threads
        defer { ThreadPool.shared.setThreads(saved) }
        for f in [QuantFormat.q8_0, .q4_0, .q5_0, .q4_K, .q6_K] {
            let type = GGMLType(name: f.rawValue)!
            for (n, k) in (f.blockSize == 256 ? [(5, 256), (67, 768)] : [(3, 32), (67, 96), (130, 544)]) {
                let v = weights(rows: n, cols: k, rng: &rng)
                let bytes = try GGMLQuantizer.quantize(type, v, threads: 1)
                let w = try QuantizedMatrix(format: f, rows: n, cols: k, bytes: bytes)
                let ref = try bytes.withUnsafeBytes { try GGMLQuants.dequantize(type, $0, count: n * k, threads: 1) }
                for m in 1...16 {
                    let x = (0..<(m * k)).map { i in rng.float() * (i % 7 == 0 ? 4 : 1) }
                    let y0 = (0..<(m * n)).map { _ in rng.float() }
                    for threads in [1, 2] {
                        ThreadPool.shared.setThreads(threads)
                        let beta: Float = m % 2 == 0 ? 1 : 0
                        var fast = y0, portable = y0
                        QuantGemvInt8.forward(m: m, x: x, ldx: k, w: w, beta: beta, y: &fast, ldy: n)
                        QuantGemvInt8.forward(m: m, x: x, ldx: k, w: w, beta: beta, y: &portable, ldy: n, simd: false)
                        guard check(fast, y0, beta: beta, x: x, w: ref, m: m, n: n, k: k, rel: 1e-2, "\(f) \(n)x\(k) \(threads)t"),
                              check(portable, y0, beta: beta, x: x, w: ref, m: m, n: n, k: k, rel: 1e-2, "\(f) portable") else { return }
                        // The two paths compute the same integers; only float summation order differs.
                        for i in 0..<(m * n) where abs(fast[i] - portable[i]) > 1e-4 * (1 + abs(portable[i])) {
                            return XCTFail("\(f) m=\(m) [\(i)]: VNNI \(fast[i]) vs portable \(portable[i])")
                        }
                    }
                }
            }
        }
    }

    func testGroupedProductsEqualSeparateOnes() throws {
        // q/k/v (or gate/up) as one call: the same kernel on the same int8 x, so the same bits as one call each.
        try XCTSkipUnless(QuantGemvInt8.available)
        var rng = MKRNG(9)
        let k = 96
        let mats = try [(QuantFormat.q5_0, 40), (.q5_0, 8), (.q8_0, 200)].map { f, n -> QuantizedMatrix in
            let bytes = try GGMLQuantizer.quantize(GGMLType(name: f.rawValue)!, weights(rows: n, cols: k, rng: &rng), threads: 1)
            return try QuantizedMatrix(format: f, rows: n, cols: k, bytes: bytes)
        }
        let saved = ThreadPool.shared.threads
        defer { ThreadPool.shared.setThreads(saved) }
        for threads in [1, 2] {
            ThreadPool.shared.setThreads(threads)
            for m in [1, 3] {
                let x = (0..<(m * k)).map { _ in rng.float() }, ldy = 248
                var grouped = [Float](repeating: .nan, count: m * ldy), separate = grouped
                grouped.withUnsafeMutableBufferPointer { g in
                    QuantGemvInt8.forward(m: m, x: x, ldx: k, [(mats[0], g.baseAddress!), (mats[1], g.baseAddress! + 40),
                                                              (mats[2], g.baseAddress! + 48)], beta: 0, ldy: ldy)
                }
                separate.withUnsafeMutableBufferPointer { p in
                    var col = 0
                    for w in mats {
                        QuantGemvInt8.forward(m: m, x: x, ldx: k, w: w, beta: 0, y: p.baseAddress! + col, ldy: ldy)
                        col += w.rows
                    }
                }
                XCTAssertEqual(grouped.map(\.bitPattern), separate.map(\.bitPattern), "\(threads) threads, m \(m)")
            }
        }
    }

    func testInt8ErrorIsThatOfEightBitActivations() throws {
        // Not exact (x is rounded), but far inside the tolerance on typical data: mean |error| ≲ 1e-3 · Σ|xw|.
        try XCTSkipUnless(QuantGemvInt8.available)
        var rng = MKRNG(5)
        let n = 64, k = 576
        let v = weights(rows: n, cols: k, rng: &rng)
        let bytes = try GGMLQuantizer.quantize(.q8_0, v, threads: 1)
        let w = try QuantizedMatrix(format: .q8_0, rows: n, cols: k, bytes: bytes)
        let ref = try bytes.withUnsafeBytes { try GGMLQuants.dequantize(.q8_0, $0, count: n * k, threads: 1) }
        let x = (0..<k).map { _ in rng.float() }
        var y = [Float](repeating: 0, count: n)
        QuantGemvInt8.forward(m: 1, x: x, ldx: k, w: w, beta: 0, y: &y, ldy: n)
        var err = 0.0, mag = 0.0
        for j in 0..<n {
            var s = 0.0
            for p in 0..<k { s += Double(x[p]) * Double(ref[j * k + p]); mag += abs(Double(x[p]) * Double(ref[j * k + p])) }
            err += abs(Double(y[j]) - s)
        }
        XCTAssertLessThan(err, 1e-3 * mag)
    }

    func testDecodeGemvF32MatchesReference() {
        var rng = MKRNG(17)
        for (n, k) in [(1, 1), (5, 15), (33, 100), (70, 576)] {
            let w = weights(rows: n, cols: k + 3, rng: &rng), x = (0..<k).map { _ in rng.float() }
            let y0 = (0..<n).map { _ in rng.float() }
            var wk = [Float](repeating: 0, count: n * k)   // the reference's view of w's k columns (row stride k + 3)
            for j in 0..<n { for p in 0..<k { wk[j * k + p] = w[j * (k + 3) + p] } }
            for (simd, beta) in [(true, Float(0)), (true, 1), (false, 1)] {
                var y = y0
                DecodeGemv.f32(n: n, k: k, x: x, w: w, ldw: k + 3, beta: beta, y: &y, simd: simd)
                guard check(y, y0, beta: beta, x: x, w: wk, m: 1, n: n, k: k, rel: 1e-5, "f32 \(n)x\(k) simd \(simd)") else { return }
            }
        }
    }

    func testBF16MatrixMatchesReferenceOnOddShapes() {
        var rng = MKRNG(33)
        let saved = ThreadPool.shared.threads
        defer { ThreadPool.shared.setThreads(saved) }
        for (n, k) in [(1, 1), (7, 37), (67, 100), (130, 576)] {
            let v = weights(rows: n, cols: k, rng: &rng)
            let b = BF16Matrix(rows: n, cols: k, from: v)
            var wide = [Float](repeating: 0, count: n * k)
            b.expand(rows: 0..<n, into: &wide)
            for i in 0..<(n * k) {   // rounding to nearest even, within half a bf16 ulp
                XCTAssertLessThanOrEqual(abs(wide[i] - v[i]), abs(v[i]) / 256, "\(v[i]) → \(wide[i])")
            }
            let again = BF16Matrix(rows: n, cols: k, from: wide)   // bf16 values are kept exactly
            withExtendedLifetime(again) {
                XCTAssertTrue((0..<(n * k)).allSatisfy { again.data[$0] == b.data[$0] }, "bf16 → fp32 → bf16 changed a value")
            }
            for m in Array(1...16) + [17, 40] {
                let x = (0..<(m * k)).map { _ in rng.float() }
                let y0 = (0..<(m * n)).map { _ in rng.float() }
                for threads in [1, 2] {
                    ThreadPool.shared.setThreads(threads)
                    let beta: Float = m % 2 == 0 ? 1 : 0
                    var y = y0
                    b.forward(m: m, x: x, ldx: k, beta: beta, y: &y, ldy: n)
                    // m > 16 rounds x to bf16 (the bf16 GEMM, when the CPU has it).
                    let rel = m > QuantGemm.fusedMaxRows ? 1.0 / 128 : 1e-5
                    guard check(y, y0, beta: beta, x: x, w: wide, m: m, n: n, k: k, rel: rel, "bf16 \(n)x\(k) \(threads)t") else { return }
                    if m <= QuantGemm.fusedMaxRows {
                        var p = y0
                        b.forward(m: m, x: x, ldx: k, beta: beta, y: &p, ldy: n, simd: false)
                        guard check(p, y0, beta: beta, x: x, w: wide, m: m, n: n, k: k, rel: 1e-5, "bf16 portable") else { return }
                    }
                }
            }
        }
    }
}
