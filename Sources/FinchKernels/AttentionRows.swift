import Foundation

extension Attention {
    /// Below this many queries the forward goes one query at a time (decode, short speculative blocks).
    static let rowPathQueries = 8

    /// One (batch, head, query) per step: scores by dot products straight from the key rows, the softmax
    /// vectorised, then out = Σ p_j v_j. No packing, so a single query over a long KV cache costs only its reads.
    static func forwardRows(_ s: AttentionShape, q: StridedRows, k: StridedRows, v: StridedRows,
                            keyMask: UnsafePointer<Float>?, maskStride: Int?, documents: DocumentIDs?,
                            out: StridedRows, lse: UnsafeMutablePointer<Float>) {
        let hd = s.headDim, group = s.heads / s.kvHeads
        let scale = s.scoreScale
        ThreadPool.shared.parallelFor(s.batch * s.heads * s.queries, minChunk: 8) { _, range in
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: max(s.keys, 1))
            defer { scores.deallocate() }
            for task in range {
                let i = task % s.queries, bh = task / s.queries
                let b = bh / s.heads, h = bh % s.heads, kvh = h / group
                let qi = q.row(b, i) + h * hd
                let o = out.row(b, i) + h * hd
                let n = s.visible(i), j0 = s.firstVisible(i)
                let mask = keyMask.map { $0 + b * (maskStride ?? s.keys) }
                let docs = documents?.row(b, keys: s.keys)
                let qd = docs?[s.queryOffset + i] ?? 0
                o.update(repeating: 0, count: hd)
                let sc = scores + j0, count = n - j0
                for j in j0..<n {
                    if let m = mask, m[j] == 0 { scores[j] = -.infinity; continue }
                    if let d = docs, !sameDocument(qd, d[j]) { scores[j] = -.infinity; continue }
                    scores[j] = VectorMath.dot(qi, k.row(b, j) + kvh * hd, hd) * scale
                }
                let mx = rowMax(sc, count)
                if mx == -.infinity { lse[bh * s.queries + i] = .infinity; continue }
                let sum = expShifted(sc, count, by: mx)
                let inv = 1 / sum
                for j in j0..<n where scores[j] != 0 { VectorMath.axpy(scores[j] * inv, v.row(b, j) + kvh * hd, o, hd) }
                lse[bh * s.queries + i] = mx + logf(sum)
            }
        }
    }

    /// max x[j] (−∞ for n = 0), through compares and blends.
    @inline(__always)
    static func rowMax(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = F16(repeating: -.infinity), j = 0
        while j + 16 <= n { acc = AttentionMath.max(acc, load16(x + j)); j += 16 }
        var m = AttentionMath.maxAcross(acc)
        while j < n { m = Swift.max(m, x[j]); j += 1 }
        return m
    }

    /// x[j] = exp(x[j] − m) in place (exactly 0 for −∞); returns the sum.
    @inline(__always)
    static func expShifted(_ x: UnsafeMutablePointer<Float>, _ n: Int, by m: Float) -> Float {
        let mv = F16(repeating: m)
        var acc = F16(), j = 0
        while j + 16 <= n {
            let e = AttentionMath.expNonPositive(load16(x + j) - mv)
            store16(e, x + j); acc += e; j += 16
        }
        var sum = AttentionMath.sumAcross(acc)
        while j < n { let e = x[j] == -.infinity ? 0 : expf(x[j] - m); x[j] = e; sum += e; j += 1 }
        return sum
    }
}
