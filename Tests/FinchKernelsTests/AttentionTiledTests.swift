import XCTest
import Foundation
import FinchKernels

/// The tiled attention kernels (64-query × 64-key blocks, padded head sizes, the few-query row path) against a
/// plain Double reference on shapes that straddle the tile edges, with masks, packed documents, windows,
/// custom scales and keys longer than queries; plus determinism and thread-count independence.
///
/// Tolerance: every element of out, lse, dq, dk, dv within 1e-5 · (the largest |reference| of that tensor, at
/// least 1), i.e. about 1e-5 relative to the output scale.
final class AttentionTiledTests: XCTestCase {
    struct Case {
        var batch = 1
        var tq: Int
        var tk: Int
        var heads: Int
        var kvHeads: Int
        var hd: Int
        var mask = false
        var documents = false
        var window: Int? = nil
        var scale: Float? = nil
        var tag: String {
            "B\(batch) Tq\(tq) Tk\(tk) H\(heads)/\(kvHeads) hd\(hd)\(mask ? " mask" : "")\(documents ? " docs" : "")"
                + " window \(window.map(String.init) ?? "-") scale \(scale.map { "\($0)" } ?? "-")"
        }
    }

    struct Inputs { var q, k, v, dOut, mask: [Float]; var docs: [Int32]? }
    struct Outputs: Equatable { var out, lse, dq, dk, dv: [Float] }

    func inputs(_ c: Case, seed: UInt64) -> Inputs {
        var rng = MKRNG(seed)
        func rand(_ n: Int, _ scale: Float = 1) -> [Float] { (0..<n).map { _ in rng.float(scale) } }
        // Scores of a few units, so the softmax is neither flat nor one-hot.
        let q = rand(c.batch * c.tq * c.heads * c.hd, 2), k = rand(c.batch * c.tk * c.kvHeads * c.hd, 2)
        let v = rand(c.batch * c.tk * c.kvHeads * c.hd), dOut = rand(c.batch * c.tq * c.heads * c.hd)
        var mask = [Float](repeating: 1, count: c.batch * c.tk)
        if c.mask { for i in 0..<mask.count where rng.next() % 5 == 0 { mask[i] = 0 } }
        var docs: [Int32]? = nil
        if c.documents {
            var d = [Int32](repeating: Attention.everyDocument, count: c.batch * c.tk)
            for b in 0..<c.batch {
                var id: Int32 = 0
                for j in (c.tk - c.tq)..<c.tk {
                    if j > c.tk - c.tq && rng.next() % 29 == 0 { id += 1 }
                    d[b * c.tk + j] = id
                }
            }
            docs = d
        }
        return Inputs(q: q, k: k, v: v, dOut: dOut, mask: mask, docs: docs)
    }

    func shape(_ c: Case) -> AttentionShape {
        AttentionShape(batch: c.batch, queries: c.tq, keys: c.tk, heads: c.heads, kvHeads: c.kvHeads, headDim: c.hd,
                       window: c.window, scale: c.scale)
    }

    func run(_ c: Case, _ x: Inputs) -> Outputs {
        let s = shape(c)
        var q = x.q, k = x.k, v = x.v, dOut = x.dOut, mask = x.mask
        var out = [Float](repeating: .nan, count: q.count), lse = [Float](repeating: .nan, count: c.batch * c.heads * c.tq)
        var dq = [Float](repeating: .nan, count: q.count), dk = [Float](repeating: .nan, count: k.count)
        var dv = [Float](repeating: .nan, count: v.count)
        let qw = c.heads * c.hd, kw = c.kvHeads * c.hd
        func rows(_ p: UnsafeMutablePointer<Float>, _ w: Int, _ len: Int) -> StridedRows { StridedRows(p, rowStride: w, batchStride: w * len) }
        func go(_ d: DocumentIDs?) {
            q.withUnsafeMutableBufferPointer { q in k.withUnsafeMutableBufferPointer { k in v.withUnsafeMutableBufferPointer { v in
            dOut.withUnsafeMutableBufferPointer { dO in mask.withUnsafeMutableBufferPointer { m in out.withUnsafeMutableBufferPointer { o in
            lse.withUnsafeMutableBufferPointer { l in dq.withUnsafeMutableBufferPointer { dq in dk.withUnsafeMutableBufferPointer { dk in
            dv.withUnsafeMutableBufferPointer { dv in
                let qr = rows(q.baseAddress!, qw, c.tq), kr = rows(k.baseAddress!, kw, c.tk), vr = rows(v.baseAddress!, kw, c.tk)
                let or = rows(o.baseAddress!, qw, c.tq)
                let mp = c.mask ? UnsafePointer(m.baseAddress!) : nil
                Attention.forward(s, q: qr, k: kr, v: vr, keyMask: mp, documents: d, out: or, lse: l.baseAddress!)
                Attention.backward(s, q: qr, k: kr, v: vr, out: or, dOut: rows(dO.baseAddress!, qw, c.tq), keyMask: mp, documents: d,
                                   lse: l.baseAddress!, dq: rows(dq.baseAddress!, qw, c.tq), dk: rows(dk.baseAddress!, kw, c.tk),
                                   dv: rows(dv.baseAddress!, kw, c.tk))
            } } } } } } } } } }
        }
        if let docs = x.docs { docs.withUnsafeBufferPointer { go(DocumentIDs($0.baseAddress!)) } } else { go(nil) }
        return Outputs(out: out, lse: lse, dq: dq, dk: dk, dv: dv)
    }

    /// Softmax attention and its gradient in Double, one (batch, head, query) at a time.
    func reference(_ c: Case, _ x: Inputs) -> (out: [Double], lse: [Double], dq: [Double], dk: [Double], dv: [Double]) {
        let s = shape(c), hd = c.hd, g = c.heads / c.kvHeads
        let scale = c.scale.map(Double.init) ?? 1 / Double(hd).squareRoot()
        var out = [Double](repeating: 0, count: x.q.count), lse = [Double](repeating: .infinity, count: c.batch * c.heads * c.tq)
        var dq = out, dk = [Double](repeating: 0, count: x.k.count), dv = dk
        for b in 0..<c.batch {
            for h in 0..<c.heads {
                for i in 0..<c.tq {
                    let qi = ((b * c.tq + i) * c.heads + h) * hd
                    let abs = s.queryOffset + i
                    let seen = (0..<c.tk).filter { j in
                        guard j <= abs, x.mask[b * c.tk + j] != 0 else { return false }
                        if let w = c.window, abs - j >= w { return false }
                        if let d = x.docs { let kd = d[b * c.tk + j]; return kd == Attention.everyDocument || kd == d[b * c.tk + abs] }
                        return true
                    }
                    if seen.isEmpty { continue }
                    func ki(_ j: Int) -> Int { ((b * c.tk + j) * c.kvHeads + h / g) * hd }
                    func dot(_ a: [Float], _ ai: Int, _ bv: [Float], _ bi: Int) -> Double {
                        var acc = 0.0
                        for d in 0..<hd { acc += Double(a[ai + d]) * Double(bv[bi + d]) }
                        return acc
                    }
                    let sc = seen.map { dot(x.q, qi, x.k, ki($0)) * scale }
                    let m = sc.max()!, z = sc.reduce(0) { $0 + exp($1 - m) }
                    let p = sc.map { exp($0 - m) / z }
                    lse[(b * c.heads + h) * c.tq + i] = m + log(z)
                    for (n, j) in seen.enumerated() { for d in 0..<hd { out[qi + d] += p[n] * Double(x.v[ki(j) + d]) } }
                    let dp = seen.map { dot(x.dOut, qi, x.v, ki($0)) }
                    let delta = zip(p, dp).reduce(0) { $0 + $1.0 * $1.1 }
                    for (n, j) in seen.enumerated() {
                        let ds = p[n] * (dp[n] - delta) * scale
                        for d in 0..<hd {
                            dv[ki(j) + d] += p[n] * Double(x.dOut[qi + d])
                            dq[qi + d] += ds * Double(x.k[ki(j) + d])
                            dk[ki(j) + d] += ds * Double(x.q[qi + d])
                        }
                    }
                }
            }
        }
        return (out, lse, dq, dk, dv)
    }

    func assertClose(_ got: [Float], _ want: [Double], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, what)
        let finite = want.filter { $0.isFinite }
        let tol = 1e-5 * max(1, finite.map { Swift.abs($0) }.max() ?? 1)
        var worst = 0.0, at = -1
        for (n, (a, b)) in zip(got, want).enumerated() {
            let d = b.isFinite ? Swift.abs(Double(a) - b) : (Double(a) == b ? 0 : .infinity)
            if !(d <= worst) { worst = d; at = n }
        }
        if worst > tol || worst.isNaN {
            XCTFail("\(what): element \(at) got \(got[at]), expected \(want[at]) (error \(worst), tolerance \(tol))", file: file, line: line)
        }
    }

    func check(_ c: Case, seed: UInt64) {
        let x = inputs(c, seed: seed)
        let got = run(c, x), r = reference(c, x)
        assertClose(got.out, r.out, "out \(c.tag)")
        assertClose(got.lse, r.lse, "lse \(c.tag)")
        assertClose(got.dq, r.dq, "dq \(c.tag)")
        assertClose(got.dk, r.dk, "dk \(c.tag)")
        assertClose(got.dv, r.dv, "dv \(c.tag)")
    }

    /// Self-attention over lengths either side of the 64-row tiles and the 8-query row path, every head size.
    func testSelfAttentionAcrossTileEdges() {
        var seed: UInt64 = 1
        for t in [1, 2, 7, 63, 64, 65, 130] {
            for hd in [8, 17, 32, 64, 80, 128] {
                let heads = [(1, 1), (4, 2), (9, 3)][Int(seed % 3)]
                check(Case(batch: 2, tq: t, tk: t, heads: heads.0, kvHeads: heads.1, hd: hd), seed: seed)
                seed += 1
            }
        }
        check(Case(tq: 300, tk: 300, heads: 9, kvHeads: 3, hd: 64), seed: 77)
    }

    /// Keys longer than queries (KV cache, prefix keys): the queries are the last keys.
    func testKeysLongerThanQueries() {
        var seed: UInt64 = 100
        for (tq, tk) in [(1, 300), (2, 65), (7, 130), (63, 64), (64, 130), (65, 300), (130, 300)] {
            for hd in [17, 64] {
                check(Case(batch: 2, tq: tq, tk: tk, heads: 4, kvHeads: 2, hd: hd), seed: seed)
                seed += 1
            }
        }
    }

    /// Key padding masks, packed documents, sliding windows and custom scales, alone and together.
    func testMasksDocumentsWindowsScales() {
        var seed: UInt64 = 200
        for (tq, tk) in [(7, 7), (65, 65), (130, 130), (63, 130), (300, 300)] {
            for (mask, docs, window, scale) in [(true, false, nil, nil), (false, true, nil, nil), (false, false, 5, nil),
                                                (false, false, 70, Float(0.2)), (true, true, 100, Float(0.3)), (false, false, nil, Float(1.5))]
                as [(Bool, Bool, Int?, Float?)] {
                let hd = [8, 32, 64, 80][Int(seed % 4)]
                check(Case(batch: 2, tq: tq, tk: tk, heads: 4, kvHeads: 2, hd: hd, mask: mask, documents: docs, window: window, scale: scale),
                      seed: seed)
                seed += 1
            }
        }
    }

    /// A query that sees no key: zero output, lse +∞, zero dq; keys nobody sees get zero dk/dv.
    func testUnseenQueriesAndKeys() {
        let c = Case(batch: 1, tq: 70, tk: 70, heads: 2, kvHeads: 1, hd: 16, mask: true)
        var x = inputs(c, seed: 5)
        for j in 0..<10 { x.mask[j] = 0 }   // queries 0…9 see nothing; keys 0…9 are seen by nobody
        let got = run(c, x), r = reference(c, x)
        assertClose(got.out, r.out, "out"); assertClose(got.lse, r.lse, "lse")
        assertClose(got.dq, r.dq, "dq"); assertClose(got.dk, r.dk, "dk"); assertClose(got.dv, r.dv, "dv")
        for h in 0..<2 { for i in 0..<10 { XCTAssertEqual(got.lse[h * 70 + i], .infinity) } }
        XCTAssertEqual(Array(got.dk[0..<(10 * 16)]), [Float](repeating: 0, count: 160))
        XCTAssertEqual(Array(got.dv[0..<(10 * 16)]), [Float](repeating: 0, count: 160))
        XCTAssertEqual(Array(got.out[0..<(10 * 32)]), [Float](repeating: 0, count: 320))
    }

    /// Same inputs twice: bit-identical; 1 thread vs 2 (vs 3): within tolerance of each other.
    func testDeterminismAndThreadCount() {
        let pool = ThreadPool.shared, saved = pool.threads
        defer { pool.setThreads(saved) }
        for c in [Case(batch: 1, tq: 300, tk: 300, heads: 9, kvHeads: 3, hd: 64, mask: true),
                  Case(batch: 2, tq: 130, tk: 300, heads: 4, kvHeads: 2, hd: 17, documents: true, window: 90)] {
            let x = inputs(c, seed: 9)
            pool.setThreads(2)
            let a = run(c, x), b = run(c, x)
            XCTAssertEqual(a, b, "bit-identical reruns \(c.tag)")
            let r = reference(c, x)
            for t in [1, 3] {
                pool.setThreads(t)
                let o = run(c, x)
                XCTAssertEqual(o, run(c, x), "bit-identical reruns at \(t) threads \(c.tag)")
                assertClose(o.out, r.out, "out at \(t) threads"); assertClose(o.dq, r.dq, "dq at \(t) threads")
                assertClose(o.dk, r.dk, "dk at \(t) threads"); assertClose(o.dv, r.dv, "dv at \(t) threads")
                assertClose(o.dq, a.dq.map(Double.init), "dq \(t) vs 2 threads")
            }
        }
    }
}
