import Foundation
import XCTest
import FinchModel
import FinchTrain

/// `finch score --report`: the report's arithmetic on known scores, scores that do not depend on batch-mates or the
/// padding side, and the report of a trained reward model written to disk.
final class RewardReportTests: XCTestCase {
    func testArithmetic() throws {
        // 7 of 10 right: Wilson 95% interval [0.3968, 0.8922] (statsmodels proportion_confint method="wilson").
        let w = RewardReport.wilson(successes: 7, n: 10)
        XCTAssertEqual(w.lower, 0.3968, accuracy: 1e-4); XCTAssertEqual(w.upper, 0.8922, accuracy: 1e-4)
        // Confidently right every time: accuracy 1, calibration error near 0.
        let sure = try RewardReport(chosen: [20, 21, 25, 30], rejected: [0, 1, 2, 3], chosenLengths: [3, 5, 9, 9], rejectedLengths: [5, 5, 2, 1])
        XCTAssertEqual(sure.accuracy, 1)
        XCTAssertLessThan(sure.ece, 1e-6)
        XCTAssertEqual(sure.lengthBias.chosenShorter.pairs, 1); XCTAssertEqual(sure.lengthBias.chosenLonger.pairs, 2)
        XCTAssertEqual(sure.lengthBias.sameLength.pairs, 1)
        // Confidently wrong half the time: large ECE; ties count as wrong.
        let bad = try RewardReport(chosen: [10, 0, 10, 0, 1], rejected: [0, 10, 0, 10, 1], chosenLengths: [1, 1, 1, 1, 1], rejectedLengths: [1, 1, 1, 1, 1])
        XCTAssertEqual(bad.accuracy, 0.4)
        XCTAssertGreaterThan(bad.ece, 0.3)
        XCTAssertNil(bad.lengthBias.chosenShorter.accuracy)
        XCTAssertEqual(bad.lengthBias.sameLength.accuracy, 0.4)
        // Quantiles as numpy's default (linear): [1, 2, 3, 4, 5] → p25 2, median 3, p95 4.8.
        let d = try RewardReport(chosen: [1, 2, 3, 4, 5], rejected: [0, 0, 0, 0, 0], chosenLengths: [1, 2, 3, 4, 5], rejectedLengths: [1, 1, 1, 1, 1]).chosenScores
        XCTAssertEqual(d.p25, 2); XCTAssertEqual(d.median, 3); XCTAssertEqual(d.p95, 4.8, accuracy: 1e-12); XCTAssertEqual(d.std, 2.0.squareRoot(), accuracy: 1e-12)
        XCTAssertThrowsError(try RewardReport(chosen: [], rejected: [], chosenLengths: [], rejectedLengths: []))
    }

    /// A sequence's score is the same alone, among longer and shorter batch-mates, and padded on either side (1e-5).
    func testScoresDoNotDependOnBatchOrPaddingSide() throws {
        let dir = try TrainerFixture.tempDir()
        let folder = try HFModelFolder.read(try RLHFFixture.policyFolder(in: dir))
        let pad = folder.config.padTokenId ?? 0
        let decoder = try RewardModel.sequenceClassifier(config: folder.config, parameters: folder.parameters, padID: pad, seed: 7)
        let rm = try RewardModel(decoder: decoder, padID: pad)
        var rng = SeededRNG(seed: 5)
        let seqs: [[Int]] = (0..<9).map { i in (0..<(3 + 7 * i % 40)).map { _ in 1 + rng.int(below: folder.config.vocabSize - 1) }.map { $0 == pad ? $0 + 1 : $0 } }
        let alone = seqs.map { rm.rewards(sequences: [$0])[0] }
        for (name, scores) in [("right-padded batch", rm.rewards(sequences: seqs)),
                               ("left-padded batch", rm.rewards(sequences: seqs, leftPadded: true)),
                               ("reversed batch", Array(rm.rewards(sequences: seqs.reversed()).reversed())),
                               ("pairs", stride(from: 0, to: seqs.count, by: 2).flatMap { rm.rewards(sequences: Array(seqs[$0..<min(seqs.count, $0 + 2)]), leftPadded: true) })] {
            for (a, b) in zip(alone, scores) { XCTAssertEqual(a, b, accuracy: 1e-5 * max(1, abs(a)), name) }
        }
    }

    /// A trained reward model's report on held-out pairs: every file, and numbers that agree with the scores.
    func testReportOfATrainedRewardModel() throws {
        let dir = try TrainerFixture.tempDir()
        var o = RewardConfig()
        o.reward.model = try RLHFFixture.policyFolder(in: dir).path
        let prefs = try RLHFFixture.preferences(32, in: dir)
        o.reward.data = [prefs.path]; o.reward.out = dir.appendingPathComponent("rm").path
        o.common.lr = 3e-3; o.common.steps = 8; o.common.batchSize = 8; o.common.maxLength = 128; o.common.schedule = "constant"
        _ = try RewardTrainer(config: o).fit()
        let scorer = try RewardScorer(rewardModel: dir.appendingPathComponent("rm/final"))
        let result = try scorer.scoreFile(prefs, batchSize: 5, maxLength: 128)
        let report = try RewardReport(chosen: result.chosenScores, rejected: result.rejectedScores,
                                      chosenLengths: result.chosenLengths, rejectedLengths: result.rejectedLengths)
        XCTAssertEqual(report.pairs, 32)
        XCTAssertEqual(report.accuracy, try XCTUnwrap(result.pairwiseAccuracy), accuracy: 1e-12)
        XCTAssertTrue(report.accuracyInterval95.lower <= report.accuracy && report.accuracy <= report.accuracyInterval95.upper)
        XCTAssertEqual(report.calibration.map(\.count).reduce(0, +), 64)
        XCTAssertEqual(report.margins.mean, try XCTUnwrap(result.meanMargin), accuracy: 1e-5)
        let out = dir.appendingPathComponent("report")
        try report.write(to: out)
        for f in ["report.json", "report.md", "reliability.svg", "scores.svg"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(f).path), f)
        }
        let back = try JSONDecoder().decode(RewardReport.self, from: Data(contentsOf: out.appendingPathComponent("report.json")))
        XCTAssertEqual(back.pairs, report.pairs)
        XCTAssertEqual(back.ece, report.ece, accuracy: 1e-12)
        XCTAssertTrue(try String(contentsOf: out.appendingPathComponent("reliability.svg"), encoding: .utf8).hasPrefix("<svg"))
    }
}
