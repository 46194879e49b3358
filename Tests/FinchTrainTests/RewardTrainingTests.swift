import XCTest
import FinchKernels
import FinchModel
import FinchData
import FinchTrain

/// Tiny model folders and preference data shared by the reward / DPO / PPO tests.
enum RLHFFixture {
    /// A tiny Llama causal-LM folder (fixture tokenizer, chatml template).
    static func policyFolder(in dir: URL, seed: UInt64 = 7) throws -> URL {
        let url = dir.appendingPathComponent("policy")
        try JobSupport.writeModel(TrainerFixture.decoder(.llama, seed: seed), to: url, tokenizer: TrainerFixture.tokenizerURL,
                                  template: try ChatTemplate.load("chatml"))
        return url
    }

    /// Separable pairs: the chosen reply ends with a colour word, the rejected one (same shape) with a thing word.
    static func preferences(_ n: Int, in dir: URL) throws -> URL {
        let lines = (0..<n).map { i -> String in
            let c = TrainerFixture.colours[i % 8], t = TrainerFixture.things[(i * 5 + 1) % 8]
            return "{\"prompt\": \"What colour is the \(t) number \(i % 7)?\", \"chosen\": \"The \(t) is \(c).\", \"rejected\": \"The \(t) is \(TrainerFixture.things[(i * 3 + 2) % 8]).\"}"
        }
        let u = dir.appendingPathComponent("prefs.jsonl")
        try (lines.joined(separator: "\n") + "\n").write(to: u, atomically: true, encoding: .utf8)
        return u
    }
}

final class RewardTrainingTests: XCTestCase {
    func testTinyRewardRunRaisesPairwiseAccuracyAndSavesSequenceClassifier() throws {
        let dir = try TrainerFixture.tempDir()
        let model = try RLHFFixture.policyFolder(in: dir)
        let prefs = try RLHFFixture.preferences(48, in: dir)
        var o = RewardTrainer.Options()
        o.common.lr = 3e-3
        o.common.steps = 25
        o.common.batchSize = 8
        o.common.evalFraction = 0.25
        o.common.schedule = "constant"
        o.common.maxLength = 48
        let t = try RewardTrainer(model: model, data: [prefs], out: dir.appendingPathComponent("run"), options: o,
                                  progress: Progress(total: 25, mode: .quiet))
        let (before, after) = try t.run()
        let b = try XCTUnwrap(before), a = try XCTUnwrap(after)
        print("reward toy: accuracy \(b.accuracy) → \(a.accuracy), margin \(b.meanMargin) → \(a.meanMargin)")
        XCTAssertGreaterThan(a.accuracy, b.accuracy)
        XCTAssertGreaterThanOrEqual(a.accuracy, 0.9)
        XCTAssertGreaterThan(a.meanMargin, b.meanMargin)

        // The folder is a LlamaForSequenceClassification with num_labels 1, pad_token_id and score.weight.
        let final = t.run.url.appendingPathComponent("final")
        let cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: final.appendingPathComponent("config.json"))) as! [String: Any]
        XCTAssertEqual(cfg["architectures"] as? [String], ["LlamaForSequenceClassification"])
        XCTAssertNotNil(cfg["pad_token_id"] as? Int)
        let w = try SafeTensors.File(url: final.appendingPathComponent("model.safetensors"))
        XCTAssertEqual(try w.tensor("score.weight").shape, [1, 32])
        XCTAssertNil(w.entries["lm_head.weight"])
        let reloaded = try HFModelFolder.read(final)
        XCTAssertEqual(reloaded.config.numLabels, 1)

        // finch score on the saved folder reproduces the trainer's scores of the held-out pairs.
        let scorer = try RewardScorer(rewardModel: final)
        let evalRows = t.eval.map(\.chosenSequence)
        let mine = t.score(t.eval).chosen, theirs = scorer.score(evalRows)
        for (x, y) in zip(mine, theirs) { XCTAssertEqual(x, y, accuracy: 1e-4) }
        let result = try scorer.scoreFile(prefs)
        XCTAssertEqual(result.lines.count, 48)
        XCTAssertGreaterThan(result.pairwiseAccuracy ?? 0, 0.8)
    }

    func testLoRARewardRunTrainsAdapterAndHead() throws {
        let dir = try TrainerFixture.tempDir()
        let model = try RLHFFixture.policyFolder(in: dir)
        let prefs = try RLHFFixture.preferences(24, in: dir)
        var o = RewardTrainer.Options()
        o.common.method = "lora"
        o.common.lr = 5e-3
        o.common.steps = 6
        o.common.batchSize = 4
        o.common.maxLength = 48
        let t = try RewardTrainer(model: model, data: [prefs], out: dir.appendingPathComponent("run"), options: o,
                                  progress: Progress(total: 6, mode: .quiet))
        XCTAssertNotNil(t.reward.trainableParameters["score.weight"])
        XCTAssertTrue(t.reward.trainableParameters.keys.contains { $0.contains("lora_A") })
        let (_, after) = try t.run()
        XCTAssertNotNil(after)
        XCTAssertEqual(try HFModelFolder.read(t.run.url.appendingPathComponent("final")).config.numLabels, 1)
    }
}
