import Foundation

/// Direct Preference Optimisation loss on sequence log-probabilities (TRL `DPOTrainer`).
///
/// Inputs are, per preference pair, the summed log-probability of the chosen and rejected completions
/// under the policy being trained and under the frozen reference. With
/// `z = (π_c − ref_c) − (π_r − ref_r)`:
/// - `.sigmoid` (standard DPO): `−logσ(βz)·(1−ε) − logσ(−βz)·ε` (ε = label smoothing, 0 by default)
/// - `.ipo`: `(z − 1/(2β))²`
/// - `.hinge`: `max(0, 1 − βz)`
///
/// `loss` is the mean over pairs; the gradients are of that mean w.r.t. the policy log-probs (the
/// reference log-probs are constants). Arithmetic is in Double; arrays come back as Float.
public enum DPOLoss {
    public enum Variant: String, Codable, CaseIterable, Sendable {
        case sigmoid, ipo, hinge
    }

    public struct Result {
        /// Per-pair losses.
        public var losses: [Float]
        /// Mean of `losses`.
        public var loss: Double
        /// β(π_c − ref_c) per pair.
        public var chosenRewards: [Float]
        /// β(π_r − ref_r) per pair.
        public var rejectedRewards: [Float]
        /// chosenRewards − rejectedRewards per pair.
        public var margins: [Float]
        /// Fraction of pairs with chosenReward > rejectedReward.
        public var rewardAccuracy: Double
        /// Number of pairs with chosenReward > rejectedReward (the exact count behind `rewardAccuracy`).
        public var correctPairs: Int
        /// d loss / d policyChosen, per pair.
        public var gradPolicyChosen: [Float]
        /// d loss / d policyRejected, per pair.
        public var gradPolicyRejected: [Float]

        public var rewardsChosenMean: Double { Self.mean(chosenRewards) }
        public var rewardsRejectedMean: Double { Self.mean(rejectedRewards) }
        public var marginsMean: Double { Self.mean(margins) }

        static func mean(_ x: [Float]) -> Double {
            x.isEmpty ? 0 : x.reduce(0.0) { $0 + Double($1) } / Double(x.count)
        }
    }

    /// Computes the loss, implicit rewards, accuracy and gradients for a batch of pairs.
    /// - Precondition: the four arrays have the same non-zero length; β > 0.
    public static func compute(policyChosen: [Float], policyRejected: [Float],
                               referenceChosen: [Float], referenceRejected: [Float],
                               beta: Double, variant: Variant = .sigmoid,
                               labelSmoothing: Double = 0) -> Result {
        let n = policyChosen.count
        precondition(n > 0 && policyRejected.count == n && referenceChosen.count == n && referenceRejected.count == n,
                     "DPOLoss: arrays must have the same non-zero length (got \(policyChosen.count), \(policyRejected.count), \(referenceChosen.count), \(referenceRejected.count))")
        precondition(beta > 0, "DPOLoss: beta must be positive (got \(beta))")
        var r = Result(losses: [], loss: 0, chosenRewards: [], rejectedRewards: [], margins: [],
                       rewardAccuracy: 0, correctPairs: 0, gradPolicyChosen: [], gradPolicyRejected: [])
        var total = 0.0
        for i in 0..<n {
            let chosenRatio = Double(policyChosen[i]) - Double(referenceChosen[i])
            let rejectedRatio = Double(policyRejected[i]) - Double(referenceRejected[i])
            let z = chosenRatio - rejectedRatio
            let loss: Double, dz: Double   // dz = d loss_i / d z
            switch variant {
            case .sigmoid:
                let eps = labelSmoothing
                loss = -LogSigmoid.logSigmoid(beta * z) * (1 - eps) - LogSigmoid.logSigmoid(-beta * z) * eps
                dz = -beta * LogSigmoid.sigmoid(-beta * z) * (1 - eps) + beta * LogSigmoid.sigmoid(beta * z) * eps
            case .ipo:
                let d = z - 1 / (2 * beta)
                loss = d * d
                dz = 2 * d
            case .hinge:
                let h = 1 - beta * z
                loss = Swift.max(0, h)
                dz = h > 0 ? -beta : 0
            }
            total += loss
            let cr = beta * chosenRatio, rr = beta * rejectedRatio
            r.losses.append(Float(loss))
            r.chosenRewards.append(Float(cr))
            r.rejectedRewards.append(Float(rr))
            r.margins.append(Float(cr - rr))
            if Float(cr) > Float(rr) { r.correctPairs += 1 }
            r.gradPolicyChosen.append(Float(dz / Double(n)))
            r.gradPolicyRejected.append(Float(-dz / Double(n)))
        }
        r.loss = total / Double(n)
        r.rewardAccuracy = Double(r.correctPairs) / Double(n)
        return r
    }
}
