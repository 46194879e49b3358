import XCTest
import Foundation
import FinchKernels

/// Causal GQA attention with a key mask and a query offset (keys longer than queries) against a
/// scalar Double reference; the backward against the analytic gradient of Σ out·dOut.
final class AttentionTests: XCTestCase {
    struct Ref { var out: [Double]; var dq: [Double]; var dk: [Double]; var dv: [Double] }

    /// q [B,Tq,H,hd], k/v [B,Tk,Hkv,hd], mask [B,Tk]; straightforward softmax in Double.
    /// `docs` [B,Tk]: document ids (query i's is that of key queryOffset + i; `everyDocument` keys are seen by all).
    func reference(_ s: AttentionShape, q: [Float], k: [Float], v: [Float], mask: [Float], dOut: [Float], docs: [Int32]? = nil) -> Ref {
        let hd = s.headDim, g = s.heads / s.kvHeads, scale = s.scale.map(Double.init) ?? 1 / Double(hd).squareRoot()
        var r = Ref(out: .init(repeating: 0, count: q.count), dq: .init(repeating: 0, count: q.count),
                    dk: .init(repeating: 0, count: k.count), dv: .init(repeating: 0, count: v.count))
        for b in 0..<s.batch {
            for h in 0..<s.heads {
                let kh = h / g
                for i in 0..<s.queries {
                    let qi = ((b * s.queries + i) * s.heads + h) * hd
                    let keys = (0..<s.keys).filter { j in
                        guard j <= s.queryOffset + i && mask[b * s.keys + j] != 0 else { return false }
                        if let w = s.window, s.queryOffset + i - j >= w { return false }
                        guard let d = docs else { return true }
                        let kd = d[b * s.keys + j]
                        return kd == Attention.everyDocument || kd == d[b * s.keys + s.queryOffset + i]
                    }
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

    /// Random packed-row document ids [B, Tk]: keys before the queries are `everyDocument` (prefix keys),
    /// the rest contiguous documents of random lengths.
    func randomDocuments(batch: Int, tq: Int, tk: Int, rng: inout MKRNG) -> [Int32] {
        var docs = [Int32](repeating: Attention.everyDocument, count: batch * tk)
        for b in 0..<batch {
            var d: Int32 = 0
            for j in (tk - tq)..<tk {
                if j > tk - tq && rng.next() % 4 == 0 { d += 1 }
                docs[b * tk + j] = d
            }
        }
        return docs
    }

    func check(batch: Int, tq: Int, tk: Int, heads: Int, kvHeads: Int, hd: Int, seed: UInt64, documents: Bool = false,
               window: Int? = nil, scale: Float? = nil) {
        var rng = MKRNG(seed)
        let s = AttentionShape(batch: batch, queries: tq, keys: tk, heads: heads, kvHeads: kvHeads, headDim: hd,
                               window: window, scale: scale)
        let q = rng.tensor([batch, tq, heads * hd]), k = rng.tensor([batch, tk, kvHeads * hd])
        let v = rng.tensor([batch, tk, kvHeads * hd]), dOut = rng.tensor([batch, tq, heads * hd])
        let mask = Tensor(shape: [batch, tk])
        for b in 0..<batch { for j in 0..<tk { mask[b * tk + j] = (b == 1 && j >= tk - 2 && tk > 2) ? 0 : 1 } }
        let docs = documents ? randomDocuments(batch: batch, tq: tq, tk: tk, rng: &rng) : nil
        let out = Tensor(shape: q.shape), lse = Tensor(shape: [batch, heads, tq])
        func rows(_ t: Tensor, _ len: Int) -> StridedRows { StridedRows(t.ptr, rowStride: t.shape[2], batchStride: len * t.shape[2]) }
        let dq = rng.tensor(q.shape), dk = rng.tensor(k.shape), dv = rng.tensor(v.shape)   // garbage: must be overwritten
        func run(_ d: DocumentIDs?) {
            Attention.forward(s, q: rows(q, tq), k: rows(k, tk), v: rows(v, tk), keyMask: mask.ptr, documents: d,
                              out: rows(out, tq), lse: lse.ptr)
            Attention.backward(s, q: rows(q, tq), k: rows(k, tk), v: rows(v, tk), out: rows(out, tq), dOut: rows(dOut, tq),
                               keyMask: mask.ptr, documents: d, lse: lse.ptr, dq: rows(dq, tq), dk: rows(dk, tk), dv: rows(dv, tk))
        }
        if let docs = docs { docs.withUnsafeBufferPointer { run(DocumentIDs($0.baseAddress!)) } } else { run(nil) }
        let r = reference(s, q: q.array, k: k.array, v: v.array, mask: mask.array, dOut: dOut.array, docs: docs)
        let tag = "B\(batch) Tq\(tq) Tk\(tk) H\(heads)/\(kvHeads) hd\(hd)\(documents ? " docs" : "") window \(window.map(String.init) ?? "-")"
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

    /// Sliding window (query i sees key j iff queryOffset + i − j < window) and a custom score scale, with
    /// self-attention, KV-cache-like offsets, masks and packed documents.
    func testSlidingWindowAndScale() {
        for w in [1, 2, 4, 40] {
            check(batch: 2, tq: 12, tk: 12, heads: 4, kvHeads: 2, hd: 7, seed: UInt64(200 + w), window: w, scale: 0.3)
            check(batch: 2, tq: 3, tk: 12, heads: 4, kvHeads: 1, hd: 5, seed: UInt64(300 + w), window: w)
            check(batch: 2, tq: 1, tk: 9, heads: 2, kvHeads: 2, hd: 4, seed: UInt64(400 + w), window: w)
            check(batch: 2, tq: 9, tk: 9, heads: 2, kvHeads: 1, hd: 3, seed: UInt64(500 + w), documents: true, window: w)
        }
    }

    func testKeysLongerThanQueries() {
        // Prefix / KV-cache shape: 5 earlier keys every query sees.
        check(batch: 2, tq: 7, tk: 12, heads: 3, kvHeads: 3, hd: 7, seed: 7)
        check(batch: 2, tq: 1, tk: 33, heads: 4, kvHeads: 1, hd: 33, seed: 8)
    }

    func testDocumentIDsOddSizes() {
        for (i, t) in [1, 7, 33].enumerated() {
            for hd in [1, 7] { check(batch: 2, tq: t, tk: t, heads: 4, kvHeads: 2, hd: hd, seed: UInt64(50 + 10 * i + hd), documents: true) }
        }
        check(batch: 1, tq: 130, tk: 130, heads: 2, kvHeads: 1, hd: 16, seed: 97, documents: true)
        check(batch: 2, tq: 7, tk: 12, heads: 3, kvHeads: 3, hd: 7, seed: 71, documents: true)   // prefix keys seen by every document
    }

    /// A row packing documents A (length a) and B after 3 prefix keys gives, for each document, the outputs
    /// and gradients of running it alone after the same prefix keys.
    func testPackedRowEqualsSeparateDocuments() {
        let P = 3, a = 5, bLen = 8, H = 4, KV = 2, hd = 7
        var rng = MKRNG(123)
        func rows(_ t: Tensor, _ len: Int) -> StridedRows { StridedRows(t.ptr, rowStride: t.shape[2], batchStride: len * t.shape[2]) }
        let prefixK = rng.tensor([1, P, KV * hd]), prefixV = rng.tensor([1, P, KV * hd])
        let T = a + bLen
        let q = rng.tensor([1, T, H * hd]), kReal = rng.tensor([1, T, KV * hd]), vReal = rng.tensor([1, T, KV * hd])
        let dOut = rng.tensor([1, T, H * hd])
        /// Runs queries `range` of the packed tensors with the prefix keys in front; returns out, dq, dk, dv (real keys).
        func run(_ range: Range<Int>, docs: [Int32]?) -> [[Float]] {
            let n = range.count, W = KV * hd
            let k = Tensor(shape: [1, P + n, W]), v = Tensor(shape: [1, P + n, W])
            k.ptr.update(from: prefixK.ptr, count: P * W); v.ptr.update(from: prefixV.ptr, count: P * W)
            (k.ptr + P * W).update(from: kReal.ptr + range.lowerBound * W, count: n * W)
            (v.ptr + P * W).update(from: vReal.ptr + range.lowerBound * W, count: n * W)
            let qs = Tensor(shape: [1, n, H * hd]), dO = Tensor(shape: [1, n, H * hd])
            qs.ptr.update(from: q.ptr + range.lowerBound * H * hd, count: n * H * hd)
            dO.ptr.update(from: dOut.ptr + range.lowerBound * H * hd, count: n * H * hd)
            let s = AttentionShape(batch: 1, queries: n, keys: P + n, heads: H, kvHeads: KV, headDim: hd)
            let out = Tensor(shape: qs.shape), lse = Tensor(shape: [1, H, n])
            let dq = Tensor(shape: qs.shape), dk = Tensor(shape: k.shape), dv = Tensor(shape: v.shape)
            func go(_ d: DocumentIDs?) {
                Attention.forward(s, q: rows(qs, n), k: rows(k, P + n), v: rows(v, P + n), keyMask: nil, documents: d,
                                  out: rows(out, n), lse: lse.ptr)
                Attention.backward(s, q: rows(qs, n), k: rows(k, P + n), v: rows(v, P + n), out: rows(out, n), dOut: rows(dO, n),
                                   keyMask: nil, documents: d, lse: lse.ptr, dq: rows(dq, n), dk: rows(dk, P + n), dv: rows(dv, P + n))
            }
            if let docs = docs { docs.withUnsafeBufferPointer { go(DocumentIDs($0.baseAddress!)) } } else { go(nil) }
            return [out.array, dq.array, Array(dk.array[(P * W)...]), Array(dv.array[(P * W)...]), Array(dk.array[..<(P * W)])]
        }
        let docs = [Int32](repeating: Attention.everyDocument, count: P) + [Int32](repeating: 0, count: a) + [Int32](repeating: 1, count: bLen)
        let packed = run(0..<T, docs: docs)
        let alone = [run(0..<a, docs: nil), run(a..<T, docs: nil)]
        let widths = [H * hd, H * hd, KV * hd, KV * hd]
        for (d, range) in [0..<a, a..<T].enumerated() {
            for (n, name) in ["out", "dq", "dk", "dv"].enumerated() {
                let w = widths[n]
                mkAssertClose(Array(packed[n][(range.lowerBound * w)..<(range.upperBound * w)]), alone[d][n], "packed doc \(d) \(name)")
            }
        }
        // The prefix keys' gradient is the sum over both documents.
        mkAssertClose(packed[4], zip(alone[0][4], alone[1][4]).map { $0 + $1 }, "packed prefix dk")
        // Without document ids, document B's queries see document A: the outputs differ.
        let leaky = run(0..<T, docs: nil)
        XCTAssertNotEqual(Array(leaky[0][(a * H * hd)...]), alone[1][0])
    }
}
