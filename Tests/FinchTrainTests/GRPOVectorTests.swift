import Foundation
import XCTest
import FinchTrain

/// GRPO's arithmetic against TRL 1.16 on fixed inputs: group-relative advantages (group, batch and no scaling) and the
/// grpo / dapo / dr_grpo losses with asymmetric clipping and the k3 KL, their gradients and clip ratios, to 1e-6.
/// Vectors: `python3 tools/vectors/grpo_vectors.py` (run by `tools/test_assets.sh`).
final class GRPOVectorTests: XCTestCase {
    struct Vectors: Decodable {
        struct Advantage: Decodable {
            let rewards: [Double], group_size: Int, scaling: String, advantages: [Double], zero_std: [Bool]
        }
        struct Loss: Decodable {
            let loss_type: String, batch: Int, length: Int, epsilon_low: Double, epsilon_high: Double, beta: Double
            let max_completion_length: Int, tokens_in_batch: Double
            let logprobs: [Float], old_logprobs: [Float], ref_logprobs: [Float], advantages: [Double], mask: [Float]
            let loss: Double, grad: [Double], clip_low: Double, clip_high: Double, clip_region: Double, kl: Double?
        }
        let trl_version: String
        let advantages: [Advantage]
        let losses: [Loss]
    }

    func vectors() throws -> Vectors {
        let env = ProcessInfo.processInfo.environment["FINCH_TEST_ASSETS"]
        let base = (env?.isEmpty == false) ? URL(fileURLWithPath: env!)
            : FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/finch/test-assets")
        let file = base.appendingPathComponent("grpo_vectors/cases.json")
        guard let data = try? Data(contentsOf: file) else {
            XCTFail("missing \(file.path): run python3 tools/vectors/grpo_vectors.py (tools/test_assets.sh)")
            throw XCTSkip("no vectors")
        }
        return try JSONDecoder().decode(Vectors.self, from: data)
    }

    func testAdvantagesMatchTRL() throws {
        for (i, c) in try vectors().advantages.enumerated() {
            let scaling = try XCTUnwrap(GRPOMath.RewardScaling(rawValue: c.scaling))
            let r = GRPOMath.advantages(rewards: c.rewards, groupSize: c.group_size, scaling: scaling)
            for (a, b) in zip(r.advantages, c.advantages) { XCTAssertEqual(a, b, accuracy: 1e-6 * max(1, abs(b)), "advantage case \(i) (\(c.scaling))") }
            XCTAssertEqual(r.zeroStd, c.zero_std, "advantage case \(i) (\(c.scaling))")
        }
    }

    func testLossesMatchTRL() throws {
        let v = try vectors()
        var seen = Set<String>()
        for (i, c) in v.losses.enumerated() {
            var s = GRPOMath.Settings()
            s.lossType = try XCTUnwrap(GRPOMath.LossType(rawValue: c.loss_type))
            s.epsilonLow = c.epsilon_low; s.epsilonHigh = c.epsilon_high; s.beta = c.beta; s.maxCompletionLength = c.max_completion_length
            seen.insert(c.loss_type)
            let r = GRPOMath.loss(logprobs: c.logprobs, oldLogprobs: c.old_logprobs, refLogprobs: c.ref_logprobs, advantages: c.advantages,
                                  mask: c.mask, batch: c.batch, length: c.length, settings: s, tokensInBatch: c.tokens_in_batch)
            let name = "loss case \(i) (\(c.loss_type), β \(c.beta), ε \(c.epsilon_low)/\(c.epsilon_high))"
            XCTAssertEqual(r.loss, c.loss, accuracy: 1e-6 * max(1, abs(c.loss)), name)
            for (k, (a, b)) in zip(r.gradient, c.grad).enumerated() { XCTAssertEqual(Double(a), b, accuracy: 1e-6 * max(1, abs(b)), "\(name) grad[\(k)]") }
            XCTAssertEqual(r.clipLow, c.clip_low, accuracy: 1e-12, name)
            XCTAssertEqual(r.clipHigh, c.clip_high, accuracy: 1e-12, name)
            XCTAssertEqual(r.clipRegion, c.clip_region, accuracy: 1e-12, name)
            if let kl = c.kl { XCTAssertEqual(r.meanKL, kl, accuracy: 1e-6 * max(1, abs(kl)), name + " kl") }
        }
        XCTAssertEqual(seen, ["grpo", "dapo", "dr_grpo"], "TRL \(v.trl_version)")
    }
}
