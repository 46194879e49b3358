/// ggml's K-quant formats (256-element super-blocks), as the reference `dequantize_row_q*_K`
/// in ggml-quants.c. Multiplication order follows the reference exactly for bit-exact results.
extension GGMLQuants {
    /// block_q2_K (84 bytes): u8 scales[16] (low nibble scale, high nibble min), u8 qs[64] (2-bit),
    /// f16 d, f16 dmin. y = (d·sc)·q − (dmin·m).
    static func q2_K(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ r: Range<Int>) {
        for b in r {
            let x = src + b * 84
            var y = dst + b * 256
            let scales = x.assumingMemoryBound(to: UInt8.self)
            var q = scales + 16
            let d = half(x, 80), dmin = half(x, 82)
            var s = 0
            for _ in 0..<2 {
                var shift: UInt8 = 0
                for _ in 0..<4 {
                    var sc = scales[s]; s += 1
                    var dl = d * Float(sc & 0x0F), ml = dmin * Float(sc >> 4)
                    for l in 0..<16 { y[l] = dl * Float((q[l] >> shift) & 3) - ml }
                    sc = scales[s]; s += 1
                    dl = d * Float(sc & 0x0F); ml = dmin * Float(sc >> 4)
                    for l in 0..<16 { y[16 + l] = dl * Float((q[l + 16] >> shift) & 3) - ml }
                    y += 32
                    shift += 2
                }
                q += 32
            }
        }
    }

    /// block_q3_K (110 bytes): u8 hmask[32], u8 qs[64] (low 2 bits), u8 scales[12] (16 packed 6-bit
    /// scales, offset 32), f16 d. q = low2 − (hmask bit set ? 0 : 4); y = (d·(sc − 32))·q.
    static func q3_K(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ r: Range<Int>) {
        var sc = (Int32(0), Int32(0), Int32(0), Int32(0), Int32(0), Int32(0), Int32(0), Int32(0),
                  Int32(0), Int32(0), Int32(0), Int32(0), Int32(0), Int32(0), Int32(0), Int32(0))
        withUnsafeMutableBytes(of: &sc) { raw in
            let scale = raw.baseAddress!.assumingMemoryBound(to: Int32.self)
            for b in r {
                let x = src + b * 110
                var y = dst + b * 256
                let hm = x.assumingMemoryBound(to: UInt8.self)
                var q = hm + 32
                let ps = hm + 96
                let dAll = half(x, 108)
                for j in 0..<16 {
                    let lo = j < 8 ? ps[j] & 0x0F : ps[j - 8] >> 4
                    let hi = (ps[8 + (j & 3)] >> UInt8(2 * (j >> 2))) & 3
                    scale[j] = Int32(lo | (hi << 4)) - 32
                }
                var s = 0
                var m: UInt8 = 1
                for _ in 0..<2 {
                    var shift: UInt8 = 0
                    for _ in 0..<4 {
                        var dl = dAll * Float(scale[s]); s += 1
                        for l in 0..<16 {
                            let v = Int32((q[l] >> shift) & 3) - (hm[l] & m != 0 ? 0 : 4)
                            y[l] = dl * Float(v)
                        }
                        dl = dAll * Float(scale[s]); s += 1
                        for l in 0..<16 {
                            let v = Int32((q[l + 16] >> shift) & 3) - (hm[l + 16] & m != 0 ? 0 : 4)
                            y[16 + l] = dl * Float(v)
                        }
                        y += 32
                        shift += 2
                        m <<= 1
                    }
                    q += 32
                }
            }
        }
    }

    /// ggml's `get_scale_min_k4`: the j-th 6-bit scale and min of a Q4_K/Q5_K block.
    @inline(__always)
    static func scaleMinK4(_ j: Int, _ q: UnsafePointer<UInt8>) -> (Float, Float) {
        if j < 4 {
            return (Float(q[j] & 63), Float(q[j + 4] & 63))
        }
        return (Float((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4)),
                Float((q[j + 4] >> 4) | ((q[j] >> 6) << 4)))
    }

    /// block_q4_K (144 bytes): f16 d, f16 dmin, u8 scales[12] (8 × 6-bit scale + min), u8 qs[128].
    /// y = (d·sc)·q − (dmin·m).
    static func q4_K(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ r: Range<Int>) {
        for b in r {
            let x = src + b * 144
            var y = dst + b * 256
            let d = half(x, 0), dmin = half(x, 2)
            let scales = x.assumingMemoryBound(to: UInt8.self) + 4
            var q = scales + 12
            var s = 0
            for _ in 0..<4 {
                let (sc1, m1) = scaleMinK4(s, scales), (sc2, m2) = scaleMinK4(s + 1, scales)
                let d1 = d * sc1, n1 = dmin * m1
                let d2 = d * sc2, n2 = dmin * m2
                for l in 0..<32 { y[l] = d1 * Float(q[l] & 0x0F) - n1 }
                for l in 0..<32 { y[32 + l] = d2 * Float(q[l] >> 4) - n2 }
                y += 64
                q += 32
                s += 2
            }
        }
    }

    /// block_q5_K (176 bytes): f16 d, f16 dmin, u8 scales[12], u8 qh[32] (5th bits), u8 qs[128].
    static func q5_K(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ r: Range<Int>) {
        for b in r {
            let x = src + b * 176
            var y = dst + b * 256
            let d = half(x, 0), dmin = half(x, 2)
            let scales = x.assumingMemoryBound(to: UInt8.self) + 4
            let qh = scales + 12
            var ql = qh + 32
            var s = 0
            var u1: UInt8 = 1, u2: UInt8 = 2
            for _ in 0..<4 {
                let (sc1, m1) = scaleMinK4(s, scales), (sc2, m2) = scaleMinK4(s + 1, scales)
                let d1 = d * sc1, n1 = dmin * m1
                let d2 = d * sc2, n2 = dmin * m2
                for l in 0..<32 { y[l] = d1 * Float((ql[l] & 0x0F) + (qh[l] & u1 != 0 ? 16 : 0)) - n1 }
                for l in 0..<32 { y[32 + l] = d2 * Float((ql[l] >> 4) + (qh[l] & u2 != 0 ? 16 : 0)) - n2 }
                y += 64
                ql += 32
                s += 2
                u1 <<= 2
                u2 <<= 2
            }
        }
    }

    /// block_q6_K (210 bytes): u8 ql[128] (low 4 bits), u8 qh[64] (high 2 bits), i8 scales[16], f16 d.
    /// y = (d·sc)·(q − 32).
    static func q6_K(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ r: Range<Int>) {
        for b in r {
            let x = src + b * 210
            var y = dst + b * 256
            var ql = x.assumingMemoryBound(to: UInt8.self)
            var qh = ql + 128
            var sc = (x + 192).assumingMemoryBound(to: Int8.self)
            let d = half(x, 208)
            for _ in 0..<2 {
                for l in 0..<32 {
                    let i = l >> 4
                    let q1 = Int32((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32
                    let q2 = Int32((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32
                    let q3 = Int32((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32
                    let q4 = Int32((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32
                    y[l] = d * Float(sc[i]) * Float(q1)
                    y[l + 32] = d * Float(sc[i + 2]) * Float(q2)
                    y[l + 64] = d * Float(sc[i + 4]) * Float(q3)
                    y[l + 96] = d * Float(sc[i + 6]) * Float(q4)
                }
                y += 128
                ql += 64
                qh += 32
                sc += 8
            }
        }
    }
}
