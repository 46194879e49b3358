import Foundation
import XCTest
import FinchModel
import FinchTrain

/// `finch kto` end to end on the tiny fixture model: unpaired records and preference pairs are read, the policy's
/// held-out KTO loss falls and the desirable completions' implicit reward rises above the undesirable ones'.
final class KTOTrainingTests: XCTestCase {
    /// Unpaired records in TRL's form: the fixture's preference pairs split into thumbs-up and thumbs-down lines.
    static func unpaired(_ n: Int, in dir: URL) throws -> URL {
        let lines = (0..<n).map { i -> String in
            let c = TrainerFixture.colours[i % 8], t = TrainerFixture.things[(i * 5 + 1) % 8]
            let good = i % 3 != 0
            let reply = good ? "The \(t) is \(c)." : "The \(t) is \(TrainerFixture.things[(i * 3 + 2) % 8])."
            let prompt = i % 2 == 0 ? "\"What colour is the \(t) number \(i % 7)?\""
                : "[{\"role\": \"user\", \"content\": \"What colour is the \(t) number \(i % 7)?\"}]"
            return "{\"prompt\": \(prompt), \"completion\": \"\(reply)\", \"label\": \(good)}"
        }
        let u = dir.appendingPathComponent("kto.jsonl")
        try (lines.joined(separator: "\n") + "\n").write(to: u, atomically: true, encoding: .utf8)
        return u
    }

    func testKTOLowersHeldOutLossOnUnpairedAndPairedData() throws {
        let dir = try TrainerFixture.tempDir()
        let model = try RLHFFixture.policyFolder(in: dir)
        for (name, data) in [("unpaired", try Self.unpaired(48, in: dir)), ("pairs", try RLHFFixture.preferences(24, in: dir))] {
            var o = KTOConfig()
            o.kto.model = model.path; o.kto.data = [data.path]; o.kto.out = dir.appendingPathComponent("run-\(name)").path
            o.common.lr = 2e-3; o.common.steps = 12; o.common.batchSize = 8; o.common.evalFraction = 0.25
            o.common.maxLength = 48; o.common.overlong = .truncate; o.common.schedule = "constant"
            let t = try KTOTrainer(config: o)
            XCTAssertTrue(t.train.contains { $0.desirable } && t.train.contains { !$0.desirable }, name)
            let (before, after) = try t.fit()
            let b = try XCTUnwrap(before), a = try XCTUnwrap(after)
            print("kto \(name): held-out loss \(b.loss) → \(a.loss), rewards \(a.desirableReward ?? .nan) / \(a.undesirableReward ?? .nan)")
            XCTAssertEqual(b.loss, 0.5, accuracy: 1e-4, "\(name): policy == reference gives 1 − σ(0) = 0.5 per example")
            XCTAssertLessThan(a.loss, b.loss, name)
            XCTAssertGreaterThan(try XCTUnwrap(a.desirableReward), try XCTUnwrap(a.undesirableReward), name)
            let records = try MetricsLog.read(t.run.metricsURL).filter { $0["loss"] != nil }
            XCTAssertEqual(records.count, 12)
            XCTAssertNotNil(records.last?["kl"])
            XCTAssertNotNil(try HFModelFolder.read(t.run.url.appendingPathComponent("final")))
        }
    }

    /// Records that are not what KTO reads name their file and line.
    func testBadRecordsNameTheLine() throws {
        let dir = try TrainerFixture.tempDir()
        let model = try RLHFFixture.policyFolder(in: dir)
        let bad = dir.appendingPathComponent("bad.jsonl")
        for (text, needle) in [("{\"prompt\": \"hi\", \"completion\": \"x\", \"label\": 1}\n", "bad.jsonl:1: field \"label\" must be true or false"),
                               ("{\"prompt\": \"hi\", \"completion\": \"x\", \"label\": true}\n{\"prompt\": \"hi\", \"label\": false}\n", "bad.jsonl:2: missing field \"completion\""),
                               ("{\"prompt\": \"hi\", \"completion\": \"x\", \"label\": true}\nnot json\n", "bad.jsonl:2: malformed JSON")] {
            try text.write(to: bad, atomically: true, encoding: .utf8)
            var o = KTOConfig()
            o.kto.model = model.path; o.kto.data = [bad.path]; o.kto.out = dir.appendingPathComponent("run").path
            XCTAssertThrowsError(try KTOTrainer(config: o)) { XCTAssertTrue("\($0)".contains(needle), "\($0)") }
        }
    }
}
