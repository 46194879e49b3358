import Foundation

// Lane helpers for the softmax of the attention tiles. The standard library's pointwiseMin/Max and the
// horizontal max()/sum() of SIMD16<Float> are generic per-lane loops (NaN-aware minimum, strictly ordered sums)
// that stay out-of-line calls: in a profile of the first tiled kernel they cost more than the exp polynomial.
// The forms below were checked in the assembly (swiftc -emit-assembly -target-cpu native): vmaxps, masked
// multiplies and halving adds on zmm registers.
enum AttentionMath {
    /// exp(x) for x ≤ 0 (a score minus its row's max, or minus the log-sum-exp); exactly 0 below −87.3, so
    /// also for −∞ (hidden keys). `exp16`'s polynomial; the clamp is a blend on the way out instead of the
    /// stdlib's min/max on the way in (out-of-line calls here).
    @inline(__always)
    static func expNonPositive(_ x: F16) -> F16 {
        exp16Unclamped(x).replacing(with: 0, where: x .< F16(repeating: -87.3))
    }

    /// Lane-wise max (no NaN inputs here). A ternary per lane becomes one vmaxps; `replacing(with:where:)`
    /// on a compare mask was split into 4-lane pieces.
    @inline(__always) static func max(_ a: F16, _ b: F16) -> F16 {
        var r = a
        for i in 0..<16 { r[i] = a[i] > b[i] ? a[i] : b[i] }
        return r
    }

    /// The largest lane.
    @inline(__always) static func maxAcross(_ v: F16) -> Float {
        let lo = v.lowHalf, hi = v.highHalf
        var h8 = lo
        for i in 0..<8 { h8[i] = lo[i] > hi[i] ? lo[i] : hi[i] }
        return Swift.max(Swift.max(Swift.max(h8[0], h8[4]), Swift.max(h8[1], h8[5])),
                         Swift.max(Swift.max(h8[2], h8[6]), Swift.max(h8[3], h8[7])))
    }

    /// The sum of the lanes, added pairwise.
    @inline(__always) static func sumAcross(_ v: F16) -> Float {
        let h8 = v.lowHalf + v.highHalf, h4 = h8.lowHalf + h8.highHalf
        return (h4[0] + h4[2]) + (h4[1] + h4[3])
    }
}
