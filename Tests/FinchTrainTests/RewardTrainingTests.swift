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
        var o = RewardConfig()
        o.common.lr = 3e-3
        o.common.steps = 25
        o.common.batchSize = 8
        o.common.evalFraction = 0.25
        o.common.schedule = "constant"
        o.common.maxLength = 48
        o.common.overlong = .truncate   // these pairs and prompts are longer: exercise the cut
        o.reward.model = model.path; o.reward.data = [prefs.path]; o.reward.out = dir.appendingPathComponent("run").path
        let t = try RewardTrainer(config: o)
        let (before, after) = try t.fit()
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
        // Scored at the length the model was trained on (--max-length 48 cut these pairs): how a reward model trained
        // 25 steps on cut pairs ranks the uncut ones is length generalisation, which this toy does not promise.
        let result = try scorer.scoreFile(prefs, maxLength: 48)
        XCTAssertEqual(result.lines.count, 48)
        XCTAssertGreaterThan(result.pairwiseAccuracy ?? 0, 0.8)
        XCTAssertEqual(try scorer.scoreFile(prefs).lines.count, 48)
    }

    func testLoRARewardRunTrainsAdapterAndHead() throws {
        let dir = try TrainerFixture.tempDir()
        let model = try RLHFFixture.policyFolder(in: dir)
        let prefs = try RLHFFixture.preferences(24, in: dir)
        var o = RewardConfig()
        o.common.method = "lora"
        o.common.lr = 5e-3
        o.common.steps = 6
        o.common.batchSize = 4
        o.common.maxLength = 48
        o.common.overlong = .truncate   // these pairs and prompts are longer: exercise the cut
        o.reward.model = model.path; o.reward.data = [prefs.path]; o.reward.out = dir.appendingPathComponent("run").path
        let t = try RewardTrainer(config: o)
        XCTAssertNotNil(t.reward.trainableParameters["score.weight"])
        XCTAssertTrue(t.reward.trainableParameters.keys.contains { $0.contains("lora_A") })
        let (_, after) = try t.fit()
        XCTAssertNotNil(after)
        XCTAssertEqual(try HFModelFolder.read(t.run.url.appendingPathComponent("final")).config.numLabels, 1)
    }

    /// HH transcripts in a held-out file given with `evalData`: the trainer evaluates exactly those pairs, and
    /// `finch score` parses them as training does (turns, trimmed replies, same truncation), so its scores of
    /// the saved model equal the trainer's.
    func testEvalDataFileAndScoreFileAgreeOnHHTranscripts() throws {
        let dir = try TrainerFixture.tempDir()
        let model = try RLHFFixture.policyFolder(in: dir)
        let prefs = try RLHFFixture.preferences(16, in: dir)
        let heldOut = dir.appendingPathComponent("heldout.jsonl")
        let rows = (0..<6).map { i -> String in
            let t = TrainerFixture.things[i], c = TrainerFixture.colours[i], x = TrainerFixture.things[7 - i]
            return #"{"prompt": "\n\nHuman: Hi \#(i)\n\nAssistant: Hello.\n\nHuman: The \#(t)?\n\nAssistant:", "chosen": " The \#(t) is \#(c).", "rejected": " The \#(t) is \#(x)."}"#
        }
        try (rows.joined(separator: "\n") + "\n").write(to: heldOut, atomically: true, encoding: .utf8)
        var o = RewardConfig()
        o.common.lr = 3e-3
        o.common.steps = 3
        o.common.batchSize = 4
        o.common.maxLength = 128   // the model's max positions: nothing is cut from these pairs
        o.reward.evalData = [heldOut.path]
        o.reward.model = model.path; o.reward.data = [prefs.path]; o.reward.out = dir.appendingPathComponent("run").path
        let t = try RewardTrainer(config: o)
        XCTAssertEqual(t.train.count, 16)   // nothing split off the training data
        XCTAssertEqual(t.eval.count, 6)
        XCTAssertEqual(t.eval[0].prompt.count, try t.source.encoder.generationPrompt(HHTranscript.parse(
            "\n\nHuman: Hi 0\n\nAssistant: Hello.\n\nHuman: The cat?\n\nAssistant:")).count)
        let (_, after) = try t.fit()
        XCTAssertEqual(after?.pairs, 6)

        let scorer = try RewardScorer(rewardModel: t.run.url.appendingPathComponent("final"))
        let result = try scorer.scoreFile(heldOut)
        XCTAssertEqual(result.pairs, 6)
        let (chosen, rejected) = t.score(t.eval)
        for (k, line) in result.lines.enumerated() {
            let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            XCTAssertEqual(o["line"] as? Int, k + 1)
            XCTAssertEqual((o["chosen_score"] as? NSNumber)?.floatValue ?? .nan, chosen[k], accuracy: 1e-4)
            XCTAssertEqual((o["rejected_score"] as? NSNumber)?.floatValue ?? .nan, rejected[k], accuracy: 1e-4)
        }
        XCTAssertEqual(result.pairwiseAccuracy ?? -1, after?.accuracy ?? -2, accuracy: 1e-9)
        XCTAssertEqual(result.accuracyStandardError ?? -1, after?.accuracyStandardError ?? -2, accuracy: 1e-9)

        // {prompt, response} rows: the transcript prompt is split into turns too (same ids as the chosen reply above).
        let single = dir.appendingPathComponent("single.jsonl")
        let o0 = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(rows[0].utf8)) as? [String: Any])
        let one = try JSONSerialization.data(withJSONObject: ["prompt": o0["prompt"]!, "response": o0["chosen"]!])
        try (String(decoding: one, as: UTF8.self) + "\n").write(to: single, atomically: true, encoding: .utf8)
        let s = try scorer.scoreFile(single)
        XCTAssertEqual(s.pairs, 0)
        let so = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(s.lines[0].utf8)) as? [String: Any])
        XCTAssertEqual((so["score"] as? NSNumber)?.floatValue ?? .nan, chosen[0], accuracy: 1e-4)
    }

    /// Long pairs keep the end of the prompt (the question being answered) and the replies' beginnings.
    func testFitKeepsPromptEndAndReplyHeads() {
        let short = PreferencePairs.fit(prompt: Array(0..<100), replies: [[200, 201, 202], [300]], maxLength: 20)
        XCTAssertEqual(short.prompt, Array(83..<100))
        XCTAssertEqual(short.replies, [[200, 201, 202], [300]])
        let long = PreferencePairs.fit(prompt: Array(0..<100), replies: [Array(200..<230), [300]], maxLength: 20)
        XCTAssertEqual(long.replies, [Array(200..<210), [300]])
        XCTAssertEqual(long.prompt, Array(90..<100))
        XCTAssertEqual(PreferencePairs.fit(prompt: [1, 2], replies: [[3], [4, 5]], maxLength: 20).prompt, [1, 2])
    }
}
