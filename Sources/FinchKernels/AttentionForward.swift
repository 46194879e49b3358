import Foundation

extension Attention {
    /// Query blocks are 64 rows, key blocks 64 keys: a 64×64 score tile plus a 64×hd output tile stay in L1/L2.
    static let tile = 64

    /// Tiled forward (flash-attention order): per (batch, head, 64-query block), walk the visible 64-key blocks,
    /// S = q·kᵀ through register tiles over a transposed copy of k, mask, online softmax (running max and sum
    /// per query), O += P·v. Each task writes only its own output rows and lse entries.
    static func forwardTiled(_ s: AttentionShape, q: StridedRows, k: StridedRows, v: StridedRows,
                             keyMask: UnsafePointer<Float>?, maskStride: Int?, documents: DocumentIDs?,
                             out: StridedRows, lse: UnsafeMutablePointer<Float>) {
        let hd = s.headDim, hdp = AttentionPack.padded(hd), group = s.heads / s.kvHeads, T = tile
        let scale = s.scoreScale
        let scratch = AttentionScratch()
        let kt = AttentionPack.transposed(k, batch: s.batch, heads: s.kvHeads, length: s.keys, headDim: hd, scratch: scratch)
        let vp = AttentionPack.rows(v, batch: s.batch, heads: s.kvHeads, length: s.keys, headDim: hd, scratch: scratch)
        let blocks = (s.queries + T - 1) / T, bhCount = s.batch * s.heads
        let tasks = blocks * bhCount
        let parts = min(ThreadPool.shared.threads, tasks)
        // Tasks go round-robin to the threads, latest (costliest) query blocks first, so causal work evens out.
        ThreadPool.shared.parallelFor(parts) { _, range in
            let sc = UnsafeMutablePointer<Float>.allocate(capacity: T * T + T * hdp + 2 * T)
            defer { sc.deallocate() }
            let S = sc, O = sc + T * T, mRow = O + T * hdp, lRow = mRow + T
            for part in range {
                for task in stride(from: part, to: tasks, by: parts) {
                    let qb = blocks - 1 - task / bhCount, bh = task % bhCount
                    let b = bh / s.heads, h = bh % s.heads, kvh = h / group
                    let i0 = qb * T, i1 = min(s.queries, i0 + T), rows = i1 - i0
                    let vis = AttentionVisibility(s, batch: b, keyMask: keyMask, maskStride: maskStride, documents: documents)
                    O.update(repeating: 0, count: rows * hdp)
                    mRow.update(repeating: -.infinity, count: rows)
                    lRow.update(repeating: 0, count: rows)
                    let qp = q.row(b, i0) + h * hd
                    let ktHead = kt.base + (b * s.kvHeads + kvh) * hd * kt.ld
                    let jEnd = s.visible(i1 - 1)
                    var j0 = s.firstVisible(i0) / T * T
                    while j0 < jEnd {
                        AttentionTile.product(rows: rows, cols: T, qp, ars: q.rowStride, aks: 1, ktHead + j0, ldb: kt.ld, k: hd,
                                              S, ldc: T, accumulate: false)
                        let clear = vis.clear(i0, i1, j0)
                        for r in 0..<rows {
                            softmaxStep(S + r * T, scale: scale, clear: clear, vis: vis, query: i0 + r, keys: j0,
                                        m: &mRow[r], l: &lRow[r], o: O + r * hdp, hdp: hdp)
                        }
                        AttentionTile.product(rows: rows, cols: hdp, S, ars: T, aks: 1, vp.at(b, kvh, j0), ldb: vp.ld,
                                              k: min(T, s.keys - j0), O, ldc: hdp, accumulate: true)
                        j0 += T
                    }
                    for r in 0..<rows {
                        let o = out.row(b, i0 + r) + h * hd
                        if mRow[r] == -.infinity {
                            o.update(repeating: 0, count: hd); lse[bh * s.queries + i0 + r] = .infinity; continue
                        }
                        let inv = 1 / lRow[r], src = O + r * hdp
                        for d in 0..<hd { o[d] = src[d] * inv }
                        lse[bh * s.queries + i0 + r] = mRow[r] + logf(lRow[r])
                    }
                }
            }
        }
    }

    /// One query's online-softmax update over a 64-key score row: scales and masks the scores, turns them into
    /// exp(score − new max) in place (0 for hidden keys), rescales the running sum and output row.
    @inline(__always)
    static func softmaxStep(_ row: UnsafeMutablePointer<Float>, scale: Float, clear: Bool, vis: AttentionVisibility,
                            query i: Int, keys j0: Int, m: inout Float, l: inout Float, o: UnsafeMutablePointer<Float>, hdp: Int) {
        let sv = F16(repeating: scale)
        var x0 = load16(row) * sv, x1 = load16(row + 16) * sv, x2 = load16(row + 32) * sv, x3 = load16(row + 48) * sv
        if !clear {   // masking goes through memory; a clear tile keeps the scores in registers
            store16(x0, row); store16(x1, row + 16); store16(x2, row + 32); store16(x3, row + 48)
            vis.apply(row, query: i, keys: j0)
            x0 = load16(row); x1 = load16(row + 16); x2 = load16(row + 32); x3 = load16(row + 48)
        }
        let mNew = Swift.max(m, AttentionMath.maxAcross(AttentionMath.max(AttentionMath.max(x0, x1), AttentionMath.max(x2, x3))))
        if mNew == -.infinity { row.update(repeating: 0, count: 64); return }
        let mv = F16(repeating: mNew)
        let p0 = AttentionMath.expNonPositive(x0 - mv), p1 = AttentionMath.expNonPositive(x1 - mv)
        let p2 = AttentionMath.expNonPositive(x2 - mv), p3 = AttentionMath.expNonPositive(x3 - mv)
        store16(p0, row); store16(p1, row + 16); store16(p2, row + 32); store16(p3, row + 48)
        let sum = AttentionMath.sumAcross((p0 + p1) + (p2 + p3))
        if mNew != m {
            let alpha = m == -.infinity ? 0 : expf(m - mNew)
            if alpha != 1 { VectorMath.scale(o, alpha, hdp) }
            l = l * alpha + sum
            m = mNew
        } else {
            l += sum
        }
    }
}
