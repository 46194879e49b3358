import Foundation

/// The KL-penalty coefficient of PPO: fixed, or adapted toward a target KL (Ziegler et al. 2019,
/// TRL's `AdaptiveKLController`).
///
/// Adaptive update after each rollout batch: `e = clip(currentKL / target − 1, −0.2, 0.2)`,
/// `coef ← coef · (1 + e · nSteps / horizon)`, where `nSteps` is the number of samples in the batch.
/// Codable so the coefficient is restored exactly on resume.
public struct KLController: Codable, Equatable, Sendable {
    public enum Mode: String, Codable, Sendable { case fixed, adaptive }

    public private(set) var mode: Mode
    /// The current coefficient (pass it as `PPOMath.Hyperparameters.klCoef`).
    public private(set) var value: Double
    /// Target KL per sequence (adaptive only).
    public private(set) var target: Double
    /// Horizon in samples (adaptive only).
    public private(set) var horizon: Double

    /// A controller that never changes its coefficient.
    public static func fixed(_ coef: Double) -> KLController {
        KLController(mode: .fixed, value: coef, target: 0, horizon: 1)
    }

    /// An adaptive controller starting at `initial`.
    public static func adaptive(initial: Double, target: Double, horizon: Double) -> KLController {
        precondition(target > 0 && horizon > 0, "KLController: target (\(target)) and horizon (\(horizon)) must be positive")
        return KLController(mode: .adaptive, value: initial, target: target, horizon: horizon)
    }

    /// Updates the coefficient from the KL measured on the last batch of `nSteps` samples.
    public mutating func update(currentKL: Double, nSteps: Int) {
        guard mode == .adaptive, currentKL.isFinite else { return }
        let error = Swift.min(Swift.max(currentKL / target - 1, -0.2), 0.2)
        value *= 1 + error * Double(nSteps) / horizon
    }
}
