/// One ggml block format read in 32-element sub-blocks straight into registers.
///
/// `decode` returns the sub-block's values exactly as ggml's reference `dequantize_row_*` computes them
/// (fp16 scale → Float, then the same separately rounded products and sums), so the tile dequantiser and
/// the fused matrix–vector kernels share one definition of every format. A block's scales are unpacked
/// once (`scales`) and serve all its sub-blocks: K formats pack eight or sixteen of them in bit fields.
protocol QuantBlockCodec {
    /// The unpacked scales (and offsets) of one block.
    associatedtype Scales
    /// Elements per block (32 or 256).
    static var blockSize: Int { get }
    /// Bytes per block.
    static var blockBytes: Int { get }
    static func scales(_ block: UnsafeRawPointer) -> Scales
    /// Elements `32·sub ..< 32·sub + 32` of the block at `block`, whose scales are `s`.
    static func decode(_ block: UnsafeRawPointer, _ s: Scales, sub: Int) -> (SIMD16<Float>, SIMD16<Float>)
    /// `acc + offset` gains Σ value·x over sub-block `sub`, whose x values are `x0, x1` with sum `xSum`. Not
    /// bit-exact: formats override it to apply a sub-block's scale once to its integer dot product and its
    /// offset once to `xSum` (the matrix–vector kernel is compute-bound on the conversions otherwise).
    static func accumulate(_ block: UnsafeRawPointer, _ s: Scales, sub: Int, _ x0: SIMD16<Float>, _ x1: SIMD16<Float>,
                           xSum: Float, into acc: inout SIMD16<Float>, offset: inout Float)
}

extension QuantBlockCodec {
    /// 32-element sub-blocks per block.
    @inline(__always) static var subBlocks: Int { blockSize / 32 }

    /// Elements `32·sub ..< 32·sub + 32` of the block at `block`.
    @inline(__always)
    static func decode(_ block: UnsafeRawPointer, sub: Int) -> (SIMD16<Float>, SIMD16<Float>) {
        decode(block, scales(block), sub: sub)
    }

    @inline(__always)
    static func accumulate(_ block: UnsafeRawPointer, _ s: Scales, sub: Int, _ x0: SIMD16<Float>, _ x1: SIMD16<Float>,
                           xSum: Float, into acc: inout SIMD16<Float>, offset: inout Float) {
        let (v0, v1) = decode(block, s, sub: sub)
        acc.addProduct(v0, x0)
        acc.addProduct(v1, x1)
    }
}

/// Lane helpers. Widening and int → float conversion are element-wise loops, which LLVM turns into one
/// `vpmovzxbd`/`vpmovsxbd` or `vcvtdq2ps` (the stdlib's SIMD conversion initialisers are out-of-line calls
/// on this toolchain); bit fiddling is done on whole `SIMD16<Int32>` values, whose operators are single
/// instructions (element-wise loops with variable shifts stay scalar).
enum QuantLanes {
    @inline(__always)
    static func half(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
        Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
    }

    /// 16 unsigned bytes, zero-extended.
    @inline(__always)
    static func bytes(_ p: UnsafeRawPointer) -> SIMD16<Int32> {
        let q = p.assumingMemoryBound(to: UInt8.self)
        var r = SIMD16<Int32>()
        for i in 0..<16 { r[i] = Int32(q[i]) }
        return r
    }

    @inline(__always)
    static func float(_ v: SIMD16<Int32>) -> SIMD16<Float> {
        var r = SIMD16<Float>()
        for i in 0..<16 { r[i] = Float(v[i]) }
        return r
    }

    /// 16 signed bytes as Float.
    @inline(__always)
    static func int8(_ p: UnsafeRawPointer) -> SIMD16<Float> {
        let q = p.assumingMemoryBound(to: Int8.self)
        var r = SIMD16<Float>()
        for i in 0..<16 { r[i] = Float(q[i]) }
        return r
    }

    /// The nibbles at `shift` (0: low, 4: high) of 16 bytes, minus `offset`, as Float.
    @inline(__always)
    static func nibbles(_ p: UnsafeRawPointer, shift: Int32, minus offset: Int32) -> SIMD16<Float> {
        float(((bytes(p) &>> shift) & 0x0F) &- offset)
    }
}

/// block_q8_0: f16 d, i8 qs[32]; y = q·d.
enum Q8_0: QuantBlockCodec {
    static var blockSize: Int { 32 }
    static var blockBytes: Int { 34 }
    @inline(__always)
    static func scales(_ block: UnsafeRawPointer) -> Float { QuantLanes.half(block, 0) }
    @inline(__always)
    static func decode(_ block: UnsafeRawPointer, _ d: Float, sub: Int) -> (SIMD16<Float>, SIMD16<Float>) {
        (QuantLanes.int8(block + 2) * d, QuantLanes.int8(block + 18) * d)
    }
    @inline(__always)
    static func accumulate(_ block: UnsafeRawPointer, _ d: Float, sub: Int, _ x0: SIMD16<Float>, _ x1: SIMD16<Float>,
                           xSum: Float, into acc: inout SIMD16<Float>, offset: inout Float) {
        var t = QuantLanes.int8(block + 2) * x0
        t.addProduct(QuantLanes.int8(block + 18), x1)
        acc.addProduct(t, SIMD16(repeating: d))
    }
}

/// block_q4_0: f16 d, u8 qs[16]; low nibbles are elements 0..15, high nibbles 16..31; y = (q − 8)·d.
enum Q4_0: QuantBlockCodec {
    static var blockSize: Int { 32 }
    static var blockBytes: Int { 18 }
    @inline(__always)
    static func scales(_ block: UnsafeRawPointer) -> Float { QuantLanes.half(block, 0) }
    @inline(__always)
    static func decode(_ block: UnsafeRawPointer, _ d: Float, sub: Int) -> (SIMD16<Float>, SIMD16<Float>) {
        (QuantLanes.nibbles(block + 2, shift: 0, minus: 8) * d, QuantLanes.nibbles(block + 2, shift: 4, minus: 8) * d)
    }
    @inline(__always)
    static func accumulate(_ block: UnsafeRawPointer, _ d: Float, sub: Int, _ x0: SIMD16<Float>, _ x1: SIMD16<Float>,
                           xSum: Float, into acc: inout SIMD16<Float>, offset: inout Float) {
        var t = QuantLanes.nibbles(block + 2, shift: 0, minus: 8) * x0
        t.addProduct(QuantLanes.nibbles(block + 2, shift: 4, minus: 8), x1)
        acc.addProduct(t, SIMD16(repeating: d))
    }
}

/// block_q5_0: f16 d, u32 qh, u8 qs[16]; element j's fifth bit is bit j of qh (j + 16 for the high nibbles);
/// y = (q − 16)·d. llama.cpp's fallback for Q4_K rows that are not whole super-blocks (SmolLM2's 576).
enum Q5_0: QuantBlockCodec {
    static var blockSize: Int { 32 }
    static var blockBytes: Int { 22 }
    static let lanes = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
    @inline(__always)
    static func scales(_ block: UnsafeRawPointer) -> Float { QuantLanes.half(block, 0) }
    @inline(__always)
    static func values(_ block: UnsafeRawPointer) -> (SIMD16<Float>, SIMD16<Float>) {
        let qh = SIMD16<Int32>(repeating: Int32(bitPattern: block.loadUnaligned(fromByteOffset: 2, as: UInt32.self)))
        let q = QuantLanes.bytes(block + 6)
        let low = (q & 0x0F) | (((qh &>> lanes) & 1) &<< 4)
        let high = (q &>> 4) | (((qh &>> (lanes &+ 16)) & 1) &<< 4)
        return (QuantLanes.float(low &- 16), QuantLanes.float(high &- 16))
    }
    @inline(__always)
    static func decode(_ block: UnsafeRawPointer, _ d: Float, sub: Int) -> (SIMD16<Float>, SIMD16<Float>) {
        let (v0, v1) = values(block)
        return (v0 * d, v1 * d)
    }
    @inline(__always)
    static func accumulate(_ block: UnsafeRawPointer, _ d: Float, sub: Int, _ x0: SIMD16<Float>, _ x1: SIMD16<Float>,
                           xSum: Float, into acc: inout SIMD16<Float>, offset: inout Float) {
        let (v0, v1) = values(block)
        var t = v0 * x0
        t.addProduct(v1, x1)
        acc.addProduct(t, SIMD16(repeating: d))
    }
}

/// block_q4_1: f16 d, f16 m, u8 qs[16]; y = q·d + m.
enum Q4_1: QuantBlockCodec {
    static var blockSize: Int { 32 }
    static var blockBytes: Int { 20 }
    @inline(__always)
    static func scales(_ block: UnsafeRawPointer) -> (d: Float, m: Float) {
        (QuantLanes.half(block, 0), QuantLanes.half(block, 2))
    }
    @inline(__always)
    static func decode(_ block: UnsafeRawPointer, _ s: (d: Float, m: Float), sub: Int) -> (SIMD16<Float>, SIMD16<Float>) {
        (QuantLanes.nibbles(block + 4, shift: 0, minus: 0) * s.d + s.m,
         QuantLanes.nibbles(block + 4, shift: 4, minus: 0) * s.d + s.m)
    }
    @inline(__always)
    static func accumulate(_ block: UnsafeRawPointer, _ s: (d: Float, m: Float), sub: Int, _ x0: SIMD16<Float>, _ x1: SIMD16<Float>,
                           xSum: Float, into acc: inout SIMD16<Float>, offset: inout Float) {
        var t = QuantLanes.nibbles(block + 4, shift: 0, minus: 0) * x0
        t.addProduct(QuantLanes.nibbles(block + 4, shift: 4, minus: 0), x1)
        acc.addProduct(t, SIMD16(repeating: s.d))
        offset += s.m * xSum
    }
}

/// block_q4_K: f16 d, f16 dmin, u8 scales[12] (eight 6-bit scale/min pairs), u8 qs[128].
/// Sub-block j is the low (even j) or high (odd j) nibbles of qs[32·(j/2) ..< 32·(j/2) + 32];
/// y = (d·sc_j)·q − (dmin·m_j).
enum Q4_K: QuantBlockCodec {
    static var blockSize: Int { 256 }
    static var blockBytes: Int { 144 }
    /// (d·sc_j, dmin·m_j) for the eight sub-blocks.
    @inline(__always)
    static func scales(_ block: UnsafeRawPointer) -> (d: SIMD8<Float>, m: SIMD8<Float>) {
        let d = QuantLanes.half(block, 0), dmin = QuantLanes.half(block, 2)
        let s = (block + 4).assumingMemoryBound(to: UInt8.self)
        var ds = SIMD8<Float>(), ms = SIMD8<Float>()
        // ggml's get_scale_min_k4: the first four pairs are plain 6-bit fields, the last four are split.
        for j in 0..<4 {
            ds[j] = d * Float(s[j] & 63)
            ms[j] = dmin * Float(s[j + 4] & 63)
            ds[j + 4] = d * Float((s[j + 8] & 0x0F) | ((s[j] >> 6) << 4))
            ms[j + 4] = dmin * Float((s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4))
        }
        return (ds, ms)
    }
    @inline(__always)
    static func decode(_ block: UnsafeRawPointer, _ s: (d: SIMD8<Float>, m: SIMD8<Float>), sub j: Int) -> (SIMD16<Float>, SIMD16<Float>) {
        let d1 = s.d[j], n1 = s.m[j]
        let q = block + 16 + 32 * (j >> 1)
        let shift = Int32((j & 1) * 4)
        return (QuantLanes.nibbles(q, shift: shift, minus: 0) * d1 - n1,
                QuantLanes.nibbles(q + 16, shift: shift, minus: 0) * d1 - n1)
    }
    @inline(__always)
    static func accumulate(_ block: UnsafeRawPointer, _ s: (d: SIMD8<Float>, m: SIMD8<Float>), sub j: Int,
                           _ x0: SIMD16<Float>, _ x1: SIMD16<Float>, xSum: Float,
                           into acc: inout SIMD16<Float>, offset: inout Float) {
        let q = block + 16 + 32 * (j >> 1)
        let shift = Int32((j & 1) * 4)
        var t = QuantLanes.nibbles(q, shift: shift, minus: 0) * x0
        t.addProduct(QuantLanes.nibbles(q + 16, shift: shift, minus: 0), x1)
        acc.addProduct(t, SIMD16(repeating: s.d[j]))
        offset -= s.m[j] * xSum
    }
}

/// block_q6_K: u8 ql[128] (low 4 bits), u8 qh[64] (high 2 bits), i8 scales[16], f16 d.
/// In each 128-element half h, part p (sub-block 4h + p) takes the low (p < 2) or high nibbles of
/// ql[64h + 32(p & 1) ..], bits 2p, 2p+1 of qh[32h ..], and a scale per 16 elements; y = (d·sc)·(q − 32).
enum Q6_K: QuantBlockCodec {
    static var blockSize: Int { 256 }
    static var blockBytes: Int { 210 }
    /// d·sc for the sixteen 16-element groups.
    @inline(__always)
    static func scales(_ block: UnsafeRawPointer) -> SIMD16<Float> {
        QuantLanes.int8(block + 192) * QuantLanes.half(block, 208)
    }
    @inline(__always)
    static func decode(_ block: UnsafeRawPointer, _ sc: SIMD16<Float>, sub j: Int) -> (SIMD16<Float>, SIMD16<Float>) {
        let h = j >> 2, p = j & 3
        let ql = block + 64 * h + 32 * (p & 1), qh = block + 128 + 32 * h
        let lowShift = Int32((p >> 1) * 4), highShift = Int32(2 * p)
        @inline(__always) func lanes(_ o: Int) -> SIMD16<Float> {
            let lo = (QuantLanes.bytes(ql + o) &>> lowShift) & 0x0F, hi = (QuantLanes.bytes(qh + o) &>> highShift) & 3
            return QuantLanes.float((lo | (hi &<< 4)) &- 32)
        }
        return (lanes(0) * sc[2 * j], lanes(16) * sc[2 * j + 1])
    }
}
