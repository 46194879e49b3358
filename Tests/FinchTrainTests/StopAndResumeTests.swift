import Foundation
import XCTest
import FinchModel
import FinchTrain

/// Every trainer stops the same way when its progress sink asks (Ctrl-C in the CLI): it finishes the step, writes a
/// checkpoint, skips the final stage and throws `TrainingInterrupted`; a new trainer given `resume` continues exactly,
/// so its losses and final weights equal those of a run that was never stopped.
final class StopAndResumeTests: XCTestCase {
    /// Per-step losses of a run folder's metrics (`key` records, by step).
    func losses(_ run: URL, key: String = "loss") throws -> [Double] {
        try MetricsLog.read(run.appendingPathComponent("metrics.jsonl")).compactMap { ($0[key] as? NSNumber)?.doubleValue }
    }

    /// The tensors of `final/model.safetensors` (or the adapter) of a run.
    func finalWeights(_ run: URL) throws -> [String: [Float]] {
        let final = run.appendingPathComponent("final")
        let name = FileManager.default.fileExists(atPath: final.appendingPathComponent("model.safetensors").path)
            ? "model.safetensors" : "adapter_model.safetensors"
        let file = try SafeTensors.File(url: final.appendingPathComponent(name))
        var out: [String: [Float]] = [:]
        for n in file.entries.keys { out[n] = try file.tensor(n).array }
        return out
    }

    func assertSame(_ a: URL, _ b: URL, key: String = "loss", file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(try losses(a, key: key), try losses(b, key: key), "losses differ after stop + resume", file: file, line: line)
        let wa = try finalWeights(a), wb = try finalWeights(b)
        XCTAssertEqual(Set(wa.keys), Set(wb.keys), file: file, line: line)
        for (n, v) in wa { XCTAssertEqual(v, wb[n], "final \(n) differs after stop + resume", file: file, line: line) }
    }

    /// Runs `make(resume: false)` with a sink that stops after `stopAfter` steps (expecting `TrainingInterrupted`, a
    /// checkpoint and no final/), then `make(resume: true)` to the end.
    func stopThenResume(_ run: URL, stopAfter: Int, _ make: (_ resume: Bool, _ sink: any ProgressSink) throws -> Void) throws {
        let recorder = ProgressRecorder(stopAfterStep: stopAfter)
        XCTAssertThrowsError(try make(false, recorder)) { e in
            XCTAssertTrue(e is TrainingInterrupted, "\(e)")
        }
        XCTAssertEqual(recorder.steps.last?.step, stopAfter, "the run stops after the step that asked")
        XCTAssertTrue(recorder.events.contains { if case .checkpoint = $0 { return true } else { return false } })
        XCTAssertTrue(recorder.events.contains { if case .done(let d) = $0 { return d.reason == "interrupted" } else { return false } })
        XCTAssertFalse(FileManager.default.fileExists(atPath: run.appendingPathComponent("final").path))
        XCTAssertNotNil(try RunFolder(url: run).latestCheckpoint())
        try make(true, NoProgress())
    }

    func testRewardStopsAndResumesExactly() throws {
        let dir = try TrainerFixture.tempDir()
        var o = RewardConfig()
        o.reward.model = try RLHFFixture.policyFolder(in: dir).path
        o.reward.data = [try RLHFFixture.preferences(32, in: dir).path]
        o.common.method = "lora"; o.peft.loraDropout = 0.2   // dropout masks must follow the step too
        o.common.lr = 3e-3; o.common.steps = 6; o.common.batchSize = 4; o.common.maxLength = 48; o.common.overlong = .truncate
        func run(_ name: String, resume: Bool, sink: any ProgressSink) throws {
            var c = o; c.reward.out = dir.appendingPathComponent(name).path; c.common.resume = resume
            _ = try RewardTrainer(config: c, progress: sink).fit()
        }
        try run("a", resume: false, sink: NoProgress())
        try stopThenResume(dir.appendingPathComponent("b"), stopAfter: 2) { try run("b", resume: $0, sink: $1) }
        try assertSame(dir.appendingPathComponent("a"), dir.appendingPathComponent("b"))
    }

    func testDPOStopsAndResumesExactly() throws {
        let dir = try TrainerFixture.tempDir()
        var o = DPOConfig()
        o.dpo.model = try RLHFFixture.policyFolder(in: dir).path
        o.dpo.data = [try RLHFFixture.preferences(32, in: dir).path]
        o.common.lr = 2e-3; o.common.steps = 6; o.common.batchSize = 4; o.common.maxLength = 48; o.common.overlong = .truncate
        func run(_ name: String, resume: Bool, sink: any ProgressSink) throws {
            var c = o; c.dpo.out = dir.appendingPathComponent(name).path; c.common.resume = resume
            _ = try DPOTrainer(config: c, progress: sink).fit()
        }
        try run("a", resume: false, sink: NoProgress())
        try stopThenResume(dir.appendingPathComponent("b"), stopAfter: 3) { try run("b", resume: $0, sink: $1) }
        try assertSame(dir.appendingPathComponent("a"), dir.appendingPathComponent("b"))
    }

    func testKTOStopsAndResumesExactly() throws {
        let dir = try TrainerFixture.tempDir()
        var o = KTOConfig()
        o.kto.model = try RLHFFixture.policyFolder(in: dir).path
        o.kto.data = [try RLHFFixture.preferences(24, in: dir).path]
        o.common.method = "lora"; o.peft.loraDropout = 0.2
        o.common.lr = 2e-3; o.common.steps = 6; o.common.batchSize = 4; o.common.maxLength = 48; o.common.overlong = .truncate
        func run(_ name: String, resume: Bool, sink: any ProgressSink) throws {
            var c = o; c.kto.out = dir.appendingPathComponent(name).path; c.common.resume = resume
            _ = try KTOTrainer(config: c, progress: sink).fit()
        }
        try run("a", resume: false, sink: NoProgress())
        try stopThenResume(dir.appendingPathComponent("b"), stopAfter: 3) { try run("b", resume: $0, sink: $1) }
        try assertSame(dir.appendingPathComponent("a"), dir.appendingPathComponent("b"))
    }

    func testPPOStopsAndResumesExactly() throws {
        let dir = try TrainerFixture.tempDir()
        let model = try RLHFFixture.policyFolder(in: dir)
        let prompts = try PPOTrainingTests.prompts(in: dir)
        var o = PPOTrainingTests.options(iterations: 3)
        o.common.checkpointEvery = 0   // only the stop writes one
        func run(_ name: String, resume: Bool, sink: any ProgressSink) throws {
            var c = o
            c.ppo.policy = model.path; c.ppo.prompts = prompts.path; c.ppo.out = dir.appendingPathComponent(name).path
            c.ppo.rewardCommand = PPOTrainingTests.rewardScript; c.common.resume = resume
            _ = try PPOTrainer(config: c, progress: sink).fit()
        }
        try run("a", resume: false, sink: NoProgress())
        try stopThenResume(dir.appendingPathComponent("b"), stopAfter: 1) { try run("b", resume: $0, sink: $1) }
        try assertSame(dir.appendingPathComponent("a"), dir.appendingPathComponent("b"), key: "kl")
    }

    func testGRPOStopsAndResumesExactly() throws {
        let dir = try TrainerFixture.tempDir()
        var o = try GRPOTrainingTests.config(dir, iterations: 3)
        o.grpo.rewardCommand = [PPOTrainingTests.rewardScript]
        o.grpo.minibatches = 2; o.grpo.beta = 0.05; o.common.method = "lora"
        func run(_ name: String, resume: Bool, sink: any ProgressSink) throws {
            var c = o; c.grpo.out = dir.appendingPathComponent(name).path; c.common.resume = resume
            _ = try GRPOTrainer(config: c, progress: sink).fit()
        }
        try run("a", resume: false, sink: NoProgress())
        try stopThenResume(dir.appendingPathComponent("b"), stopAfter: 1) { try run("b", resume: $0, sink: $1) }
        try assertSame(dir.appendingPathComponent("a"), dir.appendingPathComponent("b"), key: "reward")
    }

    func testClassifyStopsAndResumesExactly() throws {
        let dir = try TrainerFixture.tempDir()
        let data = try ClassifyTests.data(in: dir, name: "train.jsonl", n: 40)
        var o = ClassifyConfig()
        o.classify.model = try EvalTests.modelFolder().path
        o.classify.data = data.path
        o.classify.labels = Array(TrainerFixture.colours.prefix(4))
        o.classify.maxSteps = 7; o.classify.batchSize = 8; o.classify.warmup = 0   // 5 steps per epoch: the stop is mid-epoch
        func run(_ name: String, resume: Bool, sink: any ProgressSink) throws {
            var c = o; c.classify.out = dir.appendingPathComponent(name).path; c.classify.resume = resume
            _ = try ClassifyJob.run(c, progress: sink)
        }
        try run("a", resume: false, sink: NoProgress())
        try stopThenResume(dir.appendingPathComponent("b"), stopAfter: 3) { try run("b", resume: $0, sink: $1) }
        try assertSame(dir.appendingPathComponent("a"), dir.appendingPathComponent("b"))
    }

    /// Every configuration decodes from its own recorded defaults to itself, and its keys are flat and unique.
    func testEveryConfigurationRoundTripsThroughItsRecipe() throws {
        func check<C: TrainingConfig & Equatable>(_ type: C.Type) throws {
            let (config, recipe) = try C.resolve(flags: Self.requiredInputs(C.self))
            let expected = try recipe.decode(C.self)
            XCTAssertEqual(config, expected)
            let keys = try ConfigKeys.describe(C())
            XCTAssertTrue(keys.all.isSuperset(of: keys.values.keys), "\(C.self)")
            XCTAssertThrowsError(try C.resolve(flags: Self.requiredInputs(C.self).merging(["lr-rate": 1]) { a, _ in a })) { e in
                XCTAssertTrue("\(e)".contains("unknown option '--lr-rate'"), "\(e)")
            }
        }
        try check(SFTConfig.self); try check(PretrainConfig.self); try check(RewardConfig.self)
        try check(DPOConfig.self); try check(KTOConfig.self); try check(PPOConfig.self); try check(GRPOConfig.self)
        try check(ClassifyConfig.self)
        XCTAssertEqual(try DPOConfig.resolve(flags: Self.requiredInputs(DPOConfig.self)).config.common.lr, 5e-6, "dpo's own default rate")
        XCTAssertEqual(try PPOConfig.resolve(flags: Self.requiredInputs(PPOConfig.self)).config.peft.loraDropout, 0)
        XCTAssertThrowsError(try SFTConfig.resolve(flags: ["data": ["x"], "out": "o"])) { e in
            XCTAssertTrue(e is MissingOption && "\(e)".contains("--model DIR is required"), "\(e)")
        }
        XCTAssertThrowsError(try SFTConfig.resolve(flags: Self.requiredInputs(SFTConfig.self).merging(["lr": -1]) { a, _ in a })) { e in
            XCTAssertTrue("\(e)".contains("--lr must be positive"), "\(e)")
        }
        let sft = try SFTConfig.resolve(flags: Self.requiredInputs(SFTConfig.self).merging(["lora-targets": "q_proj, v_proj"]) { a, _ in a }).config
        XCTAssertEqual(sft.peft.loraTargets, ["q_proj", "v_proj"], "a comma list given as a flag")
    }

    static func requiredInputs<C: TrainingConfig>(_ type: C.Type) -> [String: Any] {
        switch C.self {
        case is SFTConfig.Type: return ["model": "m", "data": ["d"], "out": "o"]
        case is PretrainConfig.Type: return ["data": ["d"], "out": "o"]
        case is RewardConfig.Type, is DPOConfig.Type, is KTOConfig.Type: return ["model": "m", "data": ["d"], "out": "o"]
        case is PPOConfig.Type: return ["policy": "m", "prompts": "p", "out": "o", "reward-command": "true"]
        case is GRPOConfig.Type: return ["policy": "m", "prompts": "p", "out": "o", "reward-command": ["true"]]
        default: return ["model": "m", "data": "d", "out": "o", "labels": "a,b"]
        }
    }
}
