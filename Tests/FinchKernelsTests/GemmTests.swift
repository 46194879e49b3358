import XCTest
import FinchKernels

/// SGEMM against a Double-accumulating scalar reference: odd sizes, all four transpose combinations,
/// alpha/beta, padded leading dimensions, 1 and 2 threads.
final class GemmTests: XCTestCase {
    private struct Rng {
        var s: UInt64
        mutating func next() -> Float {
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: s >> 11) % 2_000_001 - 1_000_000) / 1_000_000
        }
    }

    /// Runs one case and returns the worst |error| relative to the scale of the sum.
    private func run(_ m: Int, _ n: Int, _ k: Int, transA: Bool, transB: Bool,
                     alpha: Float, beta: Float, pad: Int, rng: inout Rng) -> Double {
        let lda = (transA ? m : k) + pad, ldb = (transB ? k : n) + pad, ldc = n + pad
        let a = (0..<((transA ? k : m) * lda)).map { _ in rng.next() }
        let b = (0..<((transB ? n : k) * ldb)).map { _ in rng.next() }
        var c = (0..<(m * ldc)).map { _ in rng.next() }
        if beta == 0 { for i in stride(from: 0, to: c.count, by: 3) { c[i] = .nan } }   // must be ignored
        let c0 = c
        Gemm.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                   b: b, ldb: ldb, beta: beta, c: &c, ldc: ldc)
        var worst = 0.0
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k {
                    s += Double(transA ? a[p * lda + i] : a[i * lda + p]) * Double(transB ? b[j * ldb + p] : b[p * ldb + j])
                }
                var ref = Double(alpha) * s
                if beta != 0 { ref += Double(beta) * Double(c0[i * ldc + j]) }
                let err = abs(ref - Double(c[i * ldc + j])) / (Double(k).squareRoot() + 1)
                if !(err <= worst) { worst = err }
            }
            // Padding columns of C are never touched.
            for j in n..<ldc where !(c[i * ldc + j] == c0[i * ldc + j] || (c[i * ldc + j].isNaN && c0[i * ldc + j].isNaN)) {
                return .infinity
            }
        }
        return worst
    }

    func testAllLayoutsOddSizes() {
        let pool = ThreadPool.shared
        let saved = pool.threads
        defer { pool.setThreads(saved) }
        var rng = Rng(s: 42)
        for threads in [1, 2] {
            pool.setThreads(threads)
            for (ci, (m, n, k)) in [(1, 1, 1), (7, 33, 130), (130, 257, 7), (257, 130, 33), (33, 1, 257),
                                    (1, 257, 130), (1, 130, 257), (130, 7, 257), (64, 200, 300)].enumerated() {
                for transA in [false, true] {
                    for transB in [false, true] {
                        let (alpha, beta): (Float, Float) = ci % 3 == 0 ? (1, 0) : (ci % 3 == 1 ? (0.75, 0.5) : (-1.5, 0))
                        let err = run(m, n, k, transA: transA, transB: transB, alpha: alpha, beta: beta,
                                      pad: ci % 2 == 0 ? 0 : 3, rng: &rng)
                        XCTAssertLessThan(err, 1e-5, "m=\(m) n=\(n) k=\(k) tA=\(transA) tB=\(transB) threads=\(threads)")
                    }
                }
            }
        }
    }

    /// Shapes larger than one cache block in every dimension (several k blocks, several n blocks).
    func testMultiBlock() {
        var rng = Rng(s: 7)
        for (transA, transB) in [(false, false), (false, true), (true, false), (true, true)] {
            let err = run(20, 1100, 600, transA: transA, transB: transB, alpha: 1, beta: 0.25, pad: 1, rng: &rng)
            XCTAssertLessThan(err, 1e-5, "tA=\(transA) tB=\(transB)")
        }
    }

    func testZeroKScalesC() {
        var c: [Float] = [1, .nan, 3, 4]
        let a: [Float] = [0], b: [Float] = [0]
        Gemm.sgemm(transA: false, transB: false, m: 2, n: 2, k: 0, a: a, lda: 1, b: b, ldb: 2, beta: 0, c: &c, ldc: 2)
        XCTAssertEqual(c, [0, 0, 0, 0])
        c = [1, 2, 3, 4]
        Gemm.sgemm(transA: false, transB: false, m: 2, n: 2, k: 0, a: a, lda: 1, b: b, ldb: 2, beta: 2, c: &c, ldc: 2)
        XCTAssertEqual(c, [2, 4, 6, 8])
    }
}
