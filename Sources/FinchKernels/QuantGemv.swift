/// The fused small-m forward `y = x · Wᵀ` (decoding): every weight block is read once and turned into
/// Float in registers next to the x values it multiplies; nothing is written but y. Bound by reading the
/// weight bytes, so the row kernels keep enough independent accumulators to hide the FMA latency and
/// nothing else. Threads split the output rows.
enum QuantGemv {
    static func forward<C: QuantBlockCodec>(_: C.Type, m: Int, x: UnsafePointer<Float>, ldx: Int, w: QuantizedMatrix,
                                            beta: Float, y: UnsafeMutablePointer<Float>, ldy: Int) {
        let n = w.rows
        // W rows per kernel call: four for a single x row (eight accumulators), two when x rows share them.
        let group = m == 1 ? 4 : 2
        let groups = (n + group - 1) / group
        // A chunk of at least ~64 KiB of weights is worth a thread.
        let minGroups = max(1, 65_536 / max(1, w.rowBytes * group))
        ThreadPool.shared.parallelFor(groups, minChunk: minGroups) { _, r in
            for g in r {
                let j0 = g * group
                // Padding W rows repeat the last real one; their sums are dropped.
                @inline(__always) func wr(_ j: Int) -> UnsafeRawPointer { w.row(min(j0 + j, n - 1)) }
                @inline(__always) func store(_ i: Int, _ j: Int, _ s: Float) {
                    guard i < m, j0 + j < n else { return }
                    let p = y + i * ldy + j0 + j
                    p.pointee = beta == 0 ? s : s + beta * p.pointee
                }
                if m == 1 {
                    let s = rows1x4(C.self, w.cols, x, wr(0), wr(1), wr(2), wr(3))
                    for j in 0..<4 { store(0, j, s[j]) }
                    continue
                }
                // Four x rows at a time meet the two W rows, which stay in L1 after the first four: the
                // weights come from memory once whatever m is. Padding x rows repeat the last real one.
                var i0 = 0
                while i0 < m {
                    @inline(__always) func xr(_ i: Int) -> UnsafePointer<Float> { x + min(i0 + i, m - 1) * ldx }
                    let (s0, s1) = rows4x2(C.self, w.cols, xr(0), xr(1), xr(2), xr(3), wr(0), wr(1))
                    for i in 0..<4 { store(i0 + i, 0, s0[i]); store(i0 + i, 1, s1[i]) }
                    i0 += 4
                }
            }
        }
    }

    /// Dot products of one x row with four weight rows.
    @inline(__always)
    static func rows1x4<C: QuantBlockCodec>(_: C.Type, _ k: Int, _ x: UnsafePointer<Float>,
                                            _ w0: UnsafeRawPointer, _ w1: UnsafeRawPointer,
                                            _ w2: UnsafeRawPointer, _ w3: UnsafeRawPointer) -> SIMD4<Float> {
        var a0 = SIMD16<Float>(), b0 = SIMD16<Float>(), a1 = SIMD16<Float>(), b1 = SIMD16<Float>()
        var a2 = SIMD16<Float>(), b2 = SIMD16<Float>(), a3 = SIMD16<Float>(), b3 = SIMD16<Float>()
        let rx = UnsafeRawPointer(x)
        var c = 0, off = 0
        while c < k {
            for j in 0..<C.subBlocks {
                let x0 = rx.loadUnaligned(fromByteOffset: c * 4, as: SIMD16<Float>.self)
                let x1 = rx.loadUnaligned(fromByteOffset: c * 4 + 64, as: SIMD16<Float>.self)
                let (p0, q0) = C.decode(w0 + off, sub: j)
                a0.addProduct(p0, x0); b0.addProduct(q0, x1)
                let (p1, q1) = C.decode(w1 + off, sub: j)
                a1.addProduct(p1, x0); b1.addProduct(q1, x1)
                let (p2, q2) = C.decode(w2 + off, sub: j)
                a2.addProduct(p2, x0); b2.addProduct(q2, x1)
                let (p3, q3) = C.decode(w3 + off, sub: j)
                a3.addProduct(p3, x0); b3.addProduct(q3, x1)
                c += 32
            }
            off += C.blockBytes
        }
        return SIMD4((a0 + b0).sum(), (a1 + b1).sum(), (a2 + b2).sum(), (a3 + b3).sum())
    }

    /// Dot products of four x rows with two weight rows: (row 0's four sums, row 1's four sums).
    @inline(__always)
    static func rows4x2<C: QuantBlockCodec>(_: C.Type, _ k: Int,
                                            _ x0: UnsafePointer<Float>, _ x1: UnsafePointer<Float>,
                                            _ x2: UnsafePointer<Float>, _ x3: UnsafePointer<Float>,
                                            _ w0: UnsafeRawPointer, _ w1: UnsafeRawPointer) -> (SIMD4<Float>, SIMD4<Float>) {
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
        var b0 = SIMD16<Float>(), b1 = SIMD16<Float>(), b2 = SIMD16<Float>(), b3 = SIMD16<Float>()
        let r0 = UnsafeRawPointer(x0), r1 = UnsafeRawPointer(x1), r2 = UnsafeRawPointer(x2), r3 = UnsafeRawPointer(x3)
        var c = 0, off = 0
        while c < k {
            for j in 0..<C.subBlocks {
                let (p0, q0) = C.decode(w0 + off, sub: j)
                let (p1, q1) = C.decode(w1 + off, sub: j)
                @inline(__always) func row(_ r: UnsafeRawPointer, _ a: inout SIMD16<Float>, _ b: inout SIMD16<Float>) {
                    let lo = r.loadUnaligned(fromByteOffset: c * 4, as: SIMD16<Float>.self)
                    let hi = r.loadUnaligned(fromByteOffset: c * 4 + 64, as: SIMD16<Float>.self)
                    a.addProduct(p0, lo); a.addProduct(q0, hi)
                    b.addProduct(p1, lo); b.addProduct(q1, hi)
                }
                row(r0, &a0, &b0); row(r1, &a1, &b1); row(r2, &a2, &b2); row(r3, &a3, &b3)
                c += 32
            }
            off += C.blockBytes
        }
        return (SIMD4(a0.sum(), a1.sum(), a2.sum(), a3.sum()), SIMD4(b0.sum(), b1.sum(), b2.sum(), b3.sum()))
    }
}
