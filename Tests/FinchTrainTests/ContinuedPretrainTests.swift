import Foundation
import XCTest
import FinchModel
import FinchData
import FinchTrain

/// `finch pretrain --model`: domain-adaptive pretraining of an existing model on raw text, in full or with LoRA,
/// with replay of a general corpus; the held-out domain text and the general text are measured before and after.
final class ContinuedPretrainTests: XCTestCase {
    typealias F = TrainerFixture

    struct Setup { let dir, base, domain, general: URL }

    /// A tiny base model, a "domain" text (the fixture's colour sentences) and a differently worded general text.
    func setup(_ name: String = #function) throws -> Setup {
        let dir = try F.tempDir(name)
        let base = dir.appendingPathComponent("base")
        try JobSupport.writeModel(F.decoder(), to: base, tokenizer: F.tokenizerURL, template: F.template)
        let domain = dir.appendingPathComponent("domain.txt"), general = dir.appendingPathComponent("general.txt")
        // Paragraphs of five lines: about 14 records of ~8k characters, so a tenth can be held out.
        let lines = F.corpus(lines: 2000).split(separator: "\n")
        let paragraphs = stride(from: 0, to: lines.count, by: 5).map { lines[$0..<min($0 + 5, lines.count)].joined(separator: "\n") }
        try paragraphs.joined(separator: "\n\n").write(to: domain, atomically: true, encoding: .utf8)
        let generalLines = (0..<200).map { i in "a \(F.things[i % 8]) and a \(F.things[(i + 3) % 8]) went to the \(F.colours[(i * 7) % 8]) house." }
        try generalLines.joined(separator: "\n").write(to: general, atomically: true, encoding: .utf8)
        return Setup(dir: dir, base: base, domain: domain, general: general)
    }

    func config(_ s: Setup, method: String, out: String, steps: Int = 16) -> PretrainConfig {
        var c = PretrainConfig()
        c.job.model = s.base.path
        c.job.data = [s.domain.path]
        c.job.out = s.dir.appendingPathComponent(out).path
        c.job.evalFraction = 0.2
        c.job.replay = [s.general.path]
        c.training = F.trainerConfig(steps: steps, method: method)
        c.training.replayRatio = 0.25
        c.training.evalEvery = 8
        c.training.lr = method == "full" ? 3e-3 : 1e-2
        c.peft.loraR = 4
        return c
    }

    func testLoRAContinuedPretrainingReportsDomainGainAndForgetting() throws {
        let s = try setup()
        let report = try PretrainJob.run(config(s, method: "lora", out: "dapt-lora", steps: 32))
        let domainBefore = try XCTUnwrap(report.heldOutBefore), domainAfter = try XCTUnwrap(report.summary.finalEval)
        XCTAssertNotNil(report.baseBefore); XCTAssertNotNil(report.baseAfter)
        XCTAssertLessThan(domainAfter.perplexity, domainBefore.perplexity * 0.9, "the domain text's perplexity should fall")
        // Every token of raw text is a target: the held-out tokens measured equal the held-out rows' tokens.
        XCTAssertGreaterThan(domainBefore.tokens, 0)
        XCTAssertEqual(domainBefore.tokens, domainAfter.tokens)
        let run = report.runFolder
        for f in ["final/adapter_config.json", "final/adapter_model.safetensors", "base_before.json", "held_out_before.json", "config.yaml", "metrics.jsonl"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent(f).path), "missing \(f)")
        }
        // The recipe is the pretrain command's: it names the model and the replay data.
        let yaml = try String(contentsOf: run.appendingPathComponent("config.yaml"), encoding: .utf8)
        XCTAssertTrue(yaml.contains("model: \(s.base.path)"), yaml)
        XCTAssertTrue(yaml.contains("replay"), yaml)
        let table = JobSupport.summaryTable(report.summary, baseBefore: report.baseBefore, baseAfter: report.baseAfter, heldOutBefore: report.heldOutBefore)
        XCTAssertTrue(table.contains("held-out ppl") && table.contains("base-corpus ppl"), table)
    }

    func testFullContinuedPretrainingWritesAModelThatReloads() throws {
        let s = try setup()
        let report = try PretrainJob.run(config(s, method: "full", out: "dapt-full", steps: 8))
        let folder = try HFModelFolder.read(report.finalFolder)
        XCTAssertEqual(folder.config.vocabSize, F.config().vocabSize, "the model keeps its own architecture")
        XCTAssertEqual(try ChatTemplate.forModel(report.finalFolder)?.name, F.template.name, "and its chat template")
        XCTAssertLessThan(try XCTUnwrap(report.summary.finalEval).loss, try XCTUnwrap(report.heldOutBefore).loss)
    }

    /// A killed run resumes with its before-measurements (not re-measured on the half-trained model).
    func testResumeKeepsTheBeforeMeasurements() throws {
        let s = try setup()
        var c = config(s, method: "lora", out: "dapt-resume", steps: 8)
        c.training.checkpointEvery = 4
        let first = try PretrainJob.run(c)
        let checkpoints = URL(fileURLWithPath: c.job.out).appendingPathComponent("checkpoints")
        try? FileManager.default.removeItem(at: checkpoints.appendingPathComponent("step-8"))
        c.job.resume = true
        let resumed = try PretrainJob.run(c)
        XCTAssertEqual(resumed.heldOutBefore, first.heldOutBefore)
        XCTAssertEqual(resumed.baseBefore, first.baseBefore)
    }

    func testOptionsThatDoNotFitAreRefused() throws {
        let s = try setup()
        var c = config(s, method: "lora", out: "bad")
        c.job.preset = "tiny"
        XCTAssertThrowsError(try PretrainJob.run(c)) { XCTAssertTrue("\($0)".contains("--preset"), "\($0)") }
        c = config(s, method: "lora", out: "bad")
        c.job.model = nil
        XCTAssertThrowsError(try PretrainJob.run(c)) { XCTAssertTrue("\($0)".contains("--method lora needs a model"), "\($0)") }
        c.training.method = "full"
        XCTAssertThrowsError(try PretrainJob.run(c)) { XCTAssertTrue("\($0)".contains("--replay"), "\($0)") }
    }
}
