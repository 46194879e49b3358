import XCTest
import FinchKernels
import FinchModel
import FinchData
import FinchTrain

final class PPOTrainingTests: XCTestCase {
    /// Reward: 1 per "red" in the response, minus a little per character (a python3 -c program).
    static let rewardScript = """
    python3 -u -c 'import sys, json
    for line in sys.stdin:
        r = json.loads(line)["response"]
        print(r.count("red") - 0.01 * len(r), flush=True)'
    """

    static func prompts(in dir: URL) throws -> URL {
        let lines = (0..<24).map { i in
            "{\"prompt\": \"What colour is the \(TrainerFixture.things[i % 8]) number \(i % 5)?\", \"task\": \"colour\"}"
        }
        let u = dir.appendingPathComponent("prompts.jsonl")
        try (lines.joined(separator: "\n") + "\n").write(to: u, atomically: true, encoding: .utf8)
        return u
    }

    static func options(iterations: Int) -> PPOConfig {
        var o = PPOConfig()
        o.ppo.iterations = iterations
        o.ppo.ppoEpochs = 2
        o.ppo.minibatches = 2
        o.ppo.maxNewTokens = 6
        o.common.batchSize = 4
        o.common.lr = 1e-3
        o.common.schedule = "constant"
        o.common.checkpointEvery = 1
        o.common.maxLength = 48
        o.common.overlong = .truncate   // these pairs and prompts are longer: exercise the cut
        o.common.evalFraction = 0.2
        o.ppo.evalPrompts = 4
        o.ppo.klTarget = 1
        o.ppo.klHorizon = 100
        o.ppo.missingEosPenalty = 0.5
        return o
    }

    static func trainer(_ dir: URL, _ model: URL, _ prompts: URL, _ o: PPOConfig, command: String = rewardScript,
                        resume: Bool = false) throws -> PPOTrainer {
        var c = o
        c.ppo.policy = model.path; c.ppo.prompts = prompts.path; c.ppo.out = dir.appendingPathComponent("run").path
        c.common.resume = resume
        return try PPOTrainer(config: c, rewards: try RewardSource(command: command, timeout: 20))
    }

    /// Records of a run of `o.ppo.iterations` made as 2 iterations, then a new trainer resuming from their checkpoint.
    func resumedRecords(_ dir: URL, _ model: URL, _ prompts: URL, _ o: PPOConfig) throws -> [[String: Any]] {
        var two = o; two.ppo.iterations = 2
        try Self.trainer(dir, model, prompts, two).fit()
        let b = try Self.trainer(dir, model, prompts, o, resume: true)
        try b.fit()
        return try MetricsLog.read(b.run.metricsURL).filter { $0["kl"] != nil }
    }

    /// The per-iteration records of two runs agree on `keys` (an uninterrupted run and a resumed one).
    func assertSameRecords(_ a: [[String: Any]], _ b: [[String: Any]], keys: [String], file: StaticString = #filePath, line: UInt = #line) {
        for (x, y) in zip(a, b) {
            for key in keys {
                XCTAssertEqual((x[key] as? NSNumber)?.doubleValue ?? .nan, (y[key] as? NSNumber)?.doubleValue ?? -1, accuracy: 1e-9, key,
                               file: file, line: line)
            }
        }
    }

    func testPPORunsWritesMetricsAndResumesExactly() throws {
        let dirA = try TrainerFixture.tempDir(), dirB = try TrainerFixture.tempDir()
        let model = try RLHFFixture.policyFolder(in: dirA)
        let p = try Self.prompts(in: dirA)
        // A: 3 iterations in one go.
        let a = try Self.trainer(dirA, model, p, Self.options(iterations: 3))
        let (before, after) = try a.fit()
        XCTAssertNotNil(before); XCTAssertNotNil(after)
        let recA = try MetricsLog.read(a.run.metricsURL).filter { $0["kl"] != nil }
        XCTAssertEqual(recA.count, 3)
        for key in ["reward", "kl", "entropy", "policy_loss", "value_loss", "clip_fraction", "response_length", "kl_coef"] {
            XCTAssertNotNil(recA.last?[key], key)
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: a.run.lossCurveURL.path))
        XCTAssertNotNil(try HFModelFolder.read(a.run.url.appendingPathComponent("final")))

        // B: 2 iterations, then a new process-like trainer resumes to 3.
        _ = try Self.trainer(dirB, model, p, Self.options(iterations: 2)).fit()
        let b = try Self.trainer(dirB, model, p, Self.options(iterations: 3), resume: true)
        try b.fit()
        let recB = try MetricsLog.read(b.run.metricsURL).filter { $0["kl"] != nil }
        XCTAssertEqual(recB.count, 3)
        assertSameRecords(recA, recB, keys: ["reward", "kl", "policy_loss", "value_loss", "kl_coef"])
    }

    func testSamplesPerPromptRunsAndMustDivideTheBatch() throws {
        let dir = try TrainerFixture.tempDir()
        let model = try RLHFFixture.policyFolder(in: dir)
        let p = try Self.prompts(in: dir)
        var o = Self.options(iterations: 2)
        o.ppo.samplesPerPrompt = 3   // does not divide the batch of 4
        XCTAssertThrowsError(try Self.trainer(dir, model, p, o)) { XCTAssertTrue("\($0)".contains("--samples-per-prompt 3"), "\($0)") }
        o.ppo.groupBaseline = true   // also needs ≥ 2 replies per prompt
        o.ppo.samplesPerPrompt = 1
        XCTAssertThrowsError(try Self.trainer(dir, model, p, o)) { XCTAssertTrue("\($0)".contains("--group-baseline"), "\($0)") }
        o.ppo.samplesPerPrompt = 2   // 2 prompts × 2 replies per iteration
        let t = try Self.trainer(dir, model, p, o)
        try t.fit()
        let rec = try MetricsLog.read(t.run.metricsURL).filter { $0["kl"] != nil }
        XCTAssertEqual(rec.count, 2)
        XCTAssertNotNil(try HFModelFolder.read(t.run.url.appendingPathComponent("final")))
    }

    /// Dynamic sampling: groups whose replies all score alike are skipped while others remain; the batch keeps its
    /// size, the metrics say how many prompts were drawn, and a resumed run makes the same batches.
    func testOversampleKeepsGroupsWithDifferingScoresAndResumesExactly() throws {
        let dirA = try TrainerFixture.tempDir(), dirB = try TrainerFixture.tempDir()
        let model = try RLHFFixture.policyFolder(in: dirA)
        let p = try Self.prompts(in: dirA)
        var o = Self.options(iterations: 3)
        o.ppo.samplesPerPrompt = 2
        o.ppo.groupBaseline = true
        o.ppo.oversample = 3
        o.common.method = "lora"
        o.ppo.maxNewTokens = 4
        // Reward: 1 when the reply is longer than 8 characters, else 0 — ties are common among random replies.
        let cmd = "python3 -u -c 'import sys, json\nfor l in sys.stdin: print(1 if len(json.loads(l)[\"response\"]) > 8 else 0, flush=True)'"
        let a = try Self.trainer(dirA, model, p, o, command: cmd)
        try a.fit()
        let recA = try MetricsLog.read(a.run.metricsURL).filter { $0["kl"] != nil }
        XCTAssertEqual(recA.count, 3)
        for r in recA {
            let drawn = (r["prompts_drawn"] as? NSNumber)?.intValue ?? -1
            XCTAssertTrue((2...6).contains(drawn), "drawn \(drawn): between the batch's 2 prompts and 3 × 2")
        }
        var two = o; two.ppo.iterations = 2
        try Self.trainer(dirB, model, p, two, command: cmd).fit()
        let b = try Self.trainer(dirB, model, p, o, command: cmd, resume: true)
        try b.fit()
        let recB = try MetricsLog.read(b.run.metricsURL).filter { $0["kl"] != nil }
        assertSameRecords(recA, recB, keys: ["reward", "kl", "policy_loss", "prompts_drawn"])
        var bad = o; bad.ppo.samplesPerPrompt = 1; bad.ppo.groupBaseline = false
        XCTAssertThrowsError(try Self.trainer(dirB, model, p, bad, command: cmd)) { XCTAssertTrue("\($0)".contains("--oversample"), "\($0)") }
    }

    /// A LoRA policy with LoRA dropout: masks follow the optimizer step, so stopping and resuming gives the same run.
    func testLoRADropoutPPOResumesExactly() throws {
        let dirA = try TrainerFixture.tempDir(), dirB = try TrainerFixture.tempDir()
        let model = try RLHFFixture.policyFolder(in: dirA)
        let p = try Self.prompts(in: dirA)
        var o = Self.options(iterations: 3)
        o.common.method = "lora"
        o.peft.loraDropout = 0.3
        let a = try Self.trainer(dirA, model, p, o)
        try a.fit()
        var two = o; two.ppo.iterations = 2
        try Self.trainer(dirB, model, p, two).fit()
        let b = try Self.trainer(dirB, model, p, o, resume: true)
        try b.fit()
        let recA = try MetricsLog.read(a.run.metricsURL).filter { $0["kl"] != nil }
        let recB = try MetricsLog.read(b.run.metricsURL).filter { $0["kl"] != nil }
        XCTAssertEqual(recA.count, 3); XCTAssertEqual(recB.count, 3)
        assertSameRecords(recA, recB, keys: ["reward", "kl", "policy_loss", "value_loss", "entropy"])
    }

    /// The critic-free estimator: runs, learns nothing into a value head (none is trained or saved), resumes exactly,
    /// and refuses one reply per prompt.
    func testRLOOEstimatorRunsWithoutValueHeadAndResumesExactly() throws {
        let dirA = try TrainerFixture.tempDir(), dirB = try TrainerFixture.tempDir()
        let model = try RLHFFixture.policyFolder(in: dirA)
        let p = try Self.prompts(in: dirA)
        var o = Self.options(iterations: 3)
        o.ppo.estimator = .rloo
        o.ppo.samplesPerPrompt = 2
        o.common.method = "lora"
        let a = try Self.trainer(dirA, model, p, o)
        XCTAssertFalse(a.trainableParameters.keys.contains { $0.hasPrefix("v_head") })
        try a.fit()
        let recA = try MetricsLog.read(a.run.metricsURL).filter { $0["kl"] != nil }
        XCTAssertEqual(recA.count, 3)
        XCTAssertTrue(recA.contains { abs(($0["policy_loss"] as? NSNumber)?.doubleValue ?? 0) > 0 }, "some policy gradient")
        let final = a.run.url.appendingPathComponent("final")
        XCTAssertNotNil(try HFModelFolder.read(final))
        XCTAssertFalse(FileManager.default.fileExists(atPath: final.appendingPathComponent("value_head.safetensors").path))
        let recB = try resumedRecords(dirB, model, p, o)
        XCTAssertEqual(recB.count, 3)
        assertSameRecords(recA, recB, keys: ["reward", "kl", "policy_loss", "rlhf_reward", "entropy", "kl_coef"])
        var bad = o; bad.ppo.samplesPerPrompt = 1
        XCTAssertThrowsError(try Self.trainer(dirB, model, p, bad)) { XCTAssertTrue("\($0)".contains("--estimator rloo"), "\($0)") }
    }

    /// The tests above check arithmetic, resume and errors; this one checks that training optimises. Reward: the
    /// share of vowels in the reply, which a random tiny policy can learn to raise by preferring vowel-heavy pieces.
    /// Both estimators must raise the held-out mean reward of greedy replies to prompts never trained on.
    func testBothEstimatorsRaiseHeldOutRewardOfALearnableObjective() throws {
        let vowels = """
        python3 -u -c 'import sys, json
        for line in sys.stdin:
            r = json.loads(line)["response"]
            print(sum(c in "aeiou" for c in r) / max(1, len(r)), flush=True)'
        """
        for estimator in [AdvantageEstimator.gae, .rloo] {
            let dir = try TrainerFixture.tempDir()
            let model = try RLHFFixture.policyFolder(in: dir)
            let p = try Self.prompts(in: dir)
            var o = Self.options(iterations: 24)
            o.ppo.estimator = estimator
            o.ppo.samplesPerPrompt = 4
            o.ppo.groupBaseline = estimator == .gae
            o.common.batchSize = 8
            o.common.lr = 1e-2
            o.common.checkpointEvery = 0
            o.ppo.klTarget = nil
            o.hyper.klCoef = 0.01
            let t = try Self.trainer(dir, model, p, o, command: vowels)
            let (before, after) = try t.fit()
            let b = try XCTUnwrap(before), a = try XCTUnwrap(after)
            print("PPO learnable reward (\(estimator)): held-out vowel share \(b) → \(a)")
            XCTAssertGreaterThan(a, b + 0.15, "\(estimator)")
        }
    }

    /// `--ptx-data` as instruction JSONL: rendered with the chat template as SFT renders it, replies trained only; as
    /// plain text: every token trained, each window's loss a mean over its T − 1 predicted positions.
    func testPTXDataFromRecordsTrainsRepliesAndFromTextEveryToken() throws {
        let dir = try TrainerFixture.tempDir()
        let encoder = try ChatEncoder(tokenizer: SentencePieceTokenizer(contentsOf: TrainerFixture.tokenizerURL),
                                      template: ChatTemplate.load("chatml"))
        let jsonl = dir.appendingPathComponent("sft.jsonl")
        try ("{\"instruction\": \"Name a colour.\", \"input\": \"\", \"output\": \"red\"}\n" +
             "{\"instruction\": \"What colour is the cat?\", \"input\": \"\", \"output\": \"The cat is blue.\"}\n")
            .write(to: jsonl, atomically: true, encoding: .utf8)
        let d = try PTXData.load(jsonl.path, encoder: encoder, tokenizer: encoder.tokenizer)
        var want = try encoder.encodeConversation([Message(.user, "Name a colour."), Message(.assistant, "red")])
        want.append(try encoder.encodeConversation([Message(.user, "What colour is the cat?"),
                                                    Message(.assistant, "The cat is blue.")]))
        XCTAssertEqual(d.ids, want.ids.map(Int.init))
        XCTAssertEqual(d.mask, want.mask)
        XCTAssertTrue(d.mask.contains(0) && d.mask.contains(1))
        let (ids, grad) = d.window(start: 0, length: d.ids.count, coef: 0.5)
        XCTAssertEqual(ids, d.ids)
        for t in 0..<ids.count where grad[t] != 0 { XCTAssertEqual(d.mask[t], 1, "gradient on an untrained token at \(t)") }
        XCTAssertEqual(grad.reduce(0, +), -0.5, accuracy: 1e-5)

        let text = dir.appendingPathComponent("text.txt")
        try String(repeating: "The dog is red. The bird is green.\n", count: 20).write(to: text, atomically: true, encoding: .utf8)
        let t = try PTXData.load(text.path, encoder: encoder, tokenizer: encoder.tokenizer)
        XCTAssertTrue(t.mask.allSatisfy { $0 == 1 })
        let (_, g) = t.window(start: 3, length: 16, coef: 2)
        XCTAssertEqual(g[0], 0)
        for x in g.dropFirst() { XCTAssertEqual(x, -2 / 15, accuracy: 1e-7) }

        let prefs = try RLHFFixture.preferences(4, in: dir)
        XCTAssertThrowsError(try PTXData.load(prefs.path, encoder: encoder, tokenizer: encoder.tokenizer)) {
            XCTAssertTrue("\($0)".contains("prefs.jsonl:1"), "\($0)")
        }
    }

    /// A PPO-ptx run on instruction records changes training and still resumes exactly.
    func testPTXMixingOnInstructionRecordsResumesExactly() throws {
        let dirA = try TrainerFixture.tempDir(), dirB = try TrainerFixture.tempDir()
        let model = try RLHFFixture.policyFolder(in: dirA)
        let p = try Self.prompts(in: dirA)
        let sft = dirA.appendingPathComponent("sft.jsonl")
        try (0..<12).map { i in "{\"instruction\": \"What colour is the \(TrainerFixture.things[i % 8])?\", \"input\": \"\", \"output\": \"It is \(TrainerFixture.colours[i % 8]).\"}" }
            .joined(separator: "\n").write(to: sft, atomically: true, encoding: .utf8)
        var o = Self.options(iterations: 3)
        let plain = try Self.trainer(TrainerFixture.tempDir("plain"), model, p, o)
        try plain.fit()
        o.ppo.ptxCoef = 1
        o.ppo.ptxData = sft.path
        let a = try Self.trainer(dirA, model, p, o)
        try a.fit()
        let recA = try MetricsLog.read(a.run.metricsURL).filter { $0["kl"] != nil }
        let recPlain = try MetricsLog.read(plain.run.metricsURL).filter { $0["kl"] != nil }
        XCTAssertNotEqual((recA.last?["kl"] as? NSNumber)?.doubleValue, (recPlain.last?["kl"] as? NSNumber)?.doubleValue,
                          "the ptx gradient changes the policy")
        let recB = try resumedRecords(dirB, model, p, o)
        XCTAssertEqual(recB.count, 3)
        assertSameRecords(recA, recB, keys: ["reward", "kl", "policy_loss", "value_loss", "entropy"])
    }

    func testLeaveOneOutBaselineSubtractsTheOtherRepliesMean() {
        let s = PPOTrainer.leaveOneOutBaseline([1, 0, 0, 0.5, 0.5, 0.5], groupSize: 3)
        let want: [Float] = [1, -0.5, -0.5, 0, 0, 0]
        for (a, b) in zip(s, want) { XCTAssertEqual(a, b, accuracy: 1e-6) }
    }

    func testFailingOrNonNumericRewardCommandStopsWithClearError() throws {
        let dir = try TrainerFixture.tempDir()
        let model = try RLHFFixture.policyFolder(in: dir)
        let p = try Self.prompts(in: dir)
        let cases: [(String, String)] = [
            ("python3 -c 'import sys; sys.stdin.readline(); sys.stderr.write(\"boom\\n\"); sys.exit(3)'", "exited"),
            ("python3 -u -c 'import sys\nfor l in sys.stdin: print(\"not-a-number\", flush=True)'", "not a number"),
            ("sleep 30", "timeout"),
        ]
        for (command, needle) in cases {
            var o = Self.options(iterations: 2)
            o.common.checkpointEvery = 1
            o.ppo.policy = model.path; o.ppo.prompts = p.path; o.ppo.out = dir.appendingPathComponent("run-\(needle.prefix(4))").path
            let t = try PPOTrainer(config: o, rewards: try RewardSource(command: command, timeout: 1.5))
            XCTAssertThrowsError(try t.fit()) { e in
                let text = "\(e)"
                XCTAssertTrue(text.contains("reward command") && text.contains(needle), text)
            }
            XCTAssertNil(t.run.latestCheckpoint())   // failed in the held-out evaluation before any step
            t.rewards.close()
        }
    }

    /// KL above --max-kl stops the run with a clear message; the checkpoint of the last complete iteration stays.
    func testExplodingKLStopsAndKeepsLastCheckpoint() throws {
        let dir = try TrainerFixture.tempDir()
        let model = try RLHFFixture.policyFolder(in: dir)
        var o = Self.options(iterations: 4)
        o.ppo.maxKl = 1e-6          // iteration 1 has KL 0 (policy == reference); later ones exceed it
        o.common.lr = 5e-3
        let t = try Self.trainer(dir, model, try Self.prompts(in: dir), o)
        XCTAssertThrowsError(try t.fit()) { e in XCTAssertTrue("\(e)".contains("KL to the reference exploded"), "\(e)") }
        let last = try XCTUnwrap(t.run.latestCheckpoint())
        XCTAssertEqual(last.step % (o.ppo.ppoEpochs * o.ppo.minibatches), 0)
        XCTAssertNoThrow(try Checkpoint.state(at: last.url))
        t.rewards.close()
    }

    func testRewardCommandScoresInOrder() throws {
        let c = try RewardProgram(command: Self.rewardScript, timeout: 10)
        defer { c.close() }
        let s = try c.score([["prompt": "x", "response": "red red"], ["prompt": "y", "response": ""]])
        XCTAssertEqual(s[0], 2 - 0.07, accuracy: 1e-5)
        XCTAssertEqual(s[1], 0, accuracy: 1e-6)
        XCTAssertEqual(try c.score([["prompt": "z", "response": "red"]])[0], 0.97, accuracy: 1e-5)
    }
}
