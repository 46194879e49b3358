import Foundation

/// Which keys the queries of one batch row may see, applied to 64-key score tiles: causal bound, sliding window,
/// key padding mask, packed documents. Hidden scores become −∞ (the softmax then gives them exactly 0).
struct AttentionVisibility {
    let s: AttentionShape
    let mask: UnsafePointer<Float>?
    let docs: UnsafePointer<Int32>?

    init(_ s: AttentionShape, batch b: Int, keyMask: UnsafePointer<Float>?, maskStride: Int?, documents: DocumentIDs?) {
        self.s = s
        mask = keyMask.map { UnsafePointer($0 + b * (maskStride ?? s.keys)) }
        docs = documents?.row(b, keys: s.keys)
    }

    /// Whether every query in `i0..<i1` sees every key of `j0..<j0+64`: then no score of the tile needs masking.
    /// (A tile reaching past the last key is never clear, so its zero padding gets masked.)
    func clear(_ i0: Int, _ i1: Int, _ j0: Int) -> Bool {
        guard j0 + 64 <= s.visible(i0), j0 >= s.firstVisible(i1 - 1) else { return false }
        if let m = mask { for j in j0..<(j0 + 64) where m[j] == 0 { return false } }
        if let d = docs {
            let qd = d[s.queryOffset + i0]
            for i in i0..<i1 where d[s.queryOffset + i] != qd { return false }
            for j in j0..<(j0 + 64) where !Attention.sameDocument(qd, d[j]) { return false }
        }
        return true
    }

    /// Sets the scores query i may not see among keys `j0..<j0+64` to −∞.
    @inline(__always)
    func apply(_ row: UnsafeMutablePointer<Float>, query i: Int, keys j0: Int) {
        let lo = min(64, max(0, s.firstVisible(i) - j0)), hi = min(64, max(lo, s.visible(i) - j0))
        for j in 0..<lo { row[j] = -.infinity }
        for j in hi..<64 { row[j] = -.infinity }
        if let m = mask { for j in lo..<hi where m[j0 + j] == 0 { row[j] = -.infinity } }
        if let d = docs {
            let qd = d[s.queryOffset + i]
            for j in lo..<hi where !Attention.sameDocument(qd, d[j0 + j]) { row[j] = -.infinity }
        }
    }
}
