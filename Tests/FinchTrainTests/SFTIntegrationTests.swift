import Foundation
import XCTest
import FinchKernels
import FinchModel
import FinchData
import FinchTrain

/// End-to-end SFT on real instruction data (`../shared/data/instructions/gsm8k-train.jsonl`): a tokenizer
/// trained on a slice of it, a tiny random Llama base, fine-tuning with a held-out split.
/// Default (CI) version: full fine-tuning, eval loss must fall. `FINCH_LONG_TESTS=1`: all five methods on
/// the same base and data, one line each (eval loss, tokens/s, peak memory).
final class SFTIntegrationTests: XCTestCase {
    /// The shared data root: `$FINCH_SHARED_DATA`, else `../shared/data` beside the checkout.
    static var dataRoot: URL {
        if let env = ProcessInfo.processInfo.environment["FINCH_SHARED_DATA"], !env.isEmpty {
            return URL(fileURLWithPath: env)
        }
        // Package root = three levels above this file (Tests/FinchTrainTests/SFTIntegrationTests.swift).
        let pkg = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return pkg.deletingLastPathComponent().appendingPathComponent("shared/data")
    }

    static var gsm8k: URL { dataRoot.appendingPathComponent("instructions/gsm8k-train.jsonl") }

    /// Everything a run needs: base model folder, train and held-out JSONL files, the short template.
    struct Setup {
        var dir: URL
        var base: URL
        var train: URL
        var eval: URL
        var template: URL
    }

    /// The first `trainCount + evalCount` short records of gsm8k split into train / held-out files, a 512-piece
    /// unigram tokenizer trained on their text, and a random tiny Llama written as a model folder.
    static func makeSetup(trainCount: Int, evalCount: Int) throws -> Setup? {
        guard let text = try? String(contentsOf: gsm8k, encoding: .utf8) else {
            print("SFTIntegration: skipped (no \(gsm8k.path); set FINCH_SHARED_DATA)")
            return nil
        }
        // Only short records (instruction + output ≤ 300 characters) so the answer and its end-of-turn fit in a row.
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true).lazy.filter { l -> Bool in
            let obj = (try? JSONSerialization.jsonObject(with: Data(l.utf8))) as? [String: Any] ?? [:]
            return ((obj["instruction"] as? String)?.count ?? 0) + ((obj["output"] as? String)?.count ?? 0) <= 300
        }.prefix(trainCount + evalCount).map(String.init)
        guard lines.count == trainCount + evalCount else {
            print("SFTIntegration: skipped (\(gsm8k.path) has only \(lines.count) records)")
            return nil
        }
        let dir = try TrainerFixture.tempDir("sft-integration")
        let train = dir.appendingPathComponent("train.jsonl"), eval = dir.appendingPathComponent("eval.jsonl")
        try (lines.prefix(trainCount).joined(separator: "\n") + "\n").write(to: train, atomically: true, encoding: .utf8)
        try (lines.suffix(evalCount).joined(separator: "\n") + "\n").write(to: eval, atomically: true, encoding: .utf8)

        // Tokenizer corpus: the instruction and output texts of the training records only.
        var corpus: [String] = []
        for l in lines.prefix(trainCount) {
            let obj = try JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any] ?? [:]
            for k in ["instruction", "input", "output"] { if let s = obj[k] as? String, !s.isEmpty { corpus.append(s) } }
        }
        let corpusURL = dir.appendingPathComponent("corpus.txt")
        try corpus.joined(separator: "\n").write(to: corpusURL, atomically: true, encoding: .utf8)
        var o = TokenizerTrainer.Options(inputs: [corpusURL], vocabSize: 512, type: .unigram)
        o.numThreads = 2
        let tokenizer = try TokenizerTrainer.train(o, into: dir.appendingPathComponent("tok"))

        // ChatML without the default system prompt: keeps rows short.
        let templateURL = dir.appendingPathComponent("chatml-short.json")
        try """
        {"name": "chatml-short", "description": "integration test", "bos": false,
         "system": {"prefix": "<|im_start|>system\\n", "suffix": "<|im_end|>\\n"},
         "user": {"prefix": "<|im_start|>user\\n", "suffix": "<|im_end|>\\n"},
         "assistant": {"prefix": "<|im_start|>assistant\\n", "suffix": "<|im_end|>\\n"},
         "end_of_turn": "<|im_end|>", "special_tokens": ["<|im_start|>", "<|im_end|>"]}
        """.write(to: templateURL, atomically: true, encoding: .utf8)
        let template = try ChatTemplate.load(templateURL.path)

        // maxPositions leaves room for seqLen + 20 virtual tokens (prefix / prompt tuning).
        let config = DecoderConfig(flavour: .llama, vocabSize: tokenizer.vocabSize, hiddenSize: 64, numLayers: 2, numHeads: 4,
                                   numKVHeads: 2, intermediateSize: 128, maxPositions: 288,
                                   tieWordEmbeddings: false, eosTokenId: tokenizer.eosID)
        let base = dir.appendingPathComponent("base")
        try JobSupport.writeModel(Decoder(config: config, seed: 11), to: base,
                                  tokenizer: dir.appendingPathComponent("tok/tokenizer.model"), template: template)
        return Setup(dir: dir, base: base, train: train, eval: eval, template: templateURL)
    }

    /// One SFT run on `setup`; the held-out file is both the eval set and the before/after comparison set.
    static func run(_ s: Setup, method: String, steps: Int, lr: Double, peft: PEFTOptions = PEFTOptions()) throws -> JobReport {
        var cfg = TrainerConfig()
        cfg.maxSteps = steps
        cfg.batchSize = 8
        cfg.seqLen = 256
        cfg.lr = lr
        cfg.warmup = 3
        cfg.evalEvery = max(1, steps / 2)
        cfg.method = method
        cfg.seed = 5
        var job = SFTJobOptions(model: s.base.path, data: [s.train.path], out: s.dir.appendingPathComponent("run-\(method)").path)
        job.template = s.template.path
        job.evalData = [s.eval.path]
        job.baseEval = [s.eval.path]
        job.baseEvalBatches = 100   // the whole held-out file
        return try SFTJob.run(SFTConfig(job: job, training: cfg, peft: peft))
    }

    /// CI version: full fine-tuning of a tiny Llama on 200 gsm8k records lowers the held-out loss.
    func testFullFineTuningLowersEvalLoss() throws {
        guard let s = try Self.makeSetup(trainCount: 200, evalCount: 24) else { return }
        let t0 = Date()
        let r = try Self.run(s, method: "full", steps: 40, lr: 3e-3)
        let before = try XCTUnwrap(r.baseBefore?.loss), after = try XCTUnwrap(r.baseAfter?.loss)
        print(String(format: "SFTIntegration full: eval loss %.4f -> %.4f over %d steps (%.0f tokens/s, %.1fs)",
                     before, after, r.summary.steps, r.summary.tokensPerSecond ?? 0, Date().timeIntervalSince(t0)))
        XCTAssertEqual(r.summary.steps, 40)
        XCTAssertLessThan(after, before, "held-out loss should fall")
        XCTAssertLessThan(try XCTUnwrap(r.summary.bestEvalLoss), before)
    }

    /// Long version (`FINCH_LONG_TESTS=1`): full, freeze, lora, prefix and prompt on the same base and data.
    /// Peak memory is the process high-water mark, reset (Linux `clear_refs` 5) before each method; memory
    /// still held from earlier runs counts, so separate CLI processes give cleaner memory figures.
    func testAllMethodsSideBySide() throws {
        guard ProcessInfo.processInfo.environment["FINCH_LONG_TESTS"] == "1" else {
            print("SFTIntegration: five-method comparison skipped (set FINCH_LONG_TESTS=1)")
            return
        }
        guard let s = try Self.makeSetup(trainCount: 400, evalCount: 40) else { return }
        let runs: [(String, Double)] = [("full", 3e-3), ("freeze", 3e-3), ("lora", 1e-2), ("prefix", 1e-2), ("prompt", 3e-2)]
        var peft = PEFTOptions()
        peft.loraR = 8
        peft.loraTargets = ["all-linear"]
        peft.numVirtualTokens = 20
        print("method  eval-before  eval-after  tokens/s  peak-MB  trainable")
        for (method, lr) in runs {
            try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
            let r = try Self.run(s, method: method, steps: 120, lr: lr, peft: peft)
            let before = try XCTUnwrap(r.baseBefore?.loss), after = try XCTUnwrap(r.baseAfter?.loss)
            print(method.padding(toLength: 7, withPad: " ", startingAt: 0) + String(format: " %11.4f %11.4f %9.0f %8.1f %10d", before, after, r.summary.tokensPerSecond ?? 0,
                         Double(r.summary.peakMemoryBytes) / 1_048_576, r.summary.trainableParameters))
            XCTAssertLessThan(after, before, "\(method): held-out loss should fall")
        }
    }
}
