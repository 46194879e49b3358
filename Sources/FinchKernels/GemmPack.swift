/// Packing of GEMM operands into the panel layouts the micro-kernel streams.
///
/// Packed A: slivers of `MR` rows of op(A); within a sliver, for each k step the `MR` values of that
/// column (`kc × MR`, rows past `m` zero). Packed B: slivers of `NR` columns of op(B); for each k step
/// the `NR` values of that row (`kc × NR`, columns past `n` zero). Zero padding lets the kernel run
/// full tiles at the edges; only the write-back is clipped.
extension Gemm {
    /// Packs rows `i0..<i0+rows` (≤ MR) and k range `p0..<p0+kc` of op(A) into one sliver at `dst`.
    @inline(__always)
    static func packASliver(transA: Bool, a: UnsafePointer<Float>, lda: Int, i0: Int, rows: Int,
                            p0: Int, kc: Int, dst: UnsafeMutablePointer<Float>) {
        let mr = Gemm.MR
        if rows < mr { dst.update(repeating: 0, count: kc * mr) }
        if transA {
            // op(A)(i, p) = a[p * lda + i]: each k step is `rows` contiguous values.
            for p in 0..<kc {
                let src = a + (p0 + p) * lda + i0
                let d = dst + p * mr
                for r in 0..<rows { d[r] = src[r] }
            }
        } else {
            for r in 0..<rows {
                let src = a + (i0 + r) * lda + p0
                var d = dst + r
                for p in 0..<kc { d.pointee = src[p]; d += mr }
            }
        }
    }

    /// Packs columns `j0..<j0+cols` (≤ NR) and k range `p0..<p0+kc` of op(B) into one sliver at `dst`.
    @inline(__always)
    static func packBSliver(transB: Bool, b: UnsafePointer<Float>, ldb: Int, j0: Int, cols: Int,
                            p0: Int, kc: Int, dst: UnsafeMutablePointer<Float>) {
        let nr = Gemm.NR
        if !transB {
            // op(B)(p, j) = b[p * ldb + j]: each k step is a contiguous row segment.
            if cols == nr {
                for p in 0..<kc {
                    let src = UnsafeRawPointer(b + (p0 + p) * ldb + j0)
                    let d = UnsafeMutableRawPointer(dst + p * nr)
                    for v in 0..<(nr / 16) {
                        d.storeBytes(of: src.loadUnaligned(fromByteOffset: v * 64, as: SIMD16<Float>.self),
                                     toByteOffset: v * 64, as: SIMD16<Float>.self)
                    }
                }
            } else {
                for p in 0..<kc {
                    let src = b + (p0 + p) * ldb + j0
                    let d = dst + p * nr
                    for j in 0..<cols { d[j] = src[j] }
                    for j in cols..<nr { d[j] = 0 }
                }
            }
            return
        }
        // op(B)(p, j) = b[j * ldb + p]: transpose 16×16 blocks in registers where full.
        var g = 0
        while g < nr {
            let gcols = min(16, cols - g)
            if gcols <= 0 {
                for p in 0..<kc { for j in 0..<16 { dst[p * nr + g + j] = 0 } }
            } else if gcols == 16 {
                var p = 0
                while p + 16 <= kc {
                    transpose16(src: b + (j0 + g) * ldb + p0 + p, ld: ldb, dst: dst + p * nr + g, ldd: nr)
                    p += 16
                }
                while p < kc {
                    for j in 0..<16 { dst[p * nr + g + j] = b[(j0 + g + j) * ldb + p0 + p] }
                    p += 1
                }
            } else {
                for p in 0..<kc {
                    for j in 0..<gcols { dst[p * nr + g + j] = b[(j0 + g + j) * ldb + p0 + p] }
                    for j in gcols..<16 { dst[p * nr + g + j] = 0 }
                }
            }
            g += 16
        }
    }

    /// dst[c * ldd + r] = src[r * ld + c] for a 16×16 block, by four rounds of even/odd unzipping
    /// (each round rotates the 8-bit (row, column) index by one bit; four rounds swap row and column).
    @inline(__always)
    static func transpose16(src: UnsafePointer<Float>, ld: Int, dst: UnsafeMutablePointer<Float>, ldd: Int) {
        let s = UnsafeRawPointer(src)
        var r0 = s.loadUnaligned(fromByteOffset: 0 * ld * 4, as: SIMD16<Float>.self)
        var r1 = s.loadUnaligned(fromByteOffset: 1 * ld * 4, as: SIMD16<Float>.self)
        var r2 = s.loadUnaligned(fromByteOffset: 2 * ld * 4, as: SIMD16<Float>.self)
        var r3 = s.loadUnaligned(fromByteOffset: 3 * ld * 4, as: SIMD16<Float>.self)
        var r4 = s.loadUnaligned(fromByteOffset: 4 * ld * 4, as: SIMD16<Float>.self)
        var r5 = s.loadUnaligned(fromByteOffset: 5 * ld * 4, as: SIMD16<Float>.self)
        var r6 = s.loadUnaligned(fromByteOffset: 6 * ld * 4, as: SIMD16<Float>.self)
        var r7 = s.loadUnaligned(fromByteOffset: 7 * ld * 4, as: SIMD16<Float>.self)
        var r8 = s.loadUnaligned(fromByteOffset: 8 * ld * 4, as: SIMD16<Float>.self)
        var r9 = s.loadUnaligned(fromByteOffset: 9 * ld * 4, as: SIMD16<Float>.self)
        var r10 = s.loadUnaligned(fromByteOffset: 10 * ld * 4, as: SIMD16<Float>.self)
        var r11 = s.loadUnaligned(fromByteOffset: 11 * ld * 4, as: SIMD16<Float>.self)
        var r12 = s.loadUnaligned(fromByteOffset: 12 * ld * 4, as: SIMD16<Float>.self)
        var r13 = s.loadUnaligned(fromByteOffset: 13 * ld * 4, as: SIMD16<Float>.self)
        var r14 = s.loadUnaligned(fromByteOffset: 14 * ld * 4, as: SIMD16<Float>.self)
        var r15 = s.loadUnaligned(fromByteOffset: 15 * ld * 4, as: SIMD16<Float>.self)
        for _ in 0..<4 {
            let p0 = deinterleave(r0, r1), p1 = deinterleave(r2, r3), p2 = deinterleave(r4, r5)
            let p3 = deinterleave(r6, r7), p4 = deinterleave(r8, r9), p5 = deinterleave(r10, r11)
            let p6 = deinterleave(r12, r13), p7 = deinterleave(r14, r15)
            r0 = p0.even; r1 = p1.even; r2 = p2.even; r3 = p3.even
            r4 = p4.even; r5 = p5.even; r6 = p6.even; r7 = p7.even
            r8 = p0.odd; r9 = p1.odd; r10 = p2.odd; r11 = p3.odd
            r12 = p4.odd; r13 = p5.odd; r14 = p6.odd; r15 = p7.odd
        }
        let d = UnsafeMutableRawPointer(dst)
        d.storeBytes(of: r0, toByteOffset: 0 * ldd * 4, as: SIMD16<Float>.self)
        d.storeBytes(of: r1, toByteOffset: 1 * ldd * 4, as: SIMD16<Float>.self)
        d.storeBytes(of: r2, toByteOffset: 2 * ldd * 4, as: SIMD16<Float>.self)
        d.storeBytes(of: r3, toByteOffset: 3 * ldd * 4, as: SIMD16<Float>.self)
        d.storeBytes(of: r4, toByteOffset: 4 * ldd * 4, as: SIMD16<Float>.self)
        d.storeBytes(of: r5, toByteOffset: 5 * ldd * 4, as: SIMD16<Float>.self)
        d.storeBytes(of: r6, toByteOffset: 6 * ldd * 4, as: SIMD16<Float>.self)
        d.storeBytes(of: r7, toByteOffset: 7 * ldd * 4, as: SIMD16<Float>.self)
        d.storeBytes(of: r8, toByteOffset: 8 * ldd * 4, as: SIMD16<Float>.self)
        d.storeBytes(of: r9, toByteOffset: 9 * ldd * 4, as: SIMD16<Float>.self)
        d.storeBytes(of: r10, toByteOffset: 10 * ldd * 4, as: SIMD16<Float>.self)
        d.storeBytes(of: r11, toByteOffset: 11 * ldd * 4, as: SIMD16<Float>.self)
        d.storeBytes(of: r12, toByteOffset: 12 * ldd * 4, as: SIMD16<Float>.self)
        d.storeBytes(of: r13, toByteOffset: 13 * ldd * 4, as: SIMD16<Float>.self)
        d.storeBytes(of: r14, toByteOffset: 14 * ldd * 4, as: SIMD16<Float>.self)
        d.storeBytes(of: r15, toByteOffset: 15 * ldd * 4, as: SIMD16<Float>.self)
    }

    /// The even and the odd lanes of the 32 lanes `a` then `b` (one vpermt2ps each). Spelled lane by lane
    /// rather than `SIMD32.evenHalf`: that generic getter was left as a call when the optimiser ran out of
    /// inlining budget, and SwiftPM's multi-threaded release codegen could not inline it later (transposed-B
    /// packing, so every NT product, ran up to 2× slower).
    @inline(__always)
    static func deinterleave(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> (even: SIMD16<Float>, odd: SIMD16<Float>) {
        (SIMD16(a[0], a[2], a[4], a[6], a[8], a[10], a[12], a[14], b[0], b[2], b[4], b[6], b[8], b[10], b[12], b[14]),
         SIMD16(a[1], a[3], a[5], a[7], a[9], a[11], a[13], a[15], b[1], b[3], b[5], b[7], b[9], b[11], b[13], b[15]))
    }
}
