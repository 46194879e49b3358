import Foundation

/// The reward model's Bradley–Terry pairwise loss (TRL `RewardTrainer.compute_loss`).
///
/// `loss = mean_i −logσ(r_c,i − r_r,i − margin_i) + c · mean_i (r_c,i + r_r,i)²`, where the margin column
/// is optional (0 when absent) and c is the reward-centering coefficient (0 = off). Gradients are of
/// that scalar w.r.t. each reward, ready to seed the score head's backward. Arithmetic is in Double.
public enum RewardLoss {
    public struct Result {
        /// Per-pair Bradley–Terry terms −logσ(r_c − r_r − margin) (without the centering term).
        public var losses: [Float]
        /// The full scalar loss (mean Bradley–Terry term + centering term).
        public var loss: Double
        /// r_c − r_r per pair (the margin column is not subtracted here).
        public var margins: [Float]
        /// Fraction of pairs with r_c > r_r.
        public var accuracy: Double
        /// Number of pairs with r_c > r_r.
        public var correctPairs: Int
        /// d loss / d r_c per pair.
        public var gradChosen: [Float]
        /// d loss / d r_r per pair.
        public var gradRejected: [Float]

        public var meanMargin: Double { margins.isEmpty ? 0 : margins.reduce(0.0) { $0 + Double($1) } / Double(margins.count) }
    }

    /// Loss on separate chosen / rejected reward arrays.
    /// - Parameters:
    ///   - margin: optional per-pair margin (the dataset's `margin` column).
    ///   - centeringCoefficient: TRL's `center_rewards_coefficient` (0 = off).
    public static func compute(chosen: [Float], rejected: [Float], margin: [Float]? = nil,
                               centeringCoefficient: Double = 0) -> Result {
        let n = chosen.count
        precondition(n > 0 && rejected.count == n, "RewardLoss: \(chosen.count) chosen vs \(rejected.count) rejected rewards")
        if let m = margin { precondition(m.count == n, "RewardLoss: \(m.count) margins for \(n) pairs") }
        var r = Result(losses: [], loss: 0, margins: [], accuracy: 0, correctPairs: 0, gradChosen: [], gradRejected: [])
        var bt = 0.0, centre = 0.0
        let invN = 1 / Double(n)
        for i in 0..<n {
            let c = Double(chosen[i]), j = Double(rejected[i])
            let d = c - j - Double(margin?[i] ?? 0)
            let l = -LogSigmoid.logSigmoid(d)
            bt += l
            let s = c + j
            centre += s * s
            r.losses.append(Float(l))
            r.margins.append(Float(c - j))
            if chosen[i] > rejected[i] { r.correctPairs += 1 }
            // d(−logσ(d))/dd = −σ(−d); centering: d(c·s²/n)/dr = 2cs/n for both rewards.
            let g = -LogSigmoid.sigmoid(-d) * invN
            let gc = 2 * centeringCoefficient * s * invN
            r.gradChosen.append(Float(g + gc))
            r.gradRejected.append(Float(-g + gc))
        }
        r.loss = bt * invN + centeringCoefficient * centre * invN
        r.accuracy = Double(r.correctPairs) * invN
        return r
    }

    /// Loss on the rewards of a batch laid out as TRL does: the `n` chosen rows first, then the `n`
    /// rejected rows (pair i = rows i and i + n). The gradient comes back in the same layout.
    public static func compute(stackedRewards rewards: [Float], margin: [Float]? = nil,
                               centeringCoefficient: Double = 0) -> (result: Result, gradRewards: [Float]) {
        precondition(rewards.count % 2 == 0 && !rewards.isEmpty, "RewardLoss: stacked rewards need an even, non-zero count (got \(rewards.count))")
        let n = rewards.count / 2
        let r = compute(chosen: Array(rewards[..<n]), rejected: Array(rewards[n...]), margin: margin,
                        centeringCoefficient: centeringCoefficient)
        return (r, r.gradChosen + r.gradRejected)
    }
}
