/// Packing of GEMM operands into bf16 panels for the `vdpbf16ps` micro-kernel.
///
/// The geometry is the fp32 one (`MR`-row A slivers, `NR`-column B slivers, zero padding at the edges)
/// but k advances in pairs: each 32-bit word holds op(X)(·, 2q) in its low half and op(X)(·, 2q+1) in
/// its high half, the operand layout of `vdpbf16ps`. A sliver is [kc/2][MR] words, a B sliver
/// [kc/2][NR] words; an odd kc pads the last pair's high half with zero.
extension Gemm {
    /// The bf16 bit pattern of `x` rounded to nearest, ties to even — what PyTorch's
    /// `.to(torch.bfloat16)` gives: overflow rounds to infinity, denormals are kept, NaN becomes 0x7FC0.
    public static func bf16Bits(_ x: Float) -> UInt16 {
        if x.isNaN { return 0x7FC0 }
        let u = x.bitPattern
        return UInt16(truncatingIfNeeded: (u &+ 0x7FFF &+ ((u >> 16) & 1)) >> 16)
    }

    /// `x` rounded to bf16 and widened back to Float.
    public static func bf16Rounded(_ x: Float) -> Float { Float(bitPattern: UInt32(bf16Bits(x)) << 16) }

    /// `bf16Bits` on 16 lanes, the result in the low 16 bits of each lane.
    @inline(__always)
    static func bf16Bits(_ x: SIMD16<Float>) -> SIMD16<UInt32> {
        let u = unsafeBitCast(x, to: SIMD16<UInt32>.self)
        let rounded = (u &+ 0x7FFF &+ ((u &>> 16) & 1)) &>> 16
        // NaN lanes (|u| > 0x7F800000) as all-ones, by wrap-around: a SIMDMask select compiles to a scalar
        // loop over the lanes here, this stays in vector registers.
        let nan = SIMD16<UInt32>.zero &- ((0x7F80_0000 &- (u & 0x7FFF_FFFF)) &>> 31)
        return (rounded & ~nan) | (0x7FC0 & nan)
    }

    /// k-pair words from the even-k and odd-k values of 16 lanes.
    @inline(__always)
    static func bf16Pairs(even: SIMD16<Float>, odd: SIMD16<Float>) -> SIMD16<UInt32> {
        bf16Bits(even) | (bf16Bits(odd) &<< 16)
    }

    @inline(__always)
    static func bf16Pair(_ even: Float, _ odd: Float) -> UInt32 {
        UInt32(bf16Bits(even)) | UInt32(bf16Bits(odd)) << 16
    }

    /// 16 k-pair words from 32 consecutive k values (deinterleaved into even and odd k).
    @inline(__always)
    static func bf16Pairs(consecutive src: UnsafePointer<Float>) -> SIMD16<UInt32> {
        let raw = UnsafeRawPointer(src)
        let v = deinterleave(raw.loadUnaligned(as: SIMD16<Float>.self),
                             raw.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self))
        return bf16Pairs(even: v.even, odd: v.odd)
    }

    /// Packs A slivers `slivers` (k range `p0..<p0+kc`) of op(A) into bf16 slivers at `dst + s · MR · ⌈kc/2⌉`.
    ///
    /// Words are made 16 at a time along the contiguous direction into a staging tile and then copied to
    /// their places word by word: storing straight from vector lanes at a stride cost five times as much.
    static func packASliversBF16(transA: Bool, a: UnsafePointer<Float>, lda: Int, m: Int, slivers: Range<Int>,
                                 p0: Int, kc: Int, dst: UnsafeMutablePointer<UInt32>) {
        let mr = Gemm.MR, pairs = (kc + 1) / 2, sliverWords = mr * pairs
        let last = slivers.upperBound - 1
        if (last + 1) * mr > m { (dst + last * sliverWords).update(repeating: 0, count: sliverWords) }
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 16 * mr) { stageBuf in
            let stage = stageBuf.baseAddress!, rawStage = UnsafeMutableRawPointer(stage)
            if transA {
                // op(A)(i, p) = a[p * lda + i]: a pair is two rows of A; 8 slivers (48 values of i) at a time.
                for q in 0..<pairs {
                    let even = a + (p0 + 2 * q) * lda, hasOdd = 2 * q + 1 < kc
                    var s = slivers.lowerBound
                    while s + 8 <= slivers.upperBound && (s + 8) * mr <= m {
                        for v in 0..<3 {
                            let e = UnsafeRawPointer(even + s * mr + 16 * v).loadUnaligned(as: SIMD16<Float>.self)
                            let o = hasOdd ? UnsafeRawPointer(even + lda + s * mr + 16 * v).loadUnaligned(as: SIMD16<Float>.self) : .zero
                            rawStage.storeBytes(of: bf16Pairs(even: e, odd: o), toByteOffset: 64 * v, as: SIMD16<UInt32>.self)
                        }
                        for t in 0..<8 {
                            let d = dst + (s + t) * sliverWords + q * mr
                            for r in 0..<Gemm.MR { d[r] = stage[t * Gemm.MR + r] }
                        }
                        s += 8
                    }
                    while s < slivers.upperBound {
                        let d = dst + s * sliverWords + q * mr
                        for i in (s * mr)..<min(m, (s + 1) * mr) {
                            d[i - s * mr] = bf16Pair(even[i], hasOdd ? even[lda + i] : 0)
                        }
                        s += 1
                    }
                }
                return
            }
            // A row of op(A) is contiguous in k: each of the sliver's rows gives 16 pairs, then they interleave.
            for s in slivers {
                let rows = min(mr, m - s * mr), d = dst + s * sliverWords
                let src = a + s * mr * lda + p0
                var q = 0
                while 2 * (q + 16) <= kc {
                    for r in 0..<rows {
                        rawStage.storeBytes(of: bf16Pairs(consecutive: src + r * lda + 2 * q), toByteOffset: 64 * r,
                                            as: SIMD16<UInt32>.self)
                    }
                    if rows == mr {   // constant bounds: the copy unrolls into plain moves
                        for l in 0..<16 { for r in 0..<Gemm.MR { d[(q + l) * Gemm.MR + r] = stage[16 * r + l] } }
                    } else {
                        for l in 0..<16 { for r in 0..<rows { d[(q + l) * mr + r] = stage[16 * r + l] } }
                    }
                    q += 16
                }
                while q < pairs {
                    for r in 0..<rows {
                        d[q * mr + r] = bf16Pair(src[r * lda + 2 * q], 2 * q + 1 < kc ? src[r * lda + 2 * q + 1] : 0)
                    }
                    q += 1
                }
            }
        }
    }

    /// Packs columns `j0..<j0+cols` (≤ NR) and k range `p0..<p0+kc` of op(B) into one bf16 sliver at `dst`.
    static func packBSliverBF16(transB: Bool, b: UnsafePointer<Float>, ldb: Int, j0: Int, cols: Int,
                                p0: Int, kc: Int, dst: UnsafeMutablePointer<UInt32>) {
        let nr = Gemm.NR, pairs = (kc + 1) / 2
        if !transB {
            // op(B)(p, j) = b[p * ldb + j]: a pair is two row segments, interleaved column by column.
            for q in 0..<pairs {
                let even = b + (p0 + 2 * q) * ldb + j0
                let hasOdd = 2 * q + 1 < kc
                let d = dst + q * nr
                if cols == nr {
                    let e = UnsafeRawPointer(even), o = UnsafeRawPointer(even + ldb), w = UnsafeMutableRawPointer(d)
                    for v in 0..<(nr / 16) {
                        let ev = e.loadUnaligned(fromByteOffset: v * 64, as: SIMD16<Float>.self)
                        let ov = hasOdd ? o.loadUnaligned(fromByteOffset: v * 64, as: SIMD16<Float>.self) : .zero
                        w.storeBytes(of: bf16Pairs(even: ev, odd: ov), toByteOffset: v * 64, as: SIMD16<UInt32>.self)
                    }
                } else {
                    for j in 0..<cols { d[j] = bf16Pair(even[j], hasOdd ? even[ldb + j] : 0) }
                    for j in cols..<nr { d[j] = 0 }
                }
            }
            return
        }
        // op(B)(p, j) = b[j * ldb + p]: a column's pairs are contiguous; 16 columns × 16 pairs are made into
        // words and transposed by the fp32 `transpose16` (the words travel as Float bit patterns: vector
        // moves and shuffles keep every bit) between two scratch tiles, then copied into place.
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 512) { tileBuf in
            let tile = tileBuf.baseAddress!, rawTile = UnsafeMutableRawPointer(tile)
            var g = 0
            while g < nr {
                let gcols = min(16, cols - g)
                if gcols <= 0 {
                    for q in 0..<pairs { for j in 0..<16 { dst[q * nr + g + j] = 0 } }
                    g += 16
                    continue
                }
                var q = 0
                if gcols == 16 {
                    while 2 * (q + 16) <= kc {
                        for j in 0..<16 {
                            let w = bf16Pairs(consecutive: b + (j0 + g + j) * ldb + p0 + 2 * q)
                            rawTile.storeBytes(of: unsafeBitCast(w, to: SIMD16<Float>.self), toByteOffset: 64 * j,
                                               as: SIMD16<Float>.self)
                        }
                        transpose16(src: UnsafePointer(tile), ld: 16, dst: tile + 256, ldd: 16)
                        let d = UnsafeMutableRawPointer(dst + q * nr + g)
                        for r in 0..<16 {
                            let row = rawTile.load(fromByteOffset: 1024 + 64 * r, as: SIMD16<Float>.self)
                            d.storeBytes(of: unsafeBitCast(row, to: SIMD16<UInt32>.self), toByteOffset: 4 * nr * r,
                                         as: SIMD16<UInt32>.self)
                        }
                        q += 16
                    }
                }
                while q < pairs {
                    for j in 0..<gcols {
                        let col = b + (j0 + g + j) * ldb + p0
                        dst[q * nr + g + j] = bf16Pair(col[2 * q], 2 * q + 1 < kc ? col[2 * q + 1] : 0)
                    }
                    for j in gcols..<16 { dst[q * nr + g + j] = 0 }
                    q += 1
                }
                g += 16
            }
        }
    }
}
