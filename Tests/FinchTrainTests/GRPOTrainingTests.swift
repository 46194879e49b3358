import Foundation
import XCTest
import FinchModel
import FinchTrain

/// `finch grpo` on the tiny fixture policy: a learnable reward rises with every loss type, several weighted reward
/// functions and the over-long penalty add up as documented, and a stopped run resumes exactly.
final class GRPOTrainingTests: XCTestCase {
    static let vowels = """
    python3 -u -c 'import sys, json
    for line in sys.stdin:
        r = json.loads(line)["response"]
        print(sum(c in "aeiou" for c in r) / max(1, len(r)), flush=True)'
    """

    static func config(_ dir: URL, iterations: Int) throws -> GRPOConfig {
        var o = GRPOConfig()
        o.grpo.policy = try RLHFFixture.policyFolder(in: dir).path
        o.grpo.prompts = try PPOTrainingTests.prompts(in: dir).path
        o.grpo.out = dir.appendingPathComponent("run").path
        o.grpo.iterations = iterations; o.grpo.groupSize = 4; o.grpo.maxNewTokens = 6; o.grpo.evalPrompts = 4
        o.common.batchSize = 2; o.common.lr = 1e-2; o.common.schedule = "constant"; o.common.maxLength = 48
        o.common.overlong = .truncate; o.common.evalFraction = 0.2
        return o
    }

    func testLearnableRewardRisesWithEveryLossType() throws {
        for lossType in GRPOMath.LossType.allCases {
            let dir = try TrainerFixture.tempDir()
            var o = try Self.config(dir, iterations: 24)
            o.grpo.lossType = lossType
            o.grpo.rewardCommand = [Self.vowels]
            o.grpo.epsilonHigh = 0.28
            o.grpo.innerIterations = 2; o.grpo.minibatches = 2
            let t = try GRPOTrainer(config: o)
            let (before, after) = try t.fit()
            let b = try XCTUnwrap(before), a = try XCTUnwrap(after)
            print("GRPO learnable reward (\(lossType.rawValue)): held-out vowel share \(b) → \(a)")
            XCTAssertGreaterThan(a, b + 0.1, "\(lossType)")
            let records = try MetricsLog.read(t.run.metricsURL).filter { $0["iteration"] != nil && $0["reward"] != nil }
            XCTAssertEqual(records.count, 24)
            for key in ["reward_std", "frac_reward_zero_std", "clip_ratio", "clip_ratio_low", "clip_ratio_high", "entropy", "completion_length", "tokens_per_s"] {
                XCTAssertNotNil(records.last?[key], key)
            }
            XCTAssertNotNil(try HFModelFolder.read(t.run.url.appendingPathComponent("final")))
        }
    }

    /// Two reward programs weighted 1 and −0.5, plus the soft over-long penalty (DAPO): the trainer's total is
    /// their weighted sum with the penalty's ramp.
    func testWeightedRewardsAndOverlongPenalty() throws {
        let dir = try TrainerFixture.tempDir()
        var o = try Self.config(dir, iterations: 1)
        o.grpo.rewardCommand = ["python3 -u -c 'import sys\nfor l in sys.stdin: print(2.0, flush=True)'",
                                "python3 -u -c 'import sys\nfor l in sys.stdin: print(1.0, flush=True)'"]
        o.grpo.rewardWeights = [1, -0.5]
        o.grpo.overlongPenalty = 2
        let t = try GRPOTrainer(config: o)
        let p = Array(t.train.prefix(4))
        let (total, per) = try t.score(p, [[5], [5, 5, 5, 5, 5], [5, 5, 5, 5, 5, 5], [5, 5, 5, 5]])
        XCTAssertEqual(per.count, 2)
        // 2 − 0.5 = 1.5; max 6 new tokens with a cache of 2: 4 tokens no penalty, 5 → −0.5, 6 → −1.
        XCTAssertEqual(total, [1.5, 1.0, 0.5, 1.5])
        var bad = o; bad.grpo.rewardWeights = [1]
        XCTAssertThrowsError(try bad.validate()) { XCTAssertTrue("\($0)".contains("--reward-weights"), "\($0)") }
        var one = o; one.grpo.groupSize = 1
        XCTAssertThrowsError(try one.validate()) { XCTAssertTrue("\($0)".contains("--group-size"), "\($0)") }
    }
}
