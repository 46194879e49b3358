import Foundation
import XCTest
import FinchKernels
import FinchModel
import FinchData
import FinchTrain

final class TrainerJobTests: XCTestCase {
    typealias F = TrainerFixture

    /// A base model folder (random tiny Llama + the fixture tokenizer + the short chat template).
    func baseModel(in dir: URL) throws -> URL {
        let url = dir.appendingPathComponent("base")
        try JobSupport.writeModel(F.decoder(), to: url, tokenizer: F.tokenizerURL, template: F.template)
        return url
    }

    /// A tiny SFT run lowers the loss and leaves metrics.jsonl, loss.svg, config, checkpoints, best/ and a
    /// final model folder that reloads with identical logits.
    func testTinySFTRunWritesEverythingAndReloads() throws {
        let dir = try F.tempDir()
        let base = try baseModel(in: dir)
        let records = try F.recordsFile(24, in: dir)
        var cfg = F.trainerConfig(steps: 12)
        cfg.evalEvery = 4
        cfg.checkpointEvery = 6
        var job = SFTJobOptions(model: base.path, data: [records.path], out: dir.appendingPathComponent("run").path)
        job.template = F.template.name == "chatml-short" ? F.root.appendingPathComponent("chatml-short.json").path : nil
        job.pack = false
        job.evalFraction = 0.25
        job.baseEval = [records.path]
        let recipe = try Recipe(defaults: ["lr": cfg.lr], flags: ["method": "full"])
        let report = try SFTJob.run(SFTConfig(job: job, training: cfg), recipe: recipe)
        let s = report.summary
        XCTAssertEqual(s.steps, 12)
        XCTAssertLessThan(s.lastLoss!, s.firstLoss! * 0.9, "loss should fall")
        XCTAssertNotNil(s.bestEvalLoss)
        XCTAssertNotNil(report.baseBefore); XCTAssertNotNil(report.baseAfter)
        let run = report.runFolder
        for f in ["metrics.jsonl", "loss.svg", "config.yaml", "config.json", "summary.json", "checkpoints/step-12/trainable.safetensors",
                  "checkpoints/step-6/optimizer.json", "best/config.json", "final/config.json", "final/model.safetensors",
                  "final/tokenizer.model", "final/finch.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent(f).path), "missing \(f)")
        }
        let metrics = try MetricsLog.read(run.appendingPathComponent("metrics.jsonl"))
        XCTAssertEqual(metrics.filter { $0["loss"] != nil }.count, 12)
        XCTAssertEqual(metrics.filter { $0["eval_loss"] != nil }.count, 3)
        XCTAssertTrue(try String(contentsOf: run.appendingPathComponent("loss.svg"), encoding: .utf8).contains("eval loss"))

        // The final folder reloads with the trained weights: identical logits.
        let trained = try Decoder(config: HFModelFolder.read(report.finalFolder).config, parameters: HFModelFolder.read(report.finalFolder).parameters)
        let ckpt = try SafeTensors.File(url: run.appendingPathComponent("checkpoints/step-12/trainable.safetensors"))
        let inCheckpoint = try Decoder(config: trained.config, parameters: Dictionary(uniqueKeysWithValues:
            try ckpt.entries.keys.map { ($0, try ckpt.tensor($0)) }))
        let ids = (0..<20).map { ($0 * 7) % trained.config.vocabSize }
        XCTAssertEqual(trained.forward(ids: ids, batch: 1, length: 20).array, inCheckpoint.forward(ids: ids, batch: 1, length: 20).array)
        XCTAssertEqual(try ChatTemplate.forModel(report.finalFolder)?.name, "chatml-short")
    }

    /// LoRA through the PEFT protocol: only adapter tensors train; the final folder is a PEFT adapter.
    func testLoRARunWritesAdapter() throws {
        let dir = try F.tempDir()
        let base = try baseModel(in: dir)
        let records = try F.recordsFile(16, in: dir)
        var cfg = F.trainerConfig(steps: 6, method: "lora")
        cfg.lr = 1e-2
        cfg.evalEvery = -1
        var job = SFTJobOptions(model: base.path, data: [records.path], out: dir.appendingPathComponent("run").path)
        job.template = F.root.appendingPathComponent("chatml-short.json").path
        job.pack = false
        job.merge = true
        var peft = PEFTOptions()
        peft.loraR = 4
        peft.loraTargets = ["all-linear"]
        let report = try SFTJob.run(SFTConfig(job: job, training: cfg, peft: peft))
        XCTAssertLessThan(report.summary.lastLoss!, report.summary.firstLoss!)
        XCTAssertLessThan(report.summary.trainableParameters, report.summary.totalParameters / 5)
        for f in ["adapter_config.json", "adapter_model.safetensors", "merged/config.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: report.finalFolder.appendingPathComponent(f).path), "missing final/\(f)")
        }
    }
}
