import Foundation

/// Numerically stable sigmoid helpers shared by the preference losses (DPO, reward model).
///
/// `logσ(x)` overflows for large |x| when written as `-log(1 + exp(-x))`; the form
/// `min(x, 0) - log1p(exp(-|x|))` is exact to rounding for every finite x (TRL / torch use it too).
public enum LogSigmoid {
    /// log σ(x), stable for any finite x.
    @inlinable public static func logSigmoid(_ x: Double) -> Double {
        Swift.min(x, 0) - Foundation.log1p(Foundation.exp(-Swift.abs(x)))
    }

    /// σ(x) = 1 / (1 + e^(-x)), without overflow for large |x|.
    @inlinable public static func sigmoid(_ x: Double) -> Double {
        if x >= 0 { return 1 / (1 + Foundation.exp(-x)) }
        let e = Foundation.exp(x)
        return e / (1 + e)
    }
}
