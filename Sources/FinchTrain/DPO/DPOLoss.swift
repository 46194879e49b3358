import Foundation

/// Direct Preference Optimisation loss on sequence log-probabilities (TRL `DPOTrainer`).
///
/// Inputs are, per preference pair, the summed log-probability of the chosen and rejected completions
/// under the policy being trained and under the frozen reference. With
/// `z = (π_c − ref_c) − (π_r − ref_r)`:
/// - `.sigmoid` (standard DPO): `−logσ(βz)·(1−ε) − logσ(−βz)·ε` (ε = label smoothing, 0 by default)
/// - `.ipo`: `(z − 1/(2β))²`
/// - `.hinge`: `max(0, 1 − βz)`
/// - `.robust` (rDPO, TRL `robust`): `(−(1−ε)·logσ(βz) + ε·logσ(−βz)) / (1 − 2ε)`, unbiased under labels flipped with
///   probability ε
/// - `.apoZero` (APO-zero, TRL `apo_zero`): `(1 − σ(β·c)) + σ(β·r)` with c = π_c − ref_c and r = π_r − ref_r: raises
///   the chosen likelihood and lowers the rejected one, each against the reference
/// - `.simpo` (SimPO, TRL `CPOTrainer` with `loss_type="simpo"`): reference-free and length-normalised,
///   `−logσ(β·u)·(1−ε) − logσ(−β·u)·ε` with `u = π_c/|c| − π_r/|r| − γ/β` (|c|, |r| the completion lengths, γ the
///   target margin); its implicit rewards are β·π/|·|
///
/// `loss` is the mean over pairs; the gradients are of that mean w.r.t. the policy log-probs (the
/// reference log-probs are constants). Arithmetic is in Double; arrays come back as Float.
public enum DPOLoss {
    public enum Variant: String, Codable, CaseIterable, Sendable {
        case sigmoid, ipo, hinge, robust
        case apoZero = "apo_zero"
        case simpo

        /// Whether the loss reads reference log-probs (SimPO does not, so none need computing).
        public var usesReference: Bool { self != .simpo }
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
    /// - Parameters:
    ///   - chosenLengths, rejectedLengths: completion tokens per pair (SimPO's length normalisation; required for it).
    ///   - simpoGamma: SimPO's target reward margin γ.
    /// - Precondition: the arrays have the same non-zero length (the reference arrays are ignored by SimPO and may
    ///   be empty then); β > 0; label smoothing below 0.5 for `.robust`.
    public static func compute(policyChosen: [Float], policyRejected: [Float],
                               referenceChosen: [Float], referenceRejected: [Float],
                               beta: Double, variant: Variant = .sigmoid,
                               labelSmoothing: Double = 0,
                               chosenLengths: [Int]? = nil, rejectedLengths: [Int]? = nil, simpoGamma: Double = 0.5) -> Result {
        let n = policyChosen.count
        let referenceCount = variant.usesReference ? n : referenceChosen.count
        precondition(n > 0 && policyRejected.count == n && referenceChosen.count == referenceCount && referenceRejected.count == referenceCount,
                     "DPOLoss: arrays must have the same non-zero length (got \(policyChosen.count), \(policyRejected.count), \(referenceChosen.count), \(referenceRejected.count))")
        precondition(beta > 0, "DPOLoss: beta must be positive (got \(beta))")
        if variant == .simpo {
            precondition(chosenLengths?.count == n && rejectedLengths?.count == n, "DPOLoss: SimPO needs the completion lengths")
            return simpo(policyChosen, policyRejected, chosenLengths!, rejectedLengths!, beta: beta, gamma: simpoGamma,
                         labelSmoothing: labelSmoothing)
        }
        precondition(variant != .robust || labelSmoothing < 0.5, "DPOLoss: robust DPO needs label smoothing below 0.5")
        var r = Result(losses: [], loss: 0, chosenRewards: [], rejectedRewards: [], margins: [],
                       rewardAccuracy: 0, correctPairs: 0, gradPolicyChosen: [], gradPolicyRejected: [])
        var total = 0.0
        for i in 0..<n {
            let chosenRatio = Double(policyChosen[i]) - Double(referenceChosen[i])
            let rejectedRatio = Double(policyRejected[i]) - Double(referenceRejected[i])
            let z = chosenRatio - rejectedRatio
            let loss: Double, dz: Double   // dz = d loss_i / d z
            var dChosen: Double? = nil, dRejected: Double? = nil   // losses that are not a function of z alone
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
            case .robust:
                let eps = labelSmoothing
                loss = (-(1 - eps) * LogSigmoid.logSigmoid(beta * z) + eps * LogSigmoid.logSigmoid(-beta * z)) / (1 - 2 * eps)
                dz = (-(1 - eps) * beta * LogSigmoid.sigmoid(-beta * z) - eps * beta * LogSigmoid.sigmoid(beta * z)) / (1 - 2 * eps)
            case .apoZero:
                let sc = LogSigmoid.sigmoid(beta * chosenRatio), sr = LogSigmoid.sigmoid(beta * rejectedRatio)
                loss = (1 - sc) + sr
                dz = 0
                dChosen = -beta * sc * (1 - sc)
                dRejected = beta * sr * (1 - sr)
            case .simpo:
                preconditionFailure("unreachable")
            }
            total += loss
            let cr = beta * chosenRatio, rr = beta * rejectedRatio
            r.append(loss: loss, chosenReward: cr, rejectedReward: rr,
                     dChosen: (dChosen ?? dz) / Double(n), dRejected: (dRejected ?? -dz) / Double(n))
        }
        r.loss = total / Double(n)
        r.rewardAccuracy = Double(r.correctPairs) / Double(n)
        return r
    }

    /// SimPO on summed completion log-probs and their lengths (TRL's `get_batch_logps(average_log_prob=True)` then
    /// `cpo_loss` with `loss_type="simpo"`).
    static func simpo(_ chosen: [Float], _ rejected: [Float], _ lc: [Int], _ lr: [Int], beta: Double, gamma: Double,
                      labelSmoothing eps: Double) -> Result {
        let n = chosen.count
        var r = Result(losses: [], loss: 0, chosenRewards: [], rejectedRewards: [], margins: [],
                       rewardAccuracy: 0, correctPairs: 0, gradPolicyChosen: [], gradPolicyRejected: [])
        var total = 0.0
        for i in 0..<n {
            let nc = Double(Swift.max(1, lc[i])), nr = Double(Swift.max(1, lr[i]))
            let c = Double(chosen[i]) / nc, rj = Double(rejected[i]) / nr
            let u = c - rj - gamma / beta
            let loss = -LogSigmoid.logSigmoid(beta * u) * (1 - eps) - LogSigmoid.logSigmoid(-beta * u) * eps
            let du = -beta * LogSigmoid.sigmoid(-beta * u) * (1 - eps) + beta * LogSigmoid.sigmoid(beta * u) * eps
            total += loss
            r.append(loss: loss, chosenReward: beta * c, rejectedReward: beta * rj,
                     dChosen: du / nc / Double(n), dRejected: -du / nr / Double(n))
        }
        r.loss = total / Double(n)
        r.rewardAccuracy = Double(r.correctPairs) / Double(n)
        return r
    }
}

extension DPOLoss.Result {
    mutating func append(loss: Double, chosenReward cr: Double, rejectedReward rr: Double, dChosen: Double, dRejected: Double) {
        losses.append(Float(loss))
        chosenRewards.append(Float(cr))
        rejectedRewards.append(Float(rr))
        margins.append(Float(cr - rr))
        if Float(cr) > Float(rr) { correctPairs += 1 }
        gradPolicyChosen.append(Float(dChosen))
        gradPolicyRejected.append(Float(dRejected))
    }
}
