import Foundation
import XCTest
import FinchKernels

/// Left padding (as batched scoring and generation use): a query that sees no key gets a zero output and lse +∞,
/// never NaN, forward and backward, and the masked keys' rows never leak into the other queries.
final class AttentionPaddingTests: XCTestCase {
    func testFullyMaskedQueriesGiveZerosNotNaN() {
        for T in [5, 70, 130] {
            let B = 2, H = 2, hd = 16, W = 3 * H * hd, pad = min(T - 1, 67)
            var qkv = (0..<(B * T * W)).map { Float(($0 * 7919) % 101) / 50 - 1 }
            var mask = [Float](repeating: 1, count: B * T)
            for t in 0..<pad { mask[t] = 0 }   // left padding in row 0
            var out = [Float](repeating: .nan, count: B * T * H * hd), lse = [Float](repeating: 0, count: B * H * T)
            var dOut = (0..<(B * T * H * hd)).map { Float($0 % 13) / 13 }
            var dqkv = [Float](repeating: .nan, count: B * T * W)
            let s = AttentionShape(batch: B, queries: T, keys: T, heads: H, kvHeads: H, headDim: hd)
            qkv.withUnsafeMutableBufferPointer { p in
                out.withUnsafeMutableBufferPointer { o in
                    dqkv.withUnsafeMutableBufferPointer { d in
                        dOut.withUnsafeMutableBufferPointer { g in
                            func rows(_ x: UnsafeMutablePointer<Float>, _ ld: Int) -> StridedRows { StridedRows(x, rowStride: ld, batchStride: T * ld) }
                            let q = rows(p.baseAddress!, W), k = rows(p.baseAddress! + H * hd, W), v = rows(p.baseAddress! + 2 * H * hd, W)
                            Attention.forward(s, q: q, k: k, v: v, keyMask: mask, out: rows(o.baseAddress!, H * hd), lse: &lse)
                            Attention.backward(s, q: q, k: k, v: v, out: rows(o.baseAddress!, H * hd), dOut: rows(g.baseAddress!, H * hd),
                                               keyMask: mask, lse: lse, dq: rows(d.baseAddress!, W), dk: rows(d.baseAddress! + H * hd, W),
                                               dv: rows(d.baseAddress! + 2 * H * hd, W))
                        }
                    }
                }
            }
            XCTAssertEqual(out.filter { $0.isNaN }.count, 0, "T \(T): NaN outputs")
            XCTAssertEqual(dqkv.filter { $0.isNaN }.count, 0, "T \(T): NaN gradients")
            XCTAssertTrue(out[0..<(H * hd)].allSatisfy { $0 == 0 }, "T \(T): a query seeing no key must output zeros")
            XCTAssertEqual(lse[0], .infinity)
        }
    }
}

extension AttentionPaddingTests {
    /// Right padding over a batch of 16 rows of different lengths (batched reward scoring), GQA 4/2, head size 8:
    /// every real query's output equals a plain reference that skips masked keys.
    func testRightPaddedBatchMatchesReference() {
        var state: UInt64 = 3
        func next() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state >> 33 }
        for (B, T) in [(16, 48), (16, 9), (3, 70), (16, 100), (16, 128), (5, 200)] {
            let H = 4, KV = 2, hd = 8, W = (H + 2 * KV) * hd
            let qkv = (0..<(B * T * W)).map { _ in Float(next() % 2001) / 1000 - 1 }
            var mask = [Float](repeating: 0, count: B * T)
            let lengths = (0..<B).map { _ in 1 + Int(next() % UInt64(T)) }
            for b in 0..<B { for t in 0..<lengths[b] { mask[b * T + t] = 1 } }
            var out = [Float](repeating: 0, count: B * T * H * hd), lse = [Float](repeating: 0, count: B * H * T)
            var q = qkv
            q.withUnsafeMutableBufferPointer { p in
                out.withUnsafeMutableBufferPointer { o in
                    func rows(_ x: UnsafeMutablePointer<Float>, _ ld: Int) -> StridedRows { StridedRows(x, rowStride: ld, batchStride: T * ld) }
                    Attention.forward(AttentionShape(batch: B, queries: T, keys: T, heads: H, kvHeads: KV, headDim: hd),
                                      q: rows(p.baseAddress!, W), k: rows(p.baseAddress! + H * hd, W), v: rows(p.baseAddress! + (H + KV) * hd, W),
                                      keyMask: mask, out: rows(o.baseAddress!, H * hd), lse: &lse)
                }
            }
            var worst: Double = 0
            for b in 0..<B { for i in 0..<lengths[b] { for h in 0..<H {
                let kvh = h / (H / KV)
                let qi = (b * T + i) * W + h * hd
                var scores: [Double] = []
                for j in 0...i {
                    let kj = (b * T + j) * W + (H + kvh) * hd
                    scores.append((0..<hd).reduce(0.0) { $0 + Double(qkv[qi + $1]) * Double(qkv[kj + $1]) } / Double(hd).squareRoot())
                }
                let mx = scores.max()!, e = scores.map { Foundation.exp($0 - mx) }, sum = e.reduce(0, +)
                for d in 0..<hd {
                    var o = 0.0
                    for j in 0...i { o += e[j] / sum * Double(qkv[(b * T + j) * W + (H + KV + kvh) * hd + d]) }
                    worst = max(worst, abs(o - Double(out[(b * T + i) * H * hd + h * hd + d])))
                }
            } } }
            XCTAssertLessThan(worst, 1e-5, "B \(B) T \(T)")
        }
    }
}

extension AttentionPaddingTests {
    /// The backward over right-padded rows (every query, padded ones included, sees the real keys up to itself)
    /// against a plain Double reference of dq, dk, dv.
    func testRightPaddedBackwardMatchesReference() {
        var state: UInt64 = 11
        func next() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state >> 33 }
        for (B, T) in [(4, 9), (16, 48), (3, 130)] {
            let H = 4, KV = 2, hd = 8, W = (H + 2 * KV) * hd, scale = 1 / Double(hd).squareRoot()
            let qkv = (0..<(B * T * W)).map { _ in Float(next() % 2001) / 1000 - 1 }
            let dOut = (0..<(B * T * H * hd)).map { _ in Float(next() % 2001) / 1000 - 1 }
            var mask = [Float](repeating: 0, count: B * T)
            let lengths = (0..<B).map { _ in 1 + Int(next() % UInt64(T)) }
            // Right padding, and pad ids inside the real tokens too (a pad id that is also the end-of-turn token).
            for b in 0..<B { for t in 0..<lengths[b] where t % 7 != 3 { mask[b * T + t] = 1 } }
            var out = [Float](repeating: 0, count: B * T * H * hd), lse = [Float](repeating: 0, count: B * H * T)
            var d = [Float](repeating: 0, count: B * T * W)
            var q = qkv, g = dOut
            q.withUnsafeMutableBufferPointer { p in
                out.withUnsafeMutableBufferPointer { o in
                    d.withUnsafeMutableBufferPointer { dp in
                        g.withUnsafeMutableBufferPointer { gp in
                            func rows(_ x: UnsafeMutablePointer<Float>, _ ld: Int) -> StridedRows { StridedRows(x, rowStride: ld, batchStride: T * ld) }
                            let s = AttentionShape(batch: B, queries: T, keys: T, heads: H, kvHeads: KV, headDim: hd)
                            let qq = rows(p.baseAddress!, W), kk = rows(p.baseAddress! + H * hd, W), vv = rows(p.baseAddress! + (H + KV) * hd, W)
                            Attention.forward(s, q: qq, k: kk, v: vv, keyMask: mask, out: rows(o.baseAddress!, H * hd), lse: &lse)
                            Attention.backward(s, q: qq, k: kk, v: vv, out: rows(o.baseAddress!, H * hd), dOut: rows(gp.baseAddress!, H * hd),
                                               keyMask: mask, lse: lse, dq: rows(dp.baseAddress!, W), dk: rows(dp.baseAddress! + H * hd, W),
                                               dv: rows(dp.baseAddress! + (H + KV) * hd, W))
                        }
                    }
                }
            }
            var ref = [Double](repeating: 0, count: B * T * W)
            for b in 0..<B { for h in 0..<H {
                let kvh = h / (H / KV)
                func x(_ t: Int, _ off: Int, _ c: Int) -> Double { Double(qkv[(b * T + t) * W + off + c]) }
                for i in 0..<T {
                    let keys = (0...i).filter { mask[b * T + $0] == 1 }
                    guard !keys.isEmpty else { continue }
                    let sc = keys.map { j in (0..<hd).reduce(0.0) { $0 + x(i, h * hd, $1) * x(j, (H + kvh) * hd, $1) } * scale }
                    let mx = sc.max()!, e = sc.map { Foundation.exp($0 - mx) }, sum = e.reduce(0, +), p = e.map { $0 / sum }
                    let dO = (0..<hd).map { Double(dOut[(b * T + i) * H * hd + h * hd + $0]) }
                    let dP = keys.map { j in (0..<hd).reduce(0.0) { $0 + dO[$1] * x(j, (H + KV + kvh) * hd, $1) } }
                    let delta = zip(p, dP).reduce(0.0) { $0 + $1.0 * $1.1 }
                    for (n, j) in keys.enumerated() {
                        let dS = p[n] * (dP[n] - delta) * scale
                        for c in 0..<hd {
                            ref[(b * T + j) * W + (H + KV + kvh) * hd + c] += p[n] * dO[c]
                            ref[(b * T + i) * W + h * hd + c] += dS * x(j, (H + kvh) * hd, c)
                            ref[(b * T + j) * W + (H + kvh) * hd + c] += dS * x(i, h * hd, c)
                        }
                    }
                }
            } }
            var worst = 0.0
            for n in 0..<ref.count { worst = max(worst, abs(ref[n] - Double(d[n]))) }
            XCTAssertLessThan(worst, 1e-4, "B \(B) T \(T)")
        }
    }
}
