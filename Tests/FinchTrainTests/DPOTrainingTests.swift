import XCTest
import FinchKernels
import FinchModel
import FinchData
import FinchTrain

final class DPOTrainingTests: XCTestCase {
    func testTinyDPORunLowersLoss() throws {
        let dir = try TrainerFixture.tempDir()
        let model = try RLHFFixture.policyFolder(in: dir)
        let prefs = try RLHFFixture.preferences(32, in: dir)
        var o = DPOConfig()
        o.common.lr = 2e-3
        o.common.steps = 12
        o.common.batchSize = 8
        o.common.evalFraction = 0.25
        o.common.schedule = "constant"
        o.common.maxLength = 48
        o.common.overlong = .truncate   // these pairs and prompts are longer: exercise the cut
        o.common.checkpointEvery = 6
        o.dpo.beta = 0.1
        o.dpo.model = model.path; o.dpo.data = [prefs.path]; o.dpo.out = dir.appendingPathComponent("run").path
        let t = try DPOTrainer(config: o)
        let (before, after) = try t.fit()
        let b = try XCTUnwrap(before), a = try XCTUnwrap(after)
        print("dpo toy: eval loss \(b.loss) → \(a.loss), accuracy \(b.rewardAccuracy) → \(a.rewardAccuracy)")
        XCTAssertEqual(b.loss, log(2), accuracy: 1e-3)   // policy == reference at the start
        XCTAssertLessThan(a.loss, b.loss - 0.05)
        XCTAssertGreaterThan(a.rewardAccuracy, 0.5)
        let records = try MetricsLog.read(t.run.metricsURL)
        XCTAssertEqual(records.filter { $0["loss"] != nil }.count, 12)
        XCTAssertNotNil(t.run.latestCheckpoint())
        XCTAssertNotNil(try HFModelFolder.read(t.run.url.appendingPathComponent("final")))
    }

    /// robust, APO-zero and SimPO train end to end; SimPO computes no reference log-probs (it has no reference) and
    /// its implicit rewards are length-normalised.
    func testNewLossTypesTrain() throws {
        let dir = try TrainerFixture.tempDir()
        let model = try RLHFFixture.policyFolder(in: dir)
        let prefs = try RLHFFixture.preferences(24, in: dir)
        for variant in [DPOLoss.Variant.robust, .apoZero, .simpo] {
            var o = DPOConfig()
            o.dpo.model = model.path; o.dpo.data = [prefs.path]; o.dpo.out = dir.appendingPathComponent("run-\(variant.rawValue)").path
            o.dpo.lossType = variant
            o.dpo.labelSmoothing = variant == .robust ? 0.1 : 0
            o.common.lr = 2e-3; o.common.steps = 8; o.common.batchSize = 4; o.common.evalFraction = 0.25
            o.common.maxLength = 48; o.common.overlong = .truncate; o.common.schedule = "constant"
            let recorder = ProgressRecorder()
            let t = try DPOTrainer(config: o, progress: recorder)
            let (before, after) = try t.fit()
            let b = try XCTUnwrap(before), a = try XCTUnwrap(after)
            XCTAssertTrue(a.loss.isFinite && b.loss.isFinite, "\(variant)")
            XCTAssertLessThan(a.loss, b.loss, "\(variant): held-out loss should fall")
            let referenceNote = recorder.events.contains { if case .message(let m) = $0 { return m.hasPrefix("reference log-probs") } else { return false } }
            XCTAssertEqual(referenceNote, variant != .simpo, "\(variant)")
        }
        var bad = DPOConfig()
        bad.dpo.model = "m"; bad.dpo.data = ["d"]; bad.dpo.out = "o"; bad.dpo.lossType = .robust; bad.dpo.labelSmoothing = 0.5
        XCTAssertThrowsError(try bad.validate()) { XCTAssertTrue("\($0)".contains("below 0.5"), "\($0)") }
    }

    /// The sequence log-prob gradient (policy backward from d loss / d logprobs) matches finite differences.
    func testPolicyLogProbGradientMatchesFiniteDifferences() throws { try checkPolicyGradient(temperature: 1) }

    /// The same at a sampling temperature (log-probs of logits / τ, as TRL's PPO), and the log-probs themselves
    /// are those of the scaled softmax.
    func testPolicyLogProbsAtATemperature() throws {
        try checkPolicyGradient(temperature: 0.7)
        let d = TrainerFixture.decoder(.llama, seed: 3)
        let policy = PolicyModel(model: CausalLMModel(decoder: d))
        let ids = [1, 5, 9, 14]
        policy.temperature = 0.7
        let lp = policy.forward(ids: ids, batch: 1, length: 4, mask: nil).logprobs
        let logits = d.forward(ids: ids, batch: 1, length: 4).array, V = d.config.vocabSize
        for t in 1..<4 {
            let row = logits[((t - 1) * V)..<(t * V)].map { Double($0) / 0.7 }
            let m = row.max()!, lse = m + log(row.reduce(0) { $0 + exp($1 - m) })
            XCTAssertEqual(Double(lp[t]), row[ids[t]] - lse, accuracy: 1e-4, "t \(t)")
        }
    }

    private func checkPolicyGradient(temperature: Float) throws {
        let d = TrainerFixture.decoder(.llama, seed: 3)
        let policy = PolicyModel(model: CausalLMModel(decoder: d))
        policy.temperature = temperature
        d.allocateGradients()
        let ids = [1, 5, 9, 14, 3, 7, 2, 8], T = 4
        let weights: [Float] = [0, 0.5, -1, 2, 0, 1, 1, 0]
        func objective() -> Double {
            let lp = policy.forward(ids: ids, batch: 2, length: T, mask: nil).logprobs
            return zip(lp, weights).reduce(0.0) { $0 + Double($1.0 * $1.1) }
        }
        d.zeroGradients()
        _ = policy.forward(ids: ids, batch: 2, length: T, mask: nil)
        policy.backward(dLogprobs: weights)
        for name in ["model.layers.1.mlp.down_proj.weight", "lm_head.weight", "model.norm.weight"] {
            let p = d.parameters[name]!, g = d.gradients[name]!
            for i in [0, 7, p.count - 1] {
                let old = p[i]
                p[i] = old + 1e-2; let up = objective()
                p[i] = old - 1e-2; let down = objective()
                p[i] = old
                XCTAssertEqual(Double(g[i]), (up - down) / 2e-2, accuracy: 2e-3 + 0.02 * abs(Double(g[i])), "\(name)[\(i)]")
            }
        }
    }
}
