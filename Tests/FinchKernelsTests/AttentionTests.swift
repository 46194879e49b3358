import XCTest
import Foundation
import FinchKernels

/// Causal GQA attention with a key mask and a query offset (keys longer than queries) against a
/// scalar Double reference; the backward against the analytic gradient of Σ out·dOut.
final class AttentionTests: XCTestCase {
    struct Ref { var out: [Double]; var dq: [Double]; var dk: [Double]; var dv: [Double] }

    /// q [B,Tq,H,hd], k/v [B,Tk,Hkv,hd], mask [B,Tk]; straightforward softmax in Double.
    func reference(_ s: AttentionShape, q: [Float], k: [Float], v: [Float], mask: [Float], dOut: [Float]) -> Ref {
        let hd = s.headDim, g = s.heads / s.kvHeads, scale = 1 / Double(hd).squareRoot()
        var r = Ref(out: .init(repeating: 0, count: q.count), dq: .init(repeating: 0, count: q.count),
                    dk: .init(repeating: 0, count: k.count), dv: .init(repeating: 0, count: v.count))
        for b in 0..<s.batch {
            for h in 0..<s.heads {
                let kh = h / g
                for i in 0..<s.queries {
                    let qi = ((b * s.queries + i) * s.heads + h) * hd
                    let keys = (0..<s.keys).filter { $0 <= s.queryOffset + i && mask[b * s.keys + $0] != 0 }
                    if keys.isEmpty { continue }
                    func ki(_ j: Int) -> Int { ((b * s.keys + j) * s.kvHeads + kh) * hd }
                    let sc = keys.map { j in (0..<hd).reduce(0.0) { $0 + Double(q[qi + $1]) * Double(k[ki(j) + $1]) } * scale }
                    let m = sc.max()!
                    let e = sc.map { exp($0 - m) }, z = e.reduce(0, +)
                    let p = e.map { $0 / z }
                    for (n, j) in keys.enumerated() { for d in 0..<hd { r.out[qi + d] += p[n] * Double(v[ki(j) + d]) } }
                    // backward
                    let dp = keys.map { j in (0..<hd).reduce(0.0) { $0 + Double(dOut[qi + $1]) * Double(v[ki(j) + $1]) } }
                    let delta = zip(p, dp).map { $0 * $1 }.reduce(0, +)
                    for (n, j) in keys.enumerated() {
                        let ds = p[n] * (dp[n] - delta) * scale
                        for d in 0..<hd {
                            r.dv[ki(j) + d] += p[n] * Double(dOut[qi + d])
                            r.dq[qi + d] += ds * Double(k[ki(j) + d])
                            r.dk[ki(j) + d] += ds * Double(q[qi + d])
                        }
                    }
                }
            }
        }
        return r
    }

    func check(batch: Int, tq: Int, tk: Int, heads: Int, kvHeads: Int, hd: Int, seed: UInt64) {
        var rng = MKRNG(seed)
        let s = AttentionShape(batch: batch, queries: tq, keys: tk, heads: heads, kvHeads: kvHeads, headDim: hd)
        let q = rng.tensor([batch, tq, heads * hd]), k = rng.tensor([batch, tk, kvHeads * hd])
        let v = rng.tensor([batch, tk, kvHeads * hd]), dOut = rng.tensor([batch, tq, heads * hd])
        let mask = Tensor(shape: [batch, tk])
        for b in 0..<batch { for j in 0..<tk { mask[b * tk + j] = (b == 1 && j >= tk - 2 && tk > 2) ? 0 : 1 } }
        let out = Tensor(shape: q.shape), lse = Tensor(shape: [batch, heads, tq])
        func rows(_ t: Tensor, _ len: Int) -> StridedRows { StridedRows(t.ptr, rowStride: t.shape[2], batchStride: len * t.shape[2]) }
        Attention.forward(s, q: rows(q, tq), k: rows(k, tk), v: rows(v, tk), keyMask: mask.ptr, out: rows(out, tq), lse: lse.ptr)
        let dq = rng.tensor(q.shape), dk = rng.tensor(k.shape), dv = rng.tensor(v.shape)   // garbage: must be overwritten
        Attention.backward(s, q: rows(q, tq), k: rows(k, tk), v: rows(v, tk), out: rows(out, tq), dOut: rows(dOut, tq),
                           keyMask: mask.ptr, lse: lse.ptr, dq: rows(dq, tq), dk: rows(dk, tk), dv: rows(dv, tk))
        let r = reference(s, q: q.array, k: k.array, v: v.array, mask: mask.array, dOut: dOut.array)
        let tag = "B\(batch) Tq\(tq) Tk\(tk) H\(heads)/\(kvHeads) hd\(hd)"
        mkAssertClose(out.array, r.out.map(Float.init), "attention out \(tag)")
        mkAssertClose(dq.array, r.dq.map(Float.init), "attention dq \(tag)")
        mkAssertClose(dk.array, r.dk.map(Float.init), "attention dk \(tag)")
        mkAssertClose(dv.array, r.dv.map(Float.init), "attention dv \(tag)")
    }

    func testSelfAttentionOddSizes() {
        for (i, t) in [1, 7, 33].enumerated() {
            for hd in [1, 7, 33] { check(batch: 2, tq: t, tk: t, heads: 4, kvHeads: 2, hd: hd, seed: UInt64(10 * i + hd)) }
        }
        check(batch: 1, tq: 130, tk: 130, heads: 2, kvHeads: 1, hd: 16, seed: 99)
    }

    func testKeysLongerThanQueries() {
        // Prefix / KV-cache shape: 5 earlier keys every query sees.
        check(batch: 2, tq: 7, tk: 12, heads: 3, kvHeads: 3, hd: 7, seed: 7)
        check(batch: 2, tq: 1, tk: 33, heads: 4, kvHeads: 1, hd: 33, seed: 8)
    }
}
