import Foundation

/// A learning-rate schedule with linear warmup, exactly as transformers' `get_*_schedule_with_warmup`.
///
/// `lr(at: k)` is the learning rate after `k` scheduler steps, i.e. the rate used by optimizer step
/// `k + 1` (so `lr(at: 0) == 0` whenever there is warmup). Computed in Double:
/// - warmup, `k < W`: `k / max(1, W)`
/// - `.cosine`: `progress = (k - W) / max(1, T - W)`; `max(0, ½(1 + cos(π · numCycles · 2 · progress)))`
/// - `.linear`: `max(0, (T - k) / max(1, T - W))`
/// - `.constant`: `1` (with warmup this is `get_constant_schedule_with_warmup`)
///
/// The schedule position to save for an exact resume is the number of optimizer steps taken.
public struct LRSchedule: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, CaseIterable, Sendable {
        case constant, cosine, linear
    }

    public var kind: Kind
    /// The peak learning rate (the optimizer's lr after warmup).
    public var baseLR: Double
    /// W: steps of linear warmup from 0.
    public var warmupSteps: Int
    /// T: total optimizer steps of the run (cosine and linear reach 0 there).
    public var totalSteps: Int
    /// Cosine cycles over the decay phase; 0.5 (the default) is a half cosine from 1 down to 0.
    public var numCycles: Double

    public init(kind: Kind, baseLR: Double, warmupSteps: Int = 0, totalSteps: Int, numCycles: Double = 0.5) {
        self.kind = kind
        self.baseLR = baseLR
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
        self.numCycles = numCycles
    }

    /// The multiplier λ(k) applied to `baseLR` after `step` scheduler steps.
    public func multiplier(at step: Int) -> Double {
        let k = Double(step), w = Double(warmupSteps), t = Double(totalSteps)
        if step < warmupSteps { return k / Swift.max(1, w) }
        switch kind {
        case .constant:
            return 1
        case .cosine:
            let progress = (k - w) / Swift.max(1, t - w)
            return Swift.max(0, 0.5 * (1 + cos(Double.pi * numCycles * 2 * progress)))
        case .linear:
            return Swift.max(0, (t - k) / Swift.max(1, t - w))
        }
    }

    /// The learning rate after `step` scheduler steps (`baseLR · λ(step)`, as torch's `LambdaLR`).
    public func lr(at step: Int) -> Double { baseLR * multiplier(at: step) }
}

extension LRSchedule.Kind {
    /// Parses a schedule name as users write it (`cosine`, `linear`, `constant`, also transformers'
    /// `constant_with_warmup`); `nil` for anything else.
    public init?(name: String) {
        switch name.lowercased().replacingOccurrences(of: "-", with: "_") {
        case "constant", "constant_with_warmup": self = .constant
        case "cosine", "cosine_with_warmup": self = .cosine
        case "linear", "linear_with_warmup": self = .linear
        default: return nil
        }
    }
}
