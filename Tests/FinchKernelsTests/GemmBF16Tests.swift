import XCTest
import FinchKernels

/// `Gemm.gemm(precision: .bf16, …)` against a reference that rounds both operands to bf16 (nearest-even) and
/// sums in Double; bf16 rounding bit patterns; `.fp32` identical to `sgemm`.
final class GemmBF16Tests: XCTestCase {
    /// xorshift64*, values spread over four decades so that rounding sees varied exponents.
    private struct Source {
        var s: UInt64
        mutating func next() -> Float {
            s ^= s >> 12; s ^= s << 25; s ^= s >> 27
            let r = s &* 2685821657736338717
            let unit = Float(r >> 40) / Float(1 << 24)                 // [0, 1)
            let scale: Float = [0.01, 0.1, 1, 10][Int(r & 3)]
            return (unit * 2 - 1) * scale
        }
    }

    private func requireBF16() throws {
        try XCTSkipUnless(Gemm.bf16Available, "no AVX512-BF16 on this CPU: .bf16 runs the fp32 path")
    }

    /// Runs one case; returns a description of the first element out of tolerance, or nil.
    ///
    /// Tolerance per element: 1e-5 · √k · |alpha| · Σ_p |a_ip||b_pj| (fp32 accumulation of exact bf16 products,
    /// with a wide margin) + 1e-6 · |beta · c_ij|. Products with m == 1 or n == 1 take the fp32 matrix–vector
    /// path, so their reference does not round.
    private func check(_ m: Int, _ n: Int, _ k: Int, transA: Bool, transB: Bool, alpha: Float, beta: Float,
                       pad: Int, source: inout Source) -> String? {
        let lda = (transA ? m : k) + pad, ldb = (transB ? k : n) + pad, ldc = n + pad
        let a = (0..<((transA ? k : m) * lda)).map { _ in source.next() }
        let b = (0..<((transB ? n : k) * ldb)).map { _ in source.next() }
        var c = (0..<(m * ldc)).map { _ in source.next() }
        if beta == 0 { for i in stride(from: 0, to: c.count, by: 3) { c[i] = .nan } }   // must be ignored
        let c0 = c
        Gemm.gemm(precision: .bf16, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                  b: b, ldb: ldb, beta: beta, c: &c, ldc: ldc)
        let round: (Float) -> Double = m == 1 || n == 1 ? { Double($0) } : { Double(Gemm.bf16Rounded($0)) }
        let ra = a.map(round), rb = b.map(round)
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.0, magnitude = 0.0
                for p in 0..<k {
                    let x = transA ? ra[p * lda + i] : ra[i * lda + p], y = transB ? rb[j * ldb + p] : rb[p * ldb + j]
                    sum += x * y; magnitude += abs(x * y)
                }
                var ref = Double(alpha) * sum
                if beta != 0 { ref += Double(beta) * Double(c0[i * ldc + j]) }
                let got = Double(c[i * ldc + j])
                let tol = 1e-5 * Double(k).squareRoot() * abs(Double(alpha)) * magnitude
                    + (beta != 0 ? 1e-6 * abs(Double(beta) * Double(c0[i * ldc + j])) : 0) + 1e-30
                if !(abs(got - ref) <= tol) { return "C[\(i),\(j)] = \(got), reference \(ref), tolerance \(tol)" }
            }
            for j in n..<ldc where c[i * ldc + j].bitPattern != c0[i * ldc + j].bitPattern {
                return "padding C[\(i),\(j)] written"
            }
        }
        return nil
    }

    private func withThreads(_ counts: [Int], _ body: (Int) -> Void) {
        let pool = ThreadPool.shared
        let saved = pool.threads
        defer { pool.setThreads(saved) }
        for t in counts { pool.setThreads(t); body(t) }
    }

    private static let layouts = [(false, false), (false, true), (true, false), (true, true)]

    /// Odd sizes in every layout: m, n and k from a list of awkward sizes (k paired with m and n so that
    /// every size meets every other), padded leading dimensions, alpha ≠ 1, beta 0 / 1 / 0.5.
    func testOddShapesAllLayouts() throws {
        try requireBF16()
        let sizes = [1, 2, 3, 5, 7, 17, 63, 65, 129, 300]
        var source = Source(s: 0x9E37_79B9_7F4A_7C15)
        withThreads([1, 2]) { threads in
            for (tA, tB) in Self.layouts {
                for (x, m) in sizes.enumerated() {
                    for (y, n) in sizes.enumerated() {
                        let k = sizes[(3 * x + 7 * y + threads) % sizes.count]
                        let variant = (x + y) % 3
                        let alpha: Float = [1, 0.75, -1.5][variant], beta: Float = [0, 1, 0.5][(x + 2 * y) % 3]
                        if let e = check(m, n, k, transA: tA, transB: tB, alpha: alpha, beta: beta, pad: variant,
                                         source: &source) {
                            XCTFail("m=\(m) n=\(n) k=\(k) tA=\(tA) tB=\(tB) threads=\(threads): \(e)")
                            return
                        }
                    }
                }
            }
        }
    }

    /// Shapes across cache-block edges: several k blocks (an odd last one), several NC blocks per thread,
    /// and a narrow n that makes the threads split m instead of n.
    func testMultiBlock() throws {
        try requireBF16()
        var source = Source(s: 12345)
        withThreads([1, 2]) { threads in
            for (tA, tB) in Self.layouts {
                for (m, n, k, beta) in [(40, 1100, 1100, Float(0.5)), (70, 600, 1027, 0), (300, 65, 700, 1)] {
                    if let e = check(m, n, k, transA: tA, transB: tB, alpha: 0.5, beta: beta, pad: 1, source: &source) {
                        XCTFail("m=\(m) n=\(n) k=\(k) tA=\(tA) tB=\(tB) threads=\(threads): \(e)")
                    }
                }
            }
        }
    }

    /// Round-to-nearest-even on chosen bit patterns (expected values worked out by hand).
    func testRoundingBitPatterns() {
        let cases: [(UInt32, UInt16)] = [
            (0x3F80_0000, 0x3F80),   // 1.0 exactly
            (0x3F80_7FFF, 0x3F80),   // just below half: down
            (0x3F80_8000, 0x3F80),   // tie, even below: stays
            (0x3F81_8000, 0x3F82),   // tie, odd below: up to even
            (0x3F80_8001, 0x3F81),   // just above half: up
            (0xBF81_8000, 0xBF82),   // negative tie: magnitude to even
            (0x3FFF_FFFF, 0x4000),   // carry into the exponent
            (0x7F7F_FFFF, 0x7F80),   // largest float overflows to +inf
            (0x7F80_0000, 0x7F80),   // +inf
            (0xFF80_0000, 0xFF80),   // -inf
            (0x8000_0000, 0x8000),   // -0
            (0x0001_8000, 0x0002),   // denormal tie, odd below: up (denormals kept)
            (0x0000_8000, 0x0000),   // denormal tie, even below: down to zero
        ]
        for (input, expected) in cases {
            XCTAssertEqual(Gemm.bf16Bits(Float(bitPattern: input)), expected, String(input, radix: 16))
        }
        // NaN stays NaN, even a signalling one whose payload lies only in the dropped bits.
        for nan: UInt32 in [0x7FC0_0000, 0x7F80_0001, 0xFFC0_0001, 0x7FFF_FFFF] {
            XCTAssertTrue(Gemm.bf16Rounded(Float(bitPattern: nan)).isNaN, String(nan, radix: 16))
        }
    }

    /// The packers' vector rounding equals `bf16Bits`: with the other operand a 0/1 selection matrix, each C
    /// element is exactly one rounded input (k = 64 runs the 16-pair vector paths of every packer).
    func testPackedRoundingIsExact() throws {
        try requireBF16()
        var source = Source(s: 99)
        let k = 64, size = 70
        // Random values, a quarter of them forced onto rounding ties.
        let values = (0..<(size * k)).map { i -> Float in
            let v = source.next()
            return i % 4 == 0 ? Float(bitPattern: (v.bitPattern & 0xFFFF_0000) | 0x8000) : v
        }
        let select = (0..<(k * size)).map { i -> Float in i / size == i % size % k ? 1 : 0 }  // [k][size]: p == j % k
        for (tA, tB) in Self.layouts {
            // C = X · S: C[i, j] = X[i, j % k], X [size, k] stored as op(A) requires.
            let a = tA ? transpose(values, rows: size, cols: k) : values
            let b = tB ? transpose(select, rows: k, cols: size) : select
            var c = [Float](repeating: .nan, count: size * size)
            Gemm.gemm(precision: .bf16, transA: tA, transB: tB, m: size, n: size, k: k, a: a, lda: tA ? size : k,
                      b: b, ldb: tB ? k : size, c: &c, ldc: size)
            // C = S' · Y with S' [size, k] selecting row i % k of Y [k, size].
            let s2 = transpose(select, rows: k, cols: size)
            let a2 = tA ? select : s2
            let y = Array(values[0..<(k * size)])
            let b2 = tB ? transpose(y, rows: k, cols: size) : y
            var c2 = [Float](repeating: .nan, count: size * size)
            Gemm.gemm(precision: .bf16, transA: tA, transB: tB, m: size, n: size, k: k, a: a2, lda: tA ? size : k,
                      b: b2, ldb: tB ? k : size, c: &c2, ldc: size)
            for i in 0..<size {
                for j in 0..<size {
                    let x = Gemm.bf16Rounded(values[i * k + j % k]), yv = Gemm.bf16Rounded(y[(i % k) * size + j])
                    XCTAssertEqual(c[i * size + j].bitPattern, x.bitPattern, "A side tA=\(tA) tB=\(tB) [\(i),\(j)]")
                    XCTAssertEqual(c2[i * size + j].bitPattern, yv.bitPattern, "B side tA=\(tA) tB=\(tB) [\(i),\(j)]")
                }
            }
        }
    }

    private func transpose(_ x: [Float], rows: Int, cols: Int) -> [Float] {
        (0..<(rows * cols)).map { i in x[(i % rows) * cols + i / rows] }
    }

    /// `.fp32` is `sgemm`, bit for bit (and so is `.bf16` where the CPU lacks it).
    func testFP32IsSgemm() {
        var source = Source(s: 7)
        withThreads([1, 2]) { _ in
            for (tA, tB) in Self.layouts {
                for (m, n, k) in [(1, 65, 33), (37, 1, 300), (130, 257, 600), (64, 700, 129)] {
                    let a = (0..<(m * k)).map { _ in source.next() }, b = (0..<(k * n)).map { _ in source.next() }
                    let c0 = (0..<(m * n)).map { _ in source.next() }
                    var expected = c0
                    Gemm.sgemm(transA: tA, transB: tB, m: m, n: n, k: k, alpha: 0.75, a: a, lda: tA ? m : k,
                               b: b, ldb: tB ? k : n, beta: 0.5, c: &expected, ldc: n)
                    for precision in Gemm.bf16Available ? [GemmPrecision.fp32] : [.fp32, .bf16] {
                        var c = c0
                        Gemm.gemm(precision: precision, transA: tA, transB: tB, m: m, n: n, k: k, alpha: 0.75, a: a,
                                  lda: tA ? m : k, b: b, ldb: tB ? k : n, beta: 0.5, c: &c, ldc: n)
                        XCTAssertEqual(c.map(\.bitPattern), expected.map(\.bitPattern),
                                       "\(precision) m=\(m) n=\(n) k=\(k) tA=\(tA) tB=\(tB)")
                    }
                }
            }
        }
    }
}
