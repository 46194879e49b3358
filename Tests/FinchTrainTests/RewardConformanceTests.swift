import XCTest
import FinchConformance
import FinchKernels
import FinchModel
import FinchTrain

final class RewardConformanceTests: XCTestCase {
    /// `llama-reward`: rewards, Bradley–Terry loss, accuracy, pooled positions and every gradient listed.
    func testLlamaRewardConformance() throws {
        try Conformance.run(kind: "llama-reward") { c, checker in
            let model = c.json["model"]
            let config = try HFConfig.load(c.file(model?["config_file"]?.string ?? "config.json"))
            let weights = try SafeTensors.File(url: c.file(model?["weights_file"]?.string ?? "model.safetensors"))
            var params: [String: Tensor] = [:]
            for (name, _) in config.parameterShapes() { params[name] = try weights.tensor(name) }
            let inp = c.inputs
            let rows = try inp.required("input_ids", \.intRows)
            let B = rows.count, T = rows.first?.count ?? 0
            let pad = try inp.required("pad_token_id", \.int)
            let decoder = try Decoder(config: config, parameters: params)
            let rm = try RewardModel(decoder: decoder, padID: pad)
            rm.allocateGradients()
            rm.zeroGradients()
            let ids = rows.flatMap { $0 }
            let rewards = rm.rewards(ids: ids, batch: B, length: T)
            let chosenRows = try inp.required("chosen_rows", \.ints), rejectedRows = try inp.required("rejected_rows", \.ints)
            let chosen = chosenRows.map { rewards[$0] }, rejected = rejectedRows.map { rewards[$0] }
            let loss = RewardLoss.compute(chosen: chosen, rejected: rejected)
            var dRewards = [Float](repeating: 0, count: B)
            for (i, r) in chosenRows.enumerated() { dRewards[r] += loss.gradChosen[i] }
            for (i, r) in rejectedRows.enumerated() { dRewards[r] += loss.gradRejected[i] }
            let allScores = rm.allPositionScores()
            rm.backward(dRewards: dRewards)

            let exp = c.expected
            checker.check("loss", actual: [loss.loss], expected: [try exp.required("loss", \.double)])
            let n = Double(chosen.count)
            checker.checkExact("accuracy", actual: [loss.correctPairs], expected: [Int((try exp.required("accuracy", \.double) * n).rounded())])
            checker.check("rewards_chosen", actual: chosen.map(Double.init), expected: try exp.required("rewards_chosen", \.doubles))
            checker.check("rewards_rejected", actual: rejected.map(Double.init), expected: try exp.required("rewards_rejected", \.doubles))
            checker.check("margins", actual: loss.margins.map(Double.init), expected: try exp.required("margins", \.doubles))
            checker.checkExact("last_token_index", actual: RewardModel.pooledPositions(ids: ids, batch: B, length: T, padID: pad),
                               expected: try exp.required("last_token_index", \.ints))
            let file = try c.expectedTensors()
            let grads = rm.gradients
            for name in c.expectedTensorNames {
                if name == "rewards" {
                    checker.check(name, actual: rewards, expected: try file.tensor(name).array)
                } else if name == "debug.all_position_scores" {
                    checker.check(name, actual: allScores, expected: try file.tensor(name).array)
                } else if name.hasPrefix("grad.") {
                    guard let g = grads[String(name.dropFirst(5))] else { checker.fail("no gradient for \(name)"); continue }
                    checker.check(name, actual: g, in: file)
                } else {
                    checker.fail("expected tensor '\(name)' is not produced")
                }
            }
        }
    }
}
