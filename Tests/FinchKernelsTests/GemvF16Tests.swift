import XCTest
import FinchKernels

/// `F16Matrix` (an f16 file's weights held as IEEE half) against an fp64 reference on the same half-exact
/// weights: every kernel (AVX-512, AVX2 + F16C, portable) and the prompt path (widened tiles through the fp32
/// GEMM) compute in fp32, so they agree to 1e-5 · Σ|x·w|. Odd shapes (rows and columns that are not multiples
/// of 4, 8, 16 or 32), m = 1…16 plus prompt sizes, 1 and 2 threads, beta 0 and 1, and a row stride ldx ≠ k.
final class GemvF16Tests: XCTestCase {
    func testRoundingKeepsHalfValuesAndHandlesSpecials() {
        let src: [Float] = [0, -0.0, 1, -2.5, 65504, 1e-7, 6.1e-5, 70000, -70000, .infinity, 0.1, 1.0009765625]
        let h = F16Matrix(rows: 1, cols: src.count, from: src)
        var wide = [Float](repeating: 0, count: src.count)
        h.expand(rows: 0..<1, into: &wide)
        for (a, b) in zip(src, wide) {
            let want = Float(Float16(a))   // nearest even; ±inf past 65504
            XCTAssertEqual(b, want, "\(a)")
        }
        let nan = F16Matrix(rows: 1, cols: 1, from: [Float.nan])
        var out: [Float] = [0]
        nan.expand(rows: 0..<1, into: &out)
        XCTAssertTrue(out[0].isNaN)
    }

    func testMatchesReferenceOnOddShapesForEveryKernel() {
        var rng = MKRNG(71)
        let saved = ThreadPool.shared.threads
        defer { ThreadPool.shared.setThreads(saved) }
        for (n, k) in [(1, 1), (3, 15), (7, 37), (5, 16), (67, 100), (130, 576), (9, 1536)] {
            let v = (0..<(n * k)).map { i in rng.float(Float(1 + i % 7) * 0.2) }
            let h = F16Matrix(rows: n, cols: k, from: v)
            var wide = [Float](repeating: 0, count: n * k)
            h.expand(rows: 0..<n, into: &wide)
            for i in 0..<(n * k) { XCTAssertLessThanOrEqual(abs(wide[i] - v[i]), abs(v[i]) / 2048 + 3e-8) }
            for m in Array(1...16) + [17, 33] {
                let ldx = k + 3
                let x = (0..<(m * ldx)).map { _ in rng.float() }
                let y0 = (0..<(m * n)).map { _ in rng.float() }
                for threads in [1, 2] {
                    ThreadPool.shared.setThreads(threads)
                    let beta: Float = (m + threads) % 2 == 0 ? 1 : 0
                    let kernels: [F16Matrix.Kernel] = m <= QuantGemm.fusedMaxRows ? [.best, .f16c, .portable] : [.best]
                    for kernel in kernels {
                        var y = y0
                        h.forward(m: m, x: x, ldx: ldx, beta: beta, y: &y, ldy: n, kernel: kernel)
                        guard check(y, y0, beta: beta, x: x, ldx: ldx, w: wide, m: m, n: n, k: k,
                                    "\(n)x\(k) m=\(m) \(threads)t \(kernel)") else { return }
                    }
                }
            }
        }
    }

    private func check(_ y: [Float], _ y0: [Float], beta: Float, x: [Float], ldx: Int, w: [Float], m: Int, n: Int, k: Int,
                       _ what: String) -> Bool {
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0, a = 0.0
                for p in 0..<k {
                    let t = Double(x[i * ldx + p]) * Double(w[j * k + p])
                    s += t; a += abs(t)
                }
                let want = s + Double(beta) * Double(y0[i * n + j])
                if abs(Double(y[i * n + j]) - want) > 1e-5 * a + 1e-6 {
                    XCTFail("\(what) i=\(i) j=\(j): \(y[i * n + j]) vs \(want) (Σ|xw| \(a))")
                    return false
                }
            }
        }
        return true
    }
}
