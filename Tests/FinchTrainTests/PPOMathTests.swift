import XCTest
import FinchConformance
import FinchModel
import FinchTrain

final class PPOMathTests: XCTestCase {
    /// `ppo-math`: every tensor in `expected_tensors` and every scalar under `expected`.
    func testPPOMathConformance() throws {
        try Conformance.run(kind: "ppo-math") { c, checker in
            let inp = c.inputs, hp = c.hyperparameters
            let config = c.json["reference_source"]?["config"]?.object ?? [:]
            var hyper = PPOMath.Hyperparameters(
                klCoef: try hp.required("kl_coef", \.double), gamma: try hp.required("gamma", \.double),
                lam: try hp.required("lam", \.double), cliprange: try hp.required("cliprange", \.double),
                cliprangeValue: try hp.required("cliprange_value", \.double), vfCoef: try hp.required("vf_coef", \.double))
            if let k = (hp["kl_estimator"] ?? config["kl_estimator"])?.string {
                guard let e = PPOMath.KLEstimator(rawValue: k) else { checker.fail("unknown kl_estimator \(k)"); return }
                hyper.klEstimator = e
            }
            if let w = (hp["whiten_rewards"] ?? config["whiten_rewards"])?.bool { hyper.whitenRewards = w }
            let responses = try inp.required("responses", \.intRows)
            let pad = try inp.required("pad_token_id", \.int)
            let f = { (k: String) in try inp.required(k, \.nestedFloats).values }
            var scores = try f("scores")
            if let penalty = config["missing_eos_penalty"]?.double, let eos = config["stop_token_id"]?.int {
                PPOMath.applyMissingEOSPenalty(scores: &scores, responses: responses, eosTokenID: eos, penalty: penalty)
            }
            let roll = PPOMath.processRollout(responses: responses, padTokenID: pad, logprobs: try f("logprobs"),
                                              refLogprobs: try f("ref_logprobs"), values: try f("values"), scores: scores, hyper: hyper)
            let mb = PPOMath.minibatchLoss(batch: roll.batch, newLogprobs: try f("new_logprobs"), vpred: try f("vpred"), hyper: hyper)

            let asFloat = { (b: [Bool]) in b.map { $0 ? Float(1) : 0 } }
            let tensors: [String: [Float]] = [
                "logprobs_masked": roll.batch.logprobs, "ref_logprobs_masked": roll.refLogprobs,
                "values_masked": roll.batch.values, "kl": roll.kl, "kl_k3": roll.klK3,
                "non_score_reward": roll.nonScoreReward, "rewards": roll.rewards, "advantages_raw": roll.advantagesRaw,
                "advantages": roll.batch.advantages, "returns": roll.batch.returns,
                "new_logprobs_masked": mb.newLogprobsMasked, "vpred_masked": mb.vpredMasked, "vpredclipped": mb.vpredClipped,
                "vf_losses1": mb.vfLosses1, "vf_losses2": mb.vfLosses2, "ratio": mb.ratio,
                "pg_losses": mb.pgLosses, "pg_losses2": mb.pgLosses2,
                "grad.new_logprobs": mb.gradNewLogprobs, "grad.vpred": mb.gradVpred,
            ]
            let exact: [String: [Int]] = [
                "sequence_lengths": roll.sequenceLengths,
                "padding_mask": asFloat(roll.batch.paddingMask).map { Int($0) },
                "padding_mask_p1": asFloat(roll.batch.paddingMaskP1).map { Int($0) },
            ]
            let file = try c.expectedTensors()
            for name in c.expectedTensorNames {
                if let a = exact[name] {
                    checker.checkExact(name, actual: a, expected: try file.ints(name))
                } else if let a = tensors[name] {
                    checker.check(name, actual: a, expected: try file.tensor(name).array)
                } else { checker.fail("expected tensor '\(name)' is not produced") }
            }
            let nPG = Double(roll.batch.paddingMask.filter { !$0 }.count)
            let nVF = Double(roll.batch.paddingMaskP1.filter { !$0 }.count)
            let scalars: [String: Double] = [
                "pg_loss": mb.pgLoss, "vf_loss": mb.vfLoss, "loss": mb.loss, "approxkl": mb.approxKL,
                "ratio_mean": mb.ratioMean, "mean_kl": roll.meanKL, "mean_entropy": roll.meanEntropy,
                "mean_non_score_reward": roll.meanNonScoreReward, "rlhf_reward": roll.rlhfReward,
            ]
            // Clip fractions are ratios of small counts: compare the counts exactly.
            let counts: [String: (Double, Double)] = ["pg_clipfrac": (mb.pgClipfrac, nPG), "vf_clipfrac": (mb.vfClipfrac, nVF)]
            for name in c.expected.keys.sorted() {
                let e = try c.expected.required(name, \.double)
                if let (a, n) = counts[name] {
                    checker.checkExact(name, actual: [Int((a * n).rounded())], expected: [Int((e * n).rounded())])
                } else if let a = scalars[name] {
                    checker.check(name, actual: [a], expected: [e])
                } else { checker.fail("expected scalar '\(name)' is not produced") }
            }
        }
    }

    /// The analytic gradients against central differences of the loss (random inputs, odd sizes).
    func testGradientsMatchFiniteDifferences() {
        var rng = SeededRNG(seed: 7)
        let (b, r) = (3, 7)
        let responses: [[Int]] = [[5, 6, 7, 8, 9, 10, 11], [5, 6, 0, 0, 0, 0, 0], [4, 4, 4, 4, 4, 4, 0]]
        let n = b * r
        let gen = { (s: Float) in (0..<n).map { _ in rng.normal() * s } }
        let lp = gen(1).map { -abs($0) - 0.1 }
        let ref = lp.map { $0 + rng.normal() * 0.2 }
        let values = gen(1)
        let hyper = PPOMath.Hyperparameters(klCoef: 0.1, gamma: 0.99, lam: 0.9, cliprange: 0.2, cliprangeValue: 0.3, vfCoef: 0.5)
        let roll = PPOMath.processRollout(responses: responses, padTokenID: 0, logprobs: lp, refLogprobs: ref,
                                          values: values, scores: [1, -0.5, 0.25], hyper: hyper)
        let newLP = lp.map { $0 + rng.normal() * 0.3 }
        let vpred = values.map { $0 + rng.normal() * 0.5 }
        let mb = PPOMath.minibatchLoss(batch: roll.batch, newLogprobs: newLP, vpred: vpred, hyper: hyper)
        let h: Float = 1e-3
        for i in 0..<n {
            var up = newLP, dn = newLP
            up[i] += h; dn[i] -= h
            let fd = (PPOMath.minibatchLoss(batch: roll.batch, newLogprobs: up, vpred: vpred, hyper: hyper).loss
                - PPOMath.minibatchLoss(batch: roll.batch, newLogprobs: dn, vpred: vpred, hyper: hyper).loss) / Double(up[i] - dn[i])
            XCTAssertEqual(Double(mb.gradNewLogprobs[i]), fd, accuracy: 1e-3, "grad new_logprobs[\(i)]")
            var vu = vpred, vd = vpred
            vu[i] += h; vd[i] -= h
            let fv = (PPOMath.minibatchLoss(batch: roll.batch, newLogprobs: newLP, vpred: vu, hyper: hyper).loss
                - PPOMath.minibatchLoss(batch: roll.batch, newLogprobs: newLP, vpred: vd, hyper: hyper).loss) / Double(vu[i] - vd[i])
            XCTAssertEqual(Double(mb.gradVpred[i]), fv, accuracy: 1e-3, "grad vpred[\(i)]")
        }
        // Minibatch rows: the same loss as a rollout made of those rows only, when advantages are given.
        let sub = roll.batch.rows([2, 0])
        XCTAssertEqual(sub.size, 2)
        XCTAssertEqual(Array(sub.advantages[0..<r]), Array(roll.batch.advantages[(2 * r)..<(3 * r)]))
    }

    func testHelpers() {
        XCTAssertEqual(PPOMath.firstTrueIndices([false, true, true, false, false, false], rows: 2, cols: 3), [1, 3])
        XCTAssertEqual(PPOMath.truncateResponses([[3, 2, 5, 6], [3, 4, 5, 6]], stopTokenID: 2, padTokenID: 0),
                       [[3, 2, 0, 0], [3, 4, 5, 6]])
        var scores: [Float] = [1, 1]
        PPOMath.applyMissingEOSPenalty(scores: &scores, responses: [[3, 2, 0], [3, 4, 5]], eosTokenID: 2, penalty: 1.5)
        XCTAssertEqual(scores, [1, -0.5])
        XCTAssertEqual(PPOMath.maskedVar([1, 2, 3, 100], [true, true, true, false]), 1, accuracy: 1e-12)
        let w = PPOMath.maskedWhiten([1, 2, 3, 100], [true, true, true, false])
        XCTAssertEqual(w[0], -1, accuracy: 1e-6); XCTAssertEqual(w[2], 1, accuracy: 1e-6)
        var logits: [Float] = [0, 0, 0, 0]
        XCTAssertEqual(PPOMath.entropy(logits: &logits, count: 4), log(4), accuracy: 1e-6)

        var kl = KLController.adaptive(initial: 0.2, target: 6, horizon: 10_000)
        kl.update(currentKL: 12, nSteps: 256)   // error clipped to +0.2
        XCTAssertEqual(kl.value, 0.2 * (1 + 0.2 * 256 / 10_000), accuracy: 1e-15)
        kl.update(currentKL: 5.4, nSteps: 100)   // error −0.1
        XCTAssertEqual(kl.value, 0.2 * (1 + 0.2 * 256 / 10_000) * (1 - 0.1 * 100 / 10_000), accuracy: 1e-15)
        var fixed = KLController.fixed(0.05)
        fixed.update(currentKL: 100, nSteps: 10)
        XCTAssertEqual(fixed.value, 0.05)
    }
}
