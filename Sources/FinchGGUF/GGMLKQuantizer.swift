/// ggml's K-quant writers (256-element super-blocks) as the reference `quantize_row_q4_K_ref` and
/// `quantize_row_q6_K_ref` in ggml-quants.c compute them without an importance matrix: the same scale search
/// (`make_qkx2_quants` for Q4_K's scale/min pairs, `make_qx_quants` with rmse_type 1 for Q6_K's signed scales),
/// the same float operations in the same order, and `nearest_int`'s round-half-even.
extension GGMLQuantizer {
    /// ggml's `nearest_int`: adds 1.5·2^23 and reads the low mantissa bits (round half to even for |f| < 2^22).
    @inline(__always)
    static func nearestInt(_ f: Float) -> Int32 {
        let i = Int32(bitPattern: (f + 12_582_912).bitPattern)
        return (i & 0x007F_FFFF) - 0x0040_0000
    }

    /// `make_qkx2_quants(n, nmax, x, weights, L, &the_min, Laux, rmin, rdelta, nstep, use_mad = false)`:
    /// a scale and a (negated) minimum for `x`, searched over `nstep + 1` candidate scales; levels into `L`.
    /// Returns (scale, the_min).
    static func makeQKX2(_ n: Int, _ nmax: Int32, _ x: UnsafePointer<Float>, _ weights: UnsafePointer<Float>,
                         _ L: UnsafeMutablePointer<UInt8>, _ laux: UnsafeMutablePointer<UInt8>,
                         rmin: Float, rdelta: Float, nstep: Int) -> (Float, Float) {
        var min = x[0], max = x[0]
        var sumW = weights[0]
        var sumX = sumW * x[0]
        for i in 1..<n {
            if x[i] < min { min = x[i] }
            if x[i] > max { max = x[i] }
            let w = weights[i]
            sumW += w
            sumX += w * x[i]
        }
        if min > 0 { min = 0 }
        if max == min {
            for i in 0..<n { L[i] = 0 }
            return (0, -min)
        }
        let fmax = Float(nmax)
        var iscale = fmax / (max - min)
        var scale = 1 / iscale
        var bestError: Float = 0
        for i in 0..<n {
            let l = nearestInt(iscale * (x[i] - min))
            L[i] = UInt8(Swift.max(0, Swift.min(nmax, l)))
            let diff = scale * Float(L[i]) + min - x[i]
            bestError += weights[i] * (diff * diff)
        }
        if nstep < 1 { return (scale, -min) }
        for step in 0...nstep {
            iscale = (rmin + rdelta * Float(step) + fmax) / (max - min)
            var sumL: Float = 0, sumL2: Float = 0, sumXL: Float = 0
            for i in 0..<n {
                let l = Swift.max(0, Swift.min(nmax, nearestInt(iscale * (x[i] - min))))
                laux[i] = UInt8(l)
                let w = weights[i], fl = Float(l)
                sumL += w * fl
                sumL2 += w * fl * fl
                sumXL += w * fl * x[i]
            }
            let D = sumW * sumL2 - sumL * sumL
            if D > 0 {
                var thisScale = (sumW * sumXL - sumX * sumL) / D
                var thisMin = (sumL2 * sumX - sumL * sumXL) / D
                if thisMin > 0 {
                    thisMin = 0
                    thisScale = sumXL / sumL2
                }
                var curError: Float = 0
                for i in 0..<n {
                    let diff = thisScale * Float(laux[i]) + thisMin - x[i]
                    curError += weights[i] * (diff * diff)
                }
                if curError < bestError {
                    for i in 0..<n { L[i] = laux[i] }
                    bestError = curError
                    scale = thisScale
                    min = thisMin
                }
            }
        }
        return (scale, -min)
    }

    /// `make_qx_quants(n, nmax, x, L, rmse_type = 1, qw = NULL)`: a signed scale for `x` (weights x²), searched over
    /// 19 candidates; levels + nmax into `L`.
    static func makeQX(_ n: Int, _ nmax: Int32, _ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<Int8>) -> Float {
        var max: Float = 0, amax: Float = 0
        for i in 0..<n {
            let ax = abs(x[i])
            if ax > amax { amax = ax; max = x[i] }
        }
        if amax < 1e-15 {   // GROUP_MAX_EPS: all zero
            for i in 0..<n { L[i] = 0 }
            return 0
        }
        let fmax = Float(nmax)
        var iscale = -fmax / max
        var sumLX: Float = 0, sumL2: Float = 0
        for i in 0..<n {
            let l = Swift.max(-nmax, Swift.min(nmax - 1, nearestInt(iscale * x[i])))
            L[i] = Int8(truncatingIfNeeded: l + nmax)
            let w = x[i] * x[i], fl = Float(l)
            sumLX += w * x[i] * fl
            sumL2 += w * fl * fl
        }
        var scale: Float = sumL2 != 0 ? sumLX / sumL2 : 0
        var best = scale * sumLX
        for step in -9...9 where step != 0 {
            iscale = -(fmax + 0.1 * Float(step)) / max
            sumLX = 0; sumL2 = 0
            for i in 0..<n {
                let fl = Float(Swift.max(-nmax, Swift.min(nmax - 1, nearestInt(iscale * x[i]))))
                let w = x[i] * x[i]
                sumLX += w * x[i] * fl
                sumL2 += w * fl * fl
            }
            if sumL2 > 0 && sumLX * sumLX > best * sumL2 {
                for i in 0..<n {
                    L[i] = Int8(truncatingIfNeeded: nmax + Swift.max(-nmax, Swift.min(nmax - 1, nearestInt(iscale * x[i]))))
                }
                scale = sumLX / sumL2
                best = scale * sumLX
            }
        }
        return scale
    }

    /// block_q4_K (144 bytes): f16 d, f16 dmin, 12 bytes of 6-bit scales and mins for 8 sub-blocks of 32, 128 bytes of
    /// 4-bit levels. Each sub-block gets a scale and min from `make_qkx2_quants` (weights rms + |x|, 21 candidates),
    /// those are quantised to 6 bits against the largest, and the levels are recomputed with the stored values.
    static func q4_K(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ r: Range<Int>) {
        let L = UnsafeMutablePointer<UInt8>.allocate(capacity: 256)
        let laux = UnsafeMutablePointer<UInt8>.allocate(capacity: 32)
        let weights = UnsafeMutablePointer<Float>.allocate(capacity: 32)
        defer { L.deallocate(); laux.deallocate(); weights.deallocate() }
        var scales = [Float](repeating: 0, count: 8), mins = [Float](repeating: 0, count: 8)
        for b in r {
            let x = src + 256 * b, y = dst + 144 * b
            var maxScale: Float = 0, maxMin: Float = 0
            for j in 0..<8 {
                let xs = x + 32 * j
                var sumX2: Float = 0
                for l in 0..<32 { sumX2 += xs[l] * xs[l] }
                let avX = (sumX2 / 32).squareRoot()
                for l in 0..<32 { weights[l] = avX + abs(xs[l]) }
                (scales[j], mins[j]) = makeQKX2(32, 15, xs, weights, L + 32 * j, laux, rmin: -1, rdelta: 0.1, nstep: 20)
                if scales[j] > maxScale { maxScale = scales[j] }
                if mins[j] > maxMin { maxMin = mins[j] }
            }
            let invScale: Float = maxScale > 0 ? 63 / maxScale : 0
            let invMin: Float = maxMin > 0 ? 63 / maxMin : 0
            let sc = (y + 4).assumingMemoryBound(to: UInt8.self)
            for j in 0..<12 { sc[j] = 0 }
            for j in 0..<8 {
                let ls = Swift.min(63, UInt8(truncatingIfNeeded: nearestInt(invScale * scales[j])))
                let lm = Swift.min(63, UInt8(truncatingIfNeeded: nearestInt(invMin * mins[j])))
                if j < 4 {
                    sc[j] = ls
                    sc[j + 4] = lm
                } else {
                    sc[j + 4] = (ls & 0x0F) | ((lm & 0x0F) << 4)
                    sc[j - 4] |= (ls >> 4) << 6
                    sc[j] |= (lm >> 4) << 6
                }
            }
            storeHalf(y, 0, maxScale / 63)
            storeHalf(y, 2, maxMin / 63)
            let dAll = roundTripHalf(maxScale / 63), dminAll = roundTripHalf(maxMin / 63)
            for j in 0..<8 {
                let (s, m) = GGMLQuants.scaleMinK4(j, UnsafePointer(sc))
                let d = dAll * s
                if d == 0 { continue }
                let dm = dminAll * m
                for i in 0..<32 {
                    let l = nearestInt((x[32 * j + i] + dm) / d)
                    L[32 * j + i] = UInt8(Swift.max(0, Swift.min(15, l)))
                }
            }
            let q = (y + 16).assumingMemoryBound(to: UInt8.self)
            for j in stride(from: 0, to: 256, by: 64) {
                for l in 0..<32 { q[j / 2 + l] = L[j + l] | (L[j + l + 32] << 4) }
            }
        }
    }

    /// block_q6_K (210 bytes): 128 bytes of low 4 bits, 64 bytes of high 2 bits, 16 int8 scales, f16 d. Each
    /// sub-block of 16 gets a signed scale from `make_qx_quants`; scales are quantised to int8 against the largest
    /// (d = max/−128) and the levels recomputed with the stored scales.
    static func q6_K(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ r: Range<Int>) {
        let L = UnsafeMutablePointer<Int8>.allocate(capacity: 256)
        defer { L.deallocate() }
        var scales = [Float](repeating: 0, count: 16)
        for b in r {
            let x = src + 256 * b, y = dst + 210 * b
            var maxScale: Float = 0, maxAbsScale: Float = 0
            for ib in 0..<16 {
                let scale = makeQX(16, 32, x + 16 * ib, L + 16 * ib)
                scales[ib] = scale
                if abs(scale) > maxAbsScale { maxAbsScale = abs(scale); maxScale = scale }
            }
            if maxAbsScale < 1e-15 {   // GROUP_MAX_EPS
                y.initializeMemory(as: UInt8.self, repeating: 0, count: 210)
                storeHalf(y, 208, 0)
                continue
            }
            let iscale = -128 / maxScale
            storeHalf(y, 208, 1 / iscale)
            let sc = (y + 192).assumingMemoryBound(to: Int8.self)
            for ib in 0..<16 { sc[ib] = Int8(truncatingIfNeeded: Swift.min(127, nearestInt(iscale * scales[ib]))) }
            let dAll = roundTripHalf(1 / iscale)
            for j in 0..<16 {
                let d = dAll * Float(sc[j])
                if d == 0 { continue }
                for i in 0..<16 {
                    let l = Swift.max(-32, Swift.min(31, nearestInt(x[16 * j + i] / d)))
                    L[16 * j + i] = Int8(truncatingIfNeeded: l + 32)
                }
            }
            var ql = (y).assumingMemoryBound(to: UInt8.self), qh = (y + 128).assumingMemoryBound(to: UInt8.self)
            let u = UnsafeRawPointer(L).assumingMemoryBound(to: UInt8.self)
            for j in stride(from: 0, to: 256, by: 128) {
                for l in 0..<32 {
                    let q1 = u[j + l] & 0x0F, q2 = u[j + l + 32] & 0x0F, q3 = u[j + l + 64] & 0x0F, q4 = u[j + l + 96] & 0x0F
                    ql[l] = q1 | (q3 << 4)
                    ql[l + 32] = q2 | (q4 << 4)
                    qh[l] = (u[j + l] >> 4) | ((u[j + l + 32] >> 4) << 2) | ((u[j + l + 64] >> 4) << 4) | ((u[j + l + 96] >> 4) << 6)
                }
                ql += 64
                qh += 32
            }
        }
    }
}
