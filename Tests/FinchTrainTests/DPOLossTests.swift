import XCTest
import FinchConformance
import FinchTrain

final class DPOLossTests: XCTestCase {
    /// `dpo-loss`: every scalar under `expected` and every tensor in `expected_tensors`.
    func testDPOLossConformance() throws {
        try Conformance.run(kind: "dpo-loss") { c, checker in
            let inp = c.inputs, hp = c.hyperparameters
            let pc = try inp.required("policy_chosen_logps", \.nestedFloats).values
            let pr = try inp.required("policy_rejected_logps", \.nestedFloats).values
            let rc = try inp.required("reference_chosen_logps", \.nestedFloats).values
            let rr = try inp.required("reference_rejected_logps", \.nestedFloats).values
            let variantName = try hp.optional("loss_type", \.string) ?? "sigmoid"
            guard let variant = DPOLoss.Variant(rawValue: variantName) else {
                checker.fail("unsupported loss_type \(variantName)"); return
            }
            let r = DPOLoss.compute(policyChosen: pc, policyRejected: pr, referenceChosen: rc, referenceRejected: rr,
                                    beta: try hp.required("beta", \.double), variant: variant,
                                    labelSmoothing: try hp.optional("label_smoothing", \.double) ?? 0)
            func mean(_ x: [Float]) -> Double { x.reduce(0.0) { $0 + Double($1) } / Double(x.count) }
            let scalars: [String: Double] = [
                "loss": r.loss, "rewards_chosen_mean": r.rewardsChosenMean, "rewards_rejected_mean": r.rewardsRejectedMean,
                "rewards_margins_mean": r.marginsMean, "logps_chosen_mean": mean(pc), "logps_rejected_mean": mean(pr),
            ]
            for name in c.expected.keys.sorted() {
                let value = try c.expected.required(name, \.double)
                if name == "reward_accuracy" {
                    // A ratio of small counts: compare the count exactly.
                    let n = Double(pc.count)
                    checker.checkExact(name, actual: [r.correctPairs], expected: [Int((value * n).rounded())])
                } else if let v = scalars[name] {
                    checker.check(name, actual: [v], expected: [value])
                } else { checker.fail("expected scalar '\(name)' is not produced") }
            }
            let tensors: [String: [Float]] = [
                "losses": r.losses, "chosen_rewards": r.chosenRewards, "rejected_rewards": r.rejectedRewards,
                "margins": r.margins, "grad.policy_chosen_logps": r.gradPolicyChosen,
                "grad.policy_rejected_logps": r.gradPolicyRejected,
            ]
            let file = try c.expectedTensors()
            for name in c.expectedTensorNames {
                guard let a = tensors[name] else { checker.fail("expected tensor '\(name)' is not produced"); continue }
                checker.check(name, actual: a, expected: try file.tensor(name).array)
            }
        }
    }

    /// Gradients of every variant against central differences (Double), and stability at |βz| ≫ 10.
    func testGradientsMatchFiniteDifferences() {
        let pc: [Float] = [-10, -3000, -4.5], pr: [Float] = [-12, -1, -4.25]
        let rc: [Float] = [-11, -20, -4], rr: [Float] = [-11.5, -30, -4]
        for (variant, ls) in [(DPOLoss.Variant.sigmoid, 0.0), (.sigmoid, 0.1), (.ipo, 0.0), (.hinge, 0.0)] {
            let r = DPOLoss.compute(policyChosen: pc, policyRejected: pr, referenceChosen: rc, referenceRejected: rr,
                                    beta: 0.1, variant: variant, labelSmoothing: ls)
            XCTAssert(r.loss.isFinite, "\(variant) loss not finite")
            for i in [0, 2] {   // pair 1 sits at |βz| ≈ 300 where finite differences are meaningless anyway
                let h: Float = 1e-2
                var up = pc, dn = pc
                up[i] += h; dn[i] -= h
                let lu = DPOLoss.compute(policyChosen: up, policyRejected: pr, referenceChosen: rc, referenceRejected: rr,
                                         beta: 0.1, variant: variant, labelSmoothing: ls).loss
                let ld = DPOLoss.compute(policyChosen: dn, policyRejected: pr, referenceChosen: rc, referenceRejected: rr,
                                         beta: 0.1, variant: variant, labelSmoothing: ls).loss
                XCTAssertEqual(Double(r.gradPolicyChosen[i]), (lu - ld) / (Double(up[i]) - Double(dn[i])), accuracy: 1e-5, "\(variant) pair \(i)")
                XCTAssertEqual(r.gradPolicyRejected[i], -r.gradPolicyChosen[i])
            }
        }
        let big = DPOLoss.compute(policyChosen: [-3000], policyRejected: [0], referenceChosen: [0], referenceRejected: [0], beta: 1)
        XCTAssertEqual(big.loss, 3000, accuracy: 1e-9)
        XCTAssertEqual(Double(big.gradPolicyChosen[0]), -1, accuracy: 1e-12)
    }
}
