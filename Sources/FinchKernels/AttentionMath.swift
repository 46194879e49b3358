import Foundation

// Lane helpers for the softmax of the attention tiles. The standard library's pointwiseMin/Max and the
// horizontal max()/sum() of SIMD16<Float> are generic per-lane loops (NaN-aware minimum, strictly ordered sums)
// that stay out-of-line calls: in a profile of the first tiled kernel they cost more than the exp polynomial.
// Compares and blends, and halving reductions, compile to single AVX-512 instructions instead.
enum AttentionMath {
    /// exp(x) for x ≤ 0 (a score minus its row's max, or minus the log-sum-exp); exactly 0 below −87.3, so
    /// also for −∞ (hidden keys). Same reduction and degree-7 polynomial as `exp16` (≈1 ulp); the clamp is a
    /// blend on the way out instead of min/max on the way in.
    @inline(__always)
    static func expNonPositive(_ x: F16) -> F16 {
        let magic = F16(repeating: 12582912)   // 1.5·2²³: adding it rounds to an integer in the low mantissa bits
        let t = x.addingProduct(x, F16(repeating: 0.442695040888963)) + magic
        let n = t - magic
        let r = x.addingProduct(n, F16(repeating: -0.693145751953125)).addingProduct(n, F16(repeating: -1.428606765330187e-06))
        // Horner form of Σ rᵏ/k!, k ≤ 7.
        let p = F16(repeating: 1).addingProduct(r, F16(repeating: 1).addingProduct(r, F16(repeating: 0.5).addingProduct(r,
                F16(repeating: 1.0 / 6).addingProduct(r, F16(repeating: 1.0 / 24).addingProduct(r, F16(repeating: 1.0 / 120)
                .addingProduct(r, F16(repeating: 1.0 / 720).addingProduct(r, F16(repeating: 1.0 / 5040))))))))
        let bits = (unsafeBitCast(t, to: SIMD16<Int32>.self) &+ 127) &<< 23
        return (p * unsafeBitCast(bits, to: F16.self)).replacing(with: 0, where: x .< F16(repeating: -87.3))
    }

    /// Lane-wise max (no NaN inputs here).
    @inline(__always) static func max(_ a: F16, _ b: F16) -> F16 { a.replacing(with: b, where: b .> a) }

    /// The largest lane.
    @inline(__always) static func maxAcross(_ v: F16) -> Float {
        let h8 = v.lowHalf.replacing(with: v.highHalf, where: v.highHalf .> v.lowHalf)
        let h4 = h8.lowHalf.replacing(with: h8.highHalf, where: h8.highHalf .> h8.lowHalf)
        return Swift.max(Swift.max(h4[0], h4[1]), Swift.max(h4[2], h4[3]))
    }

    /// The sum of the lanes, added pairwise.
    @inline(__always) static func sumAcross(_ v: F16) -> Float {
        let h8 = v.lowHalf + v.highHalf, h4 = h8.lowHalf + h8.highHalf
        return (h4[0] + h4[2]) + (h4[1] + h4[3])
    }
}
