import Foundation
import XCTest
import FinchKernels
import FinchModel
import FinchData
import FinchTrain

/// Ordinary user mistakes from the new-user trial (../shared/reports/new-user-trial-2026-12-04.md) get an error a
/// user can act on, or a fitted value with a note, never a crash or a run that trains nothing.
final class UserMistakeTests: XCTestCase {
    typealias F = TrainerFixture

    /// A reward model (score head) on disk, the kind of folder users pass where a causal LM belongs.
    func rewardFolder() throws -> URL {
        let dir = try F.tempDir("mistake-reward")
        let d = try RewardModel.sequenceClassifier(config: F.config(), parameters: F.decoder().parameters, padID: 0, seed: 1)
        let rm = try RewardModel(decoder: d, padID: 0)
        try rm.save(to: dir, tokenizer: F.tokenizerURL, templateName: nil)
        try F.template.save(toModel: dir)
        return dir
    }

    func testAScoreHeadModelWhereACausalLMBelongsIsRefusedByName() throws {
        let rm = try rewardFolder()
        let folder = try HFModelFolder.read(rm)
        XCTAssertEqual(folder.config.numLabels, 1)
        XCTAssertThrowsError(try folder.requireCausalLM("finch sft --model")) { e in
            XCTAssertTrue("\(e)".contains("is a reward model") && "\(e)".contains("finch sft --model"), "\(e)")
        }
        XCTAssertThrowsError(try EvalModel(folder: rm)) { e in XCTAssertTrue("\(e)".contains("is a reward model"), "\(e)") }
        XCTAssertThrowsError(try LoadedModelFolder(rm, causalLM: "finch dpo --model")) { e in
            XCTAssertTrue("\(e)".contains("finch dpo --model"), "\(e)")
        }
        // As a reward model it still loads.
        XCTAssertNoThrow(try LoadedModelFolder(rm))
    }

    func testZeroSizedMethodsAreRefused() throws {
        var o = PEFTOptions()
        o.loraR = 0
        XCTAssertThrowsError(try o.validate(method: "lora")) { XCTAssertTrue("\($0)".contains("--lora-r")) }
        o = PEFTOptions(); o.loraAlpha = 0
        XCTAssertThrowsError(try o.validate(method: "dora")) { XCTAssertTrue("\($0)".contains("--lora-alpha")) }
        o = PEFTOptions(); o.numVirtualTokens = 0
        XCTAssertThrowsError(try o.validate(method: "prefix")) { XCTAssertTrue("\($0)".contains("--num-virtual-tokens")) }
        XCTAssertThrowsError(try o.validate(method: "prompt"))
        XCTAssertNoThrow(try o.validate(method: "lora"))   // a prefix size does not matter to LoRA
        XCTAssertThrowsError(try PEFTMethods.make("prefix", options: o, decoder: F.decoder(), tokenizer: nil, seed: 1))
    }

    func testContradictoryTrainerFlagsAreRefused() {
        var c = F.trainerConfig(steps: 10)
        c.warmup = 20
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("--warmup 20") && "\($0)".contains("--max-steps 10")) }
        c = F.trainerConfig(steps: 10, method: "full"); c.cacheFeatures = true
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("--cache-features")) }
        c = F.trainerConfig(steps: 10, method: "lora"); c.trainLayers = 2
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("--train-layers")) }
        c = F.trainerConfig(steps: 10, method: "freeze"); c.trainLayers = 1; c.cacheFeatures = true
        XCTAssertNoThrow(try c.validate())
        c = F.trainerConfig(steps: 10, method: "lora"); c.unfreezeEvery = 5
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("--unfreeze-every") && "\($0)".contains("lora")) }
        c = F.trainerConfig(steps: 10, method: "full"); c.unfreezeEvery = 5
        XCTAssertNoThrow(try c.validate())
        c = F.trainerConfig(steps: 10, method: "dora"); c.layerLrDecay = 0.8
        XCTAssertNoThrow(try c.validate())
    }

    func testUnknownMethodAndTableFilesAreRefusedBeforeAnyWork() throws {
        let c = F.trainerConfig(steps: 10, method: "bogus")
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("unknown --method 'bogus'") && "\($0)".contains("lora")) }
        let csv = try F.tempDir("mistake-csv").appendingPathComponent("data.csv")
        try "instruction,output\nSay hi,hi\n".write(to: csv, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try RecordReader.detectFormat(of: csv)) { e in
            XCTAssertTrue("\(e)".contains("data.csv") && "\(e)".contains("convert it to JSONL"), "\(e)")
        }
    }

    func testScoreLengthPastThePositionsIsRefused() throws {
        let rm = try rewardFolder()
        let scorer = try RewardScorer(rewardModel: rm)
        let data = try F.tempDir("mistake-score").appendingPathComponent("pairs.jsonl")
        try #"{"prompt": "Which colour?", "chosen": "Red.", "rejected": "Blue."}"#.write(to: data, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try scorer.scoreFile(data, maxLength: 1000)) { e in
            XCTAssertTrue("\(e)".contains("--max-length 1000") && "\(e)".contains("128"), "\(e)")
        }
        XCTAssertNoThrow(try scorer.scoreFile(data, maxLength: 64))
    }
}

/// Bottleneck adapters trained by `finch sft --method adapter` are served by evaluation (and the chat engine,
/// tested in FinchChatTests through the same loader): their blocks act inside every layer, as in training.
final class BottleneckAdapterServingTests: XCTestCase {
    typealias F = TrainerFixture

    func testAnAdapterRunIsEvaluatedWithItsBlocks() throws {
        let dir = try F.tempDir()
        let base = dir.appendingPathComponent("base")
        try JobSupport.writeModel(F.decoder(), to: base, tokenizer: F.tokenizerURL, template: F.template)
        let records = try F.recordsFile(24, in: dir)
        var cfg = F.trainerConfig(steps: 6, method: "adapter")
        cfg.evalEvery = -1
        var job = SFTJobOptions(model: base.path, data: [records.path], out: dir.appendingPathComponent("run").path)
        job.evalFraction = 0
        var peft = PEFTOptions(); peft.adapterSize = 8
        let report = try SFTJob.run(SFTConfig(job: job, training: cfg, peft: peft))
        let adapter = report.finalFolder
        XCTAssertEqual(try PEFTAdapterFolder.peftType(of: adapter), "ADAPTER")
        let tuned = try EvalModel(folder: adapter)            // finds its base through adapter_config.json
        let plain = try EvalModel(folder: base)
        XCTAssertNotNil(tuned.decoder.hooks)
        let ids = [1, 5, 9, 13, 17]
        tuned.decoder.forwardHidden(ids: ids, batch: 1, length: ids.count)
        let a = tuned.decoder.lmHead().array
        plain.decoder.forwardHidden(ids: ids, batch: 1, length: ids.count)
        let b = plain.decoder.lmHead().array
        XCTAssertGreaterThan(zip(a, b).map { abs($0 - $1) }.max() ?? 0, 1e-4, "the adapter's blocks do not act")
    }
}
