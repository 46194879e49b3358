import Foundation

extension Attention {
    /// Tiled backward. A task owns one (batch, kv head, range of 64-key blocks): for each key block it walks the
    /// query heads of its group and the query blocks that see the block, recomputes P = exp(q·kᵀ·scale − lse),
    /// and accumulates dV += Pᵀ·dO, dK += dSᵀ·q in a tile (written once: no other task has those rows) and
    /// dQ += dS·k into the task's own partial-dQ slice. The slices are summed in a fixed order at the end, so
    /// results depend only on the inputs and the thread count.
    static func backwardTiled(_ s: AttentionShape, q: StridedRows, k: StridedRows, v: StridedRows,
                              out: StridedRows, dOut: StridedRows, keyMask: UnsafePointer<Float>?, maskStride: Int?,
                              documents: DocumentIDs?, lse: UnsafePointer<Float>, dq: StridedRows, dk: StridedRows, dv: StridedRows) {
        let hd = s.headDim, hdp = AttentionPack.padded(hd), group = s.heads / s.kvHeads, T = tile
        let scale = s.scoreScale
        let scratch = AttentionScratch()
        let kt = AttentionPack.transposed(k, batch: s.batch, heads: s.kvHeads, length: s.keys, headDim: hd, scratch: scratch)
        let vt = AttentionPack.transposed(v, batch: s.batch, heads: s.kvHeads, length: s.keys, headDim: hd, scratch: scratch)
        let kp = AttentionPack.rows(k, batch: s.batch, heads: s.kvHeads, length: s.keys, headDim: hd, scratch: scratch)
        let qp = AttentionPack.rows(q, batch: s.batch, heads: s.heads, length: s.queries, headDim: hd, scratch: scratch)
        let dop = AttentionPack.rows(dOut, batch: s.batch, heads: s.heads, length: s.queries, headDim: hd, scratch: scratch)
        // δ_i = dO_i·O_i per (batch, head, query).
        let delta = scratch.floats(s.batch * s.heads * s.queries)
        ThreadPool.shared.parallelFor(s.batch * s.heads * s.queries, minChunk: 256) { _, range in
            for t in range {
                let i = t % s.queries, bh = t / s.queries, b = bh / s.heads, h = bh % s.heads
                delta[t] = VectorMath.dot(dOut.row(b, i) + h * hd, out.row(b, i) + h * hd, hd)
            }
        }
        let keyBlocks = (s.keys + T - 1) / T
        let chunks = keyChunks(s, keyBlocks: keyBlocks)
        let C = chunks.count - 1, units = s.batch * s.kvHeads, tasks = units * C
        // Partial dQ, [chunk][batch][head][query][hdp].
        let perChunk = s.batch * s.heads * s.queries * hdp
        let dqPart = scratch.floats(C * perChunk, zeroed: true)
        let parts = min(ThreadPool.shared.threads, tasks)
        ThreadPool.shared.parallelFor(parts) { _, range in
            let sc = UnsafeMutablePointer<Float>.allocate(capacity: 2 * T * T + 2 * T * hdp)
            defer { sc.deallocate() }
            let P = sc, dS = sc + T * T, dK = dS + T * T, dV = dK + T * hdp
            for part in range {
                for task in stride(from: part, to: tasks, by: parts) {
                    let c = task / units, b = (task % units) / s.kvHeads, kvh = task % s.kvHeads
                    let vis = AttentionVisibility(s, batch: b, keyMask: keyMask, maskStride: maskStride, documents: documents)
                    let ktHead = kt.base + (b * s.kvHeads + kvh) * hd * kt.ld
                    let vtHead = vt.base + (b * s.kvHeads + kvh) * hd * vt.ld
                    for kb in chunks[c]..<chunks[c + 1] {
                        let j0 = kb * T, nk = min(T, s.keys - j0)
                        dK.update(repeating: 0, count: nk * hdp); dV.update(repeating: 0, count: nk * hdp)
                        let (iStart, iEnd) = queriesSeeing(s, j0, nk)
                        for h in (kvh * group)..<((kvh + 1) * group) {
                            let bh = b * s.heads + h
                            var i0 = iStart / T * T
                            while i0 < iEnd {
                                let i1 = min(s.queries, i0 + T), rows = i1 - i0
                                AttentionTile.product(rows: rows, cols: T, q.row(b, i0) + h * hd, ars: q.rowStride, aks: 1,
                                                      ktHead + j0, ldb: kt.ld, k: hd, P, ldc: T, accumulate: false)
                                AttentionTile.product(rows: rows, cols: T, dOut.row(b, i0) + h * hd, ars: dOut.rowStride, aks: 1,
                                                      vtHead + j0, ldb: vt.ld, k: hd, dS, ldc: T, accumulate: false)
                                let clear = vis.clear(i0, i1, j0)
                                for r in 0..<rows {
                                    gradientStep(P + r * T, dS + r * T, scale: scale, lse: lse[bh * s.queries + i0 + r],
                                                 delta: delta[bh * s.queries + i0 + r], clear: clear, vis: vis, query: i0 + r, keys: j0)
                                }
                                // dV += Pᵀ·dO and dK += dSᵀ·q: the tiles' transposes read through the A strides.
                                AttentionTile.product(rows: nk, cols: hdp, P, ars: 1, aks: T, dop.at(b, h, i0), ldb: dop.ld, k: rows,
                                                      dV, ldc: hdp, accumulate: true)
                                AttentionTile.product(rows: nk, cols: hdp, dS, ars: 1, aks: T, qp.at(b, h, i0), ldb: qp.ld, k: rows,
                                                      dK, ldc: hdp, accumulate: true)
                                AttentionTile.product(rows: rows, cols: hdp, dS, ars: T, aks: 1, kp.at(b, kvh, j0), ldb: kp.ld, k: nk,
                                                      dqPart + c * perChunk + (bh * s.queries + i0) * hdp, ldc: hdp, accumulate: true)
                                i0 += T
                            }
                        }
                        for j in 0..<nk {
                            (dk.row(b, j0 + j) + kvh * hd).update(from: dK + j * hdp, count: hd)
                            (dv.row(b, j0 + j) + kvh * hd).update(from: dV + j * hdp, count: hd)
                        }
                    }
                }
            }
        }
        ThreadPool.shared.parallelFor(s.batch * s.heads * s.queries, minChunk: 256) { _, range in
            for t in range {
                let i = t % s.queries, bh = t / s.queries, b = bh / s.heads, h = bh % s.heads
                let d = dq.row(b, i) + h * hd
                d.update(from: dqPart + t * hdp, count: hd)
                for c in 1..<max(C, 1) { VectorMath.add(dqPart + c * perChunk + t * hdp, into: d, hd) }
            }
        }
    }

    /// Queries `i` (half-open range) whose visible keys may include some of `j0..<j0+nk`.
    @inline(__always)
    static func queriesSeeing(_ s: AttentionShape, _ j0: Int, _ nk: Int) -> (Int, Int) {
        let start = Swift.max(0, j0 - s.queryOffset)
        var end = s.queries
        if let w = s.window { end = Swift.min(end, Swift.max(0, j0 + nk - 1 + w - s.queryOffset)) }
        return (Swift.min(start, end), end)
    }

    /// Boundaries (in key blocks) of the key ranges the backward's tasks own. One range per (batch, kv head) when
    /// those already spread evenly over the threads; otherwise each is cut into pieces of about equal causal work
    /// so the task count is a multiple of the thread count.
    static func keyChunks(_ s: AttentionShape, keyBlocks: Int) -> [Int] {
        let threads = ThreadPool.shared.threads, units = s.batch * s.kvHeads
        var g = threads, u = units
        while u != 0 { (g, u) = (u, g % u) }
        let pieces = Swift.max(1, Swift.min(keyBlocks, threads / Swift.max(g, 1)))
        if pieces == 1 { return [0, keyBlocks] }
        var work = [Double](repeating: 0, count: keyBlocks + 1)
        for kb in 0..<keyBlocks {
            let (a, e) = queriesSeeing(s, kb * tile, Swift.min(tile, s.keys - kb * tile))
            work[kb + 1] = work[kb] + Double(e - a) + 1
        }
        var bounds = [0]
        for p in 1..<pieces {
            let target = work[keyBlocks] * Double(p) / Double(pieces)
            var kb = bounds.last!
            while kb < keyBlocks && work[kb + 1] <= target { kb += 1 }
            bounds.append(Swift.max(kb, bounds.last!))
        }
        bounds.append(keyBlocks)
        return bounds
    }

    /// Turns one query's score row into P (in `p`) and its dP row into dS = P ⊙ (dP − δ)·scale (in `ds`).
    @inline(__always)
    static func gradientStep(_ p: UnsafeMutablePointer<Float>, _ ds: UnsafeMutablePointer<Float>, scale: Float, lse: Float,
                             delta: Float, clear: Bool, vis: AttentionVisibility, query i: Int, keys j0: Int) {
        if lse == .infinity {
            p.update(repeating: 0, count: 64); ds.update(repeating: 0, count: 64); return
        }
        let sv = F16(repeating: scale), lv = F16(repeating: lse), dv = F16(repeating: delta)
        // A clear tile scales inside the exponent (score·scale − lse, one FMA); masking goes through memory.
        var mul = sv
        if !clear {
            for c in 0..<4 { store16(load16(p + 16 * c) * sv, p + 16 * c) }
            vis.apply(p, query: i, keys: j0)
            mul = F16(repeating: 1)
        }
        for c in 0..<4 {
            let e = AttentionMath.expNonPositive((-lv).addingProduct(load16(p + 16 * c), mul))
            store16(e, p + 16 * c)
            store16(e * (load16(ds + 16 * c) - dv) * sv, ds + 16 * c)
        }
    }
}
