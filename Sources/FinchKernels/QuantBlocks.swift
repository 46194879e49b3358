/// One ggml block format read in 32-element sub-blocks straight into registers.
///
/// `decode` returns the sub-block's values exactly as ggml's reference `dequantize_row_*` computes them
/// (fp16 scale → Float, then the same separately rounded products and sums), so the tile dequantiser and
/// the fused matrix–vector kernels share one definition of every format.
protocol QuantBlockCodec {
    /// Elements per block (32 or 256).
    static var blockSize: Int { get }
    /// Bytes per block.
    static var blockBytes: Int { get }
    /// Elements `32·sub ..< 32·sub + 32` of the block at `block`.
    static func decode(_ block: UnsafeRawPointer, sub: Int) -> (SIMD16<Float>, SIMD16<Float>)
}

extension QuantBlockCodec {
    /// 32-element sub-blocks per block.
    @inline(__always) static var subBlocks: Int { blockSize / 32 }
}

/// Element-wise loops over 16 lanes: LLVM turns them into one `vpmovzxbd`/`vpmovsxbd` + `vcvtdq2ps`
/// (the stdlib's SIMD conversion initialisers are calls on this toolchain, not inlined instructions).
enum QuantLanes {
    @inline(__always)
    static func half(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
        Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
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
    static func nibbles(_ p: UnsafeRawPointer, shift: UInt8, minus offset: Int32) -> SIMD16<Float> {
        let q = p.assumingMemoryBound(to: UInt8.self)
        var r = SIMD16<Float>()
        for i in 0..<16 { r[i] = Float(Int32((q[i] >> shift) & 0x0F) - offset) }
        return r
    }
}

/// block_q8_0: f16 d, i8 qs[32]; y = q·d.
enum Q8_0: QuantBlockCodec {
    static var blockSize: Int { 32 }
    static var blockBytes: Int { 34 }
    @inline(__always)
    static func decode(_ block: UnsafeRawPointer, sub: Int) -> (SIMD16<Float>, SIMD16<Float>) {
        let d = QuantLanes.half(block, 0)
        return (QuantLanes.int8(block + 2) * d, QuantLanes.int8(block + 18) * d)
    }
}

/// block_q4_0: f16 d, u8 qs[16]; low nibbles are elements 0..15, high nibbles 16..31; y = (q − 8)·d.
enum Q4_0: QuantBlockCodec {
    static var blockSize: Int { 32 }
    static var blockBytes: Int { 18 }
    @inline(__always)
    static func decode(_ block: UnsafeRawPointer, sub: Int) -> (SIMD16<Float>, SIMD16<Float>) {
        let d = QuantLanes.half(block, 0)
        return (QuantLanes.nibbles(block + 2, shift: 0, minus: 8) * d, QuantLanes.nibbles(block + 2, shift: 4, minus: 8) * d)
    }
}

/// block_q4_1: f16 d, f16 m, u8 qs[16]; y = q·d + m.
enum Q4_1: QuantBlockCodec {
    static var blockSize: Int { 32 }
    static var blockBytes: Int { 20 }
    @inline(__always)
    static func decode(_ block: UnsafeRawPointer, sub: Int) -> (SIMD16<Float>, SIMD16<Float>) {
        let d = QuantLanes.half(block, 0), m = QuantLanes.half(block, 2)
        return (QuantLanes.nibbles(block + 4, shift: 0, minus: 0) * d + m,
                QuantLanes.nibbles(block + 4, shift: 4, minus: 0) * d + m)
    }
}

/// block_q4_K: f16 d, f16 dmin, u8 scales[12] (eight 6-bit scale/min pairs), u8 qs[128].
/// Sub-block j is the low (even j) or high (odd j) nibbles of qs[32·(j/2) ..< 32·(j/2) + 32];
/// y = (d·sc_j)·q − (dmin·m_j).
enum Q4_K: QuantBlockCodec {
    static var blockSize: Int { 256 }
    static var blockBytes: Int { 144 }
    @inline(__always)
    static func decode(_ block: UnsafeRawPointer, sub j: Int) -> (SIMD16<Float>, SIMD16<Float>) {
        let d = QuantLanes.half(block, 0), dmin = QuantLanes.half(block, 2)
        let s = (block + 4).assumingMemoryBound(to: UInt8.self)
        // ggml's get_scale_min_k4: the first four pairs are plain 6-bit fields, the last four are split.
        let sc: UInt8, mn: UInt8
        if j < 4 {
            sc = s[j] & 63; mn = s[j + 4] & 63
        } else {
            sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4)
            mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4)
        }
        let d1 = d * Float(sc), n1 = dmin * Float(mn)
        let q = block + 16 + 32 * (j >> 1)
        let shift = UInt8((j & 1) * 4)
        return (QuantLanes.nibbles(q, shift: shift, minus: 0) * d1 - n1,
                QuantLanes.nibbles(q + 16, shift: shift, minus: 0) * d1 - n1)
    }
}

/// block_q6_K: u8 ql[128] (low 4 bits), u8 qh[64] (high 2 bits), i8 scales[16], f16 d.
/// In each 128-element half h, part p (sub-block 4h + p) takes the low (p < 2) or high nibbles of
/// ql[64h + 32(p & 1) ..], bits 2p, 2p+1 of qh[32h ..], and a scale per 16 elements; y = (d·sc)·(q − 32).
enum Q6_K: QuantBlockCodec {
    static var blockSize: Int { 256 }
    static var blockBytes: Int { 210 }
    @inline(__always)
    static func decode(_ block: UnsafeRawPointer, sub j: Int) -> (SIMD16<Float>, SIMD16<Float>) {
        let h = j >> 2, p = j & 3
        let d = QuantLanes.half(block, 208)
        let sc = (block + 192 + 8 * h + 2 * p).assumingMemoryBound(to: Int8.self)
        let ql = (block + 64 * h + 32 * (p & 1)).assumingMemoryBound(to: UInt8.self)
        let qh = (block + 128 + 32 * h).assumingMemoryBound(to: UInt8.self)
        let lowShift = UInt8((p >> 1) * 4), highShift = UInt8(2 * p)
        @inline(__always) func lanes(_ o: Int) -> SIMD16<Float> {
            var r = SIMD16<Float>()
            for i in 0..<16 {
                let lo = (ql[o + i] >> lowShift) & 0x0F, hi = (qh[o + i] >> highShift) & 3
                r[i] = Float(Int32(lo | (hi << 4)) - 32)
            }
            return r
        }
        return (lanes(0) * (d * Float(sc[0])), lanes(16) * (d * Float(sc[1])))
    }
}
