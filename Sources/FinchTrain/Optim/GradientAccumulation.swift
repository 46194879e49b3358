import Foundation

/// Gradient accumulation that equals the large batch.
///
/// One optimizer step consumes `k` micro-batches. The loss of the step is
/// `Σ_micro Σ_tokens nll / N`, where **N is the number of trained (mask = 1) tokens over all k
/// micro-batches of the step** — not a mean per micro-batch, which weights short micro-batches more
/// and differs from the large batch. So, per optimizer step:
/// 1. count N over the step's micro-batches first (`trainedTokens`: cheap, masks only);
/// 2. for each micro-batch: forward, seed the backward with `scale = 1/N` per trained token (the
///    head's summed-NLL gradient times `lossScale(totalTrainedTokens: N)`), accumulate gradients;
/// 3. clip and step once.
/// The logged loss is the same normalised sum. Preference losses (DPO, reward) normalise by the number
/// of pairs of the optimizer step in the same way (`lossScale(totalTrainedTokens: pairs)`).
public struct GradientAccumulation: Sendable {
    /// Micro-batches per optimizer step.
    public let steps: Int

    public init(steps: Int) {
        precondition(steps >= 1, "gradient accumulation steps must be at least 1 (got \(steps))")
        self.steps = steps
    }

    /// The factor applied to each token's loss (and its gradient) in every micro-batch of the step.
    /// Zero trained tokens give 0 (the step then changes nothing but weight decay).
    public static func lossScale(totalTrainedTokens n: Int) -> Float { n > 0 ? 1 / Float(n) : 0 }

    /// Trained tokens in a set of loss masks (1 = token carries loss); use before the step's backwards.
    public static func trainedTokens<S: Sequence>(_ masks: S) -> Int where S.Element: Collection, S.Element.Element: BinaryInteger {
        masks.reduce(0) { $0 + $1.reduce(0) { $0 + ($1 != 0 ? 1 : 0) } }
    }

    /// Whether micro-batch `index` (0-based, counted over the run) is the last of its optimizer step.
    public func isStepBoundary(microBatch index: Int) -> Bool { (index + 1) % steps == 0 }
}
