/// The fused small-m forward `y = x · Wᵀ` (decoding): every weight block is read from memory once and turned
/// into Float in registers next to the x values it multiplies; nothing is written but y. Threads split the
/// output rows. Measured (`finch bench quant`, one core): q8_0 at m = 1 streams ~16-20 GB/s, near the read
/// bandwidth; the 4- and 6-bit formats are bound by the byte → int → float conversions at ~6-9 GB/s.
enum QuantGemv {
    static func forward<C: QuantBlockCodec>(_: C.Type, m: Int, x: UnsafePointer<Float>, ldx: Int, w: QuantizedMatrix,
                                            beta: Float, y: UnsafeMutablePointer<Float>, ldy: Int) {
        let n = w.rows
        @inline(__always) func store(_ i: Int, _ j: Int, _ s: Float) {
            let p = y + i * ldy + j
            p.pointee = beta == 0 ? s : s + beta * p.pointee
        }
        // Largest m that takes `row1` once per x row. Measured: for q8_0 (memory-bound) also m = 2 (1.5x faster on
        // the 28 MB LM head than the shared-decode kernel); the 4- and 6-bit formats are compute-bound there
        // and share each decoded block between x rows instead.
        let rowByRowMaxRows = C.blockBytes * 8 >= 8 * C.blockSize ? 2 : 1
        if m <= rowByRowMaxRows {
            // The sums of x over each 32-element sub-block serve the offsets (m, dmin·m_j) of every row.
            let subs = w.cols / 32
            withUnsafeTemporaryAllocation(of: Float.self, capacity: m * subs) { xs in
                for i in 0..<m {
                    for c in 0..<subs {
                        let v = UnsafeRawPointer(x + i * ldx + 32 * c)
                        xs[i * subs + c] = (v.loadUnaligned(as: SIMD16<Float>.self)
                                            + v.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self)).sum()
                    }
                }
                let sums = UnsafePointer(xs.baseAddress!)
                // A chunk of at least ~64 KiB of weights is worth a thread. A second x row finds the W row in L1.
                ThreadPool.shared.parallelFor(n, minChunk: max(1, 65_536 / max(1, w.rowBytes))) { _, r in
                    for j in r {
                        for i in 0..<m { store(i, j, row1(C.self, w.cols, x + i * ldx, sums + i * subs, w.row(j))) }
                    }
                }
            }
            return
        }
        // Eight (or four, or two) x rows at a time meet two W rows, which stay in L1 after the first pass: the
        // weights come from memory once whatever m is. x rows past m are zeros in a padded scratch copy; W's last
        // row repeats when n is odd. Padding sums are dropped.
        let ldp = w.cols, padded = (m + 7) / 8 * 8
        withUnsafeTemporaryAllocation(of: Float.self, capacity: padded * ldp) { buf in
            let xp = UnsafeMutablePointer(buf.baseAddress!)
            for i in 0..<m { (xp + i * ldp).update(from: x + i * ldx, count: ldp) }
            (xp + m * ldp).update(repeating: 0, count: (padded - m) * ldp)
            let xp0 = UnsafePointer(xp)
            ThreadPool.shared.parallelFor((n + 1) / 2, minChunk: max(1, 32_768 / max(1, w.rowBytes))) { _, r in
                for g in r {
                    let j0 = 2 * g
                    var i0 = 0
                    while i0 < m {
                        let w0 = w.row(j0), w1 = w.row(min(j0 + 1, n - 1))
                        let xi = xp0 + i0 * ldp, left = m - i0
                        let (s0, s1) = left > 4 ? rows8x2(C.self, w.cols, xi, ldp, count: 8, w0, w1)
                            : left > 2 ? rows8x2(C.self, w.cols, xi, ldp, count: 4, w0, w1)
                            : rows8x2(C.self, w.cols, xi, ldp, count: 2, w0, w1)
                        for i in 0..<min(8, m - i0) {
                            store(i0 + i, j0, s0[i])
                            if j0 + 1 < n { store(i0 + i, j0 + 1, s1[i]) }
                        }
                        i0 += 8
                    }
                }
            }
        }
    }

    /// The dot product of one x row with one weight row (`xs`: x's sub-block sums), read front to back: one
    /// stream for the prefetcher, which four interleaved rows measured 2x slower for on 28 MB of q8_0. Two
    /// sub-blocks per step keep two independent accumulators.
    @inline(__always)
    static func row1<C: QuantBlockCodec>(_: C.Type, _ k: Int, _ x: UnsafePointer<Float>, _ xs: UnsafePointer<Float>,
                                         _ w: UnsafeRawPointer) -> Float {
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>()
        var o0: Float = 0, o1: Float = 0
        let rx = UnsafeRawPointer(x)
        @inline(__always) func sub(_ p: UnsafeRawPointer, _ s: C.Scales, _ j: Int, _ c: Int,
                                   _ acc: inout SIMD16<Float>, _ off: inout Float) {
            C.accumulate(p, s, sub: j, rx.loadUnaligned(fromByteOffset: c * 4, as: SIMD16<Float>.self),
                         rx.loadUnaligned(fromByteOffset: c * 4 + 64, as: SIMD16<Float>.self), xSum: xs[c / 32],
                         into: &acc, offset: &off)
        }
        let blocks = k / C.blockSize, bytes = C.blockBytes
        var blk = 0
        if C.subBlocks == 1 {
            // 32-element blocks: two blocks per step.
            while blk + 2 <= blocks {
                let p = w + blk * bytes, q = p + bytes
                sub(p, C.scales(p), 0, blk * 32, &a0, &o0)
                sub(q, C.scales(q), 0, blk * 32 + 32, &a1, &o1)
                blk += 2
            }
            if blk < blocks {
                let p = w + blk * bytes
                sub(p, C.scales(p), 0, blk * 32, &a0, &o0)
            }
        } else {
            // K formats: two sub-blocks of one block per step, its scales unpacked once.
            while blk < blocks {
                let p = w + blk * bytes, s = C.scales(p)
                var j = 0
                while j < C.subBlocks {
                    sub(p, s, j, blk * C.blockSize + j * 32, &a0, &o0)
                    sub(p, s, j + 1, blk * C.blockSize + j * 32 + 32, &a1, &o1)
                    j += 2
                }
                blk += 1
            }
        }
        return (a0 + a1).sum() + (o0 + o1)
    }

    /// Dot products of x rows `x + i·ldx` (i < `count`: 2, 4 or 8, a literal at each call, so the unused rows fold
    /// away) with two weight rows: (row 0's sums, row 1's sums). Each decoded sub-block meets up to eight x rows:
    /// 16 accumulators.
    @inline(__always)
    static func rows8x2<C: QuantBlockCodec>(_: C.Type, _ k: Int, _ x: UnsafePointer<Float>, _ ldx: Int, count: Int,
                                            _ w0: UnsafeRawPointer, _ w1: UnsafeRawPointer) -> (SIMD8<Float>, SIMD8<Float>) {
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
        var a4 = SIMD16<Float>(), a5 = SIMD16<Float>(), a6 = SIMD16<Float>(), a7 = SIMD16<Float>()
        var b0 = SIMD16<Float>(), b1 = SIMD16<Float>(), b2 = SIMD16<Float>(), b3 = SIMD16<Float>()
        var b4 = SIMD16<Float>(), b5 = SIMD16<Float>(), b6 = SIMD16<Float>(), b7 = SIMD16<Float>()
        let rx = UnsafeRawPointer(x), stride = ldx * 4
        var c = 0, off = 0
        while c < k {
            let s0 = C.scales(w0 + off), s1 = C.scales(w1 + off)
            for j in 0..<C.subBlocks {
                let (p0, q0) = C.decode(w0 + off, s0, sub: j)
                let (p1, q1) = C.decode(w1 + off, s1, sub: j)
                @inline(__always) func row(_ i: Int, _ a: inout SIMD16<Float>, _ b: inout SIMD16<Float>) {
                    let lo = rx.loadUnaligned(fromByteOffset: i * stride + c * 4, as: SIMD16<Float>.self)
                    let hi = rx.loadUnaligned(fromByteOffset: i * stride + c * 4 + 64, as: SIMD16<Float>.self)
                    a.addProduct(p0, lo); a.addProduct(q0, hi)
                    b.addProduct(p1, lo); b.addProduct(q1, hi)
                }
                row(0, &a0, &b0); row(1, &a1, &b1)
                if count > 2 { row(2, &a2, &b2); row(3, &a3, &b3) }
                if count > 4 { row(4, &a4, &b4); row(5, &a5, &b5); row(6, &a6, &b6); row(7, &a7, &b7) }
                c += 32
            }
            off += C.blockBytes
        }
        return (SIMD8(a0.sum(), a1.sum(), a2.sum(), a3.sum(), a4.sum(), a5.sum(), a6.sum(), a7.sum()),
                SIMD8(b0.sum(), b1.sum(), b2.sum(), b3.sum(), b4.sum(), b5.sum(), b6.sum(), b7.sum()))
    }
}
