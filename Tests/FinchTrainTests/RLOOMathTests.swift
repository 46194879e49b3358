import XCTest
import FinchModel
import FinchTrain

/// RLOO arithmetic against a literal transcription of TRL's tensor code (written here in Double, with TRL's own
/// layout: the k replies of prompt i at rows i, i + P, …, i + (k − 1)·P), and its gradient against finite differences.
final class RLOOMathTests: XCTestCase {
    /// TRL rloo_trainer: rlhf_reward.reshape(k, -1); baseline = (sum(0) - x) / (k - 1); advantages = x - baseline.
    func trlAdvantages(strided scores: [Double], klSums: [Double], k: Int, coef: Double, normalize: Bool) -> [Double] {
        let p = scores.count / k
        let rlhf = zip(scores, klSums).map { $0 - coef * $1 }
        var adv = rlhf
        for i in 0..<p {
            let col = (0..<k).map { rlhf[$0 * p + i] }.reduce(0, +)
            for j in 0..<k { adv[j * p + i] = rlhf[j * p + i] - (col - rlhf[j * p + i]) / Double(k - 1) }
        }
        if normalize {
            let m = adv.reduce(0, +) / Double(adv.count)
            let sd = (adv.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(adv.count - 1)).squareRoot()
            adv = adv.map { ($0 - m) / (sd + 1e-8) }
        }
        return adv
    }

    func testAdvantagesMatchTRLLayoutAndFormulas() {
        var rng = SeededRNG(seed: 11)
        let (prompts, k, r) = (3, 4, 5)
        let b = prompts * k
        // Consecutive layout: row g·k + j is reply j to prompt g. Some replies end early (pad 0 after them).
        let responses: [[Int]] = (0..<b).map { row in
            let len = 1 + row % r
            return (0..<r).map { $0 < len ? 7 + $0 : 0 }
        }
        let lp = (0..<(b * r)).map { _ in -abs(rng.normal()) - 0.05 }
        let ref = lp.map { $0 + rng.normal() * 0.3 }
        let scores = (0..<b).map { _ in Float(Int.random(in: 0...1, using: &rng)) }
        for normalize in [false, true] {
            for est in PPOMath.KLEstimator.allCases {
                let roll = RLOOMath.processRollout(responses: responses, padTokenID: 0, logprobs: lp, refLogprobs: ref, scores: scores,
                                                   groupSize: k, klCoef: 0.1, klEstimator: est, normalizeAdvantage: normalize)
                // Per-row KL sums over real tokens (pads hold INVALID_LOGPROB on both sides: 0).
                var klSum = [Double](repeating: 0, count: b)
                for row in 0..<b {
                    for t in 0..<(1 + row % r) {
                        let x = Double(lp[row * r + t]), y = Double(ref[row * r + t])
                        klSum[row] += est == .k1 ? x - y : (exp(y - x) - 1) - (y - x)
                    }
                }
                // To TRL's layout and back.
                let toStrided = { (row: Int) in (row % k) * prompts + row / k }
                var sS = [Double](repeating: 0, count: b), kS = sS
                for row in 0..<b { sS[toStrided(row)] = Double(scores[row]); kS[toStrided(row)] = klSum[row] }
                let want = trlAdvantages(strided: sS, klSums: kS, k: k, coef: 0.1, normalize: normalize)
                for row in 0..<b {
                    XCTAssertEqual(Double(roll.advantages[row]), want[toStrided(row)], accuracy: 1e-5, "advantage \(row) \(est) \(normalize)")
                    XCTAssertEqual(Double(roll.nonScoreReward[row]), -0.1 * klSum[row], accuracy: 1e-5)
                    XCTAssertEqual(Double(roll.rlhfReward[row]), Double(scores[row]) - 0.1 * klSum[row], accuracy: 1e-5)
                }
                XCTAssertEqual(roll.meanKL, klSum.reduce(0, +) / Double(b), accuracy: 1e-5)
                XCTAssertEqual(roll.meanResponseLength, Double((0..<b).map { 1 + $0 % r }.reduce(0, +)) / Double(b), accuracy: 1e-9)
                if !normalize {
                    // Unnormalised leave-one-out advantages sum to zero within each group.
                    for g in 0..<prompts { XCTAssertEqual(roll.advantages[(g * k)..<((g + 1) * k)].reduce(0, +), 0, accuracy: 1e-5) }
                }
            }
        }
        // Groups of replies that all score and diverge alike carry no advantage.
        let same = RLOOMath.processRollout(responses: [[5, 0], [5, 0]], padTokenID: 0, logprobs: [-1, -2, -1, -2],
                                           refLogprobs: [-1.5, -2, -1.5, -2], scores: [1, 1], groupSize: 2, klCoef: 0.2)
        XCTAssertEqual(same.advantages, [0, 0])
    }

    func testMinibatchGradientMatchesFiniteDifferencesAndClips() {
        var rng = SeededRNG(seed: 5)
        let (b, r) = (4, 6)
        let responses: [[Int]] = [[3, 4, 5, 6, 7, 8], [3, 4, 0, 0, 0, 0], [9, 9, 9, 9, 9, 0], [2, 0, 0, 0, 0, 0]]
        let lp = (0..<(b * r)).map { _ in -abs(rng.normal()) - 0.1 }
        let roll = RLOOMath.processRollout(responses: responses, padTokenID: 0, logprobs: lp, refLogprobs: lp.map { $0 - 0.1 },
                                           scores: [1, 0, 0.5, 0], groupSize: 2, klCoef: 0.05)
        let mb = roll.rows([2, 0, 3, 1])
        XCTAssertEqual(mb.advantages, [2, 0, 3, 1].map { roll.advantages[$0] })
        // Small moves (inside the clip range) and one large move (clipped for one sign of the advantage).
        for scale: Float in [0.02, 0.4] {
            let newLP = mb.logprobs.enumerated().map { i, x in mb.paddingMask[i] ? Float(-3) : x + rng.normal() * scale }
            let loss = RLOOMath.minibatchLoss(oldLogprobs: mb.logprobs, paddingMask: mb.paddingMask, advantages: mb.advantages,
                                              newLogprobs: newLP, cliprange: 0.2)
            let h: Float = 1e-3
            for i in 0..<(b * r) {
                var up = newLP, dn = newLP
                up[i] += h; dn[i] -= h
                let f = { (x: [Float]) in RLOOMath.minibatchLoss(oldLogprobs: mb.logprobs, paddingMask: mb.paddingMask,
                                                                  advantages: mb.advantages, newLogprobs: x, cliprange: 0.2).pgLoss }
                let fd = (f(up) - f(dn)) / Double(up[i] - dn[i])
                XCTAssertEqual(Double(loss.gradNewLogprobs[i]), fd, accuracy: 2e-3, "grad[\(i)] at scale \(scale)")
                if mb.paddingMask[i] { XCTAssertEqual(loss.gradNewLogprobs[i], 0) }
            }
            // The loss is mean_b max(−A·ratio, −A·clip(ratio)) with ratio = exp(Σ new − Σ old) over real tokens.
            var want = 0.0, clipped = 0
            for row in 0..<b {
                var d = 0.0
                for t in 0..<r where !mb.paddingMask[row * r + t] { d += Double(newLP[row * r + t] - mb.logprobs[row * r + t]) }
                let q = exp(d), a = Double(mb.advantages[row])
                let l1 = -a * q, l2 = -a * min(max(q, 0.8), 1.2)
                want += max(l1, l2); if l2 > l1 { clipped += 1 }
            }
            XCTAssertEqual(loss.pgLoss, want / Double(b), accuracy: 1e-4)
            XCTAssertEqual(loss.pgClipfrac, Double(clipped) / Double(b), accuracy: 1e-9)
            if scale > 0.1 { XCTAssertGreaterThan(clipped, 0, "the large move should clip some replies") }
        }
    }
}
