import XCTest
import Foundation
import FinchKernels

/// Softmax cross-entropy with ignore index against a Double reference.
final class CrossEntropyTests: XCTestCase {
    func testCrossEntropyMatchesReference() {
        var rng = MKRNG(6)
        for vocab in mkOddSizes + [1000] {
            let rows = 7
            let logits = rng.tensor([rows, vocab], scale: 10)
            var targets = (0..<rows).map { _ in Int32(rng.next() % UInt64(vocab)) }
            targets[2] = -100
            let trained = targets.filter { $0 != -100 }.count
            let scale = 1 / Float(trained)
            let nll = Tensor(shape: [rows]), d = Tensor(shape: [rows, vocab])
            targets.withUnsafeBufferPointer {
                CrossEntropy.forwardBackward(logits: logits.ptr, targets: $0.baseAddress!, rows: rows, vocab: vocab,
                                             nll: nll.ptr, dlogits: d.ptr, scale: scale)
            }
            var rn = [Float](), rd = [Float]()
            for r in 0..<rows {
                let x = (0..<vocab).map { Double(logits[r * vocab + $0]) }
                if targets[r] == -100 { rn.append(0); rd += [Float](repeating: 0, count: vocab); continue }
                let m = x.max()!, z = x.map { exp($0 - m) }.reduce(0, +)
                rn.append(Float(m + log(z) - x[Int(targets[r])]))
                for j in 0..<vocab {
                    rd.append(Float((exp(x[j] - m) / z - (j == Int(targets[r]) ? 1 : 0)) * Double(scale)))
                }
            }
            mkAssertClose(nll.array, rn, abs: 1e-5, rel: 1e-5, "nll vocab \(vocab)")
            mkAssertClose(d.array, rd, abs: 1e-6, rel: 1e-4, "dlogits vocab \(vocab)")
            // In place (dlogits aliasing logits) gives the same result.
            let nll2 = Tensor(shape: [rows])
            targets.withUnsafeBufferPointer {
                CrossEntropy.forwardBackward(logits: logits.ptr, targets: $0.baseAddress!, rows: rows, vocab: vocab,
                                             nll: nll2.ptr, dlogits: logits.ptr, scale: scale)
            }
            mkAssertClose(logits.array, d.array, abs: 1e-30, rel: 0, "in-place dlogits vocab \(vocab)")
        }
    }
}
