import XCTest
import FinchConformance
import FinchTrain

final class RewardLossTests: XCTestCase {
    /// The loss / accuracy / margins of each `llama-reward` case from its expected rewards (the model
    /// part of that case is checked by the reward trainer).
    func testLossFromExpectedRewardsOfLlamaRewardCases() throws {
        try Conformance.run(kind: "llama-reward") { c, checker in
            let chosen = try c.expected.required("rewards_chosen", \.nestedFloats).values
            let rejected = try c.expected.required("rewards_rejected", \.nestedFloats).values
            let r = RewardLoss.compute(chosen: chosen, rejected: rejected)
            checker.check("loss", actual: [r.loss], expected: [try c.expected.required("loss", \.double)])
            // A ratio of small counts: compare the count exactly.
            let accuracy = try c.expected.required("accuracy", \.double)
            checker.checkExact("accuracy", actual: [r.correctPairs], expected: [Int((accuracy * Double(chosen.count)).rounded())])
            checker.check("margins", actual: r.margins, expected: try c.expected.required("margins", \.nestedFloats).values)
        }
    }

    func testMarginCenteringAndGradients() {
        let c: [Float] = [0.5, -1.25, 3, 0], j: [Float] = [0.25, 0.5, -2, 0]
        let m: [Float] = [0.1, 0, 1, -0.5]
        let (coef, h) = (0.01, 1e-3)
        let r = RewardLoss.compute(chosen: c, rejected: j, margin: m, centeringCoefficient: coef)
        // Direct formula in Double.
        var want = 0.0
        for i in 0..<4 {
            let d = Double(c[i]) - Double(j[i]) - Double(m[i])
            want += log(1 + exp(-d)) / 4 + coef * pow(Double(c[i]) + Double(j[i]), 2) / 4
        }
        XCTAssertEqual(r.loss, want, accuracy: 1e-12)
        XCTAssertEqual(r.correctPairs, 2)
        for i in 0..<4 {
            func loss(_ dc: Double, _ dj: Double) -> Double {
                var cc = c.map(Double.init), jj = j.map(Double.init)
                cc[i] += dc; jj[i] += dj
                return RewardLoss.compute(chosen: cc.map(Float.init), rejected: jj.map(Float.init), margin: m,
                                          centeringCoefficient: coef).loss
            }
            XCTAssertEqual(Double(r.gradChosen[i]), (loss(h, 0) - loss(-h, 0)) / (2 * h), accuracy: 2e-4)
            XCTAssertEqual(Double(r.gradRejected[i]), (loss(0, h) - loss(0, -h)) / (2 * h), accuracy: 2e-4)
        }
        let (stacked, g) = RewardLoss.compute(stackedRewards: c + j, margin: m, centeringCoefficient: coef)
        XCTAssertEqual(stacked.loss, r.loss)
        XCTAssertEqual(g, r.gradChosen + r.gradRejected)
    }
}
