import Foundation
import FinchModel
import FinchData
import FinchDistributed

/// What a job produced.
public struct JobReport {
    public var summary: TrainingSummary
    public var baseBefore: EvalResult?
    public var baseAfter: EvalResult?
    /// The held-out split (the training data's own distribution) before training, measured with the base corpus: the
    /// gain on the new domain beside the forgetting of the old one.
    public var heldOutBefore: EvalResult?
    public var finalFolder: URL
    public var runFolder: URL
}

/// `finch sft`: fine-tunes a model folder on instruction data with any method.
public enum SFTJob {
    /// Runs `finch sft`: events (lines, steps, evaluations) go to `progress`, which may ask the run to stop.
    public static func run(_ sft: SFTConfig, recipe: Recipe? = nil, progress sink: any ProgressSink = NoProgress()) throws -> JobReport {
        try sft.validate()
        let (job, config, peft) = (sft.job, sft.training, sft.peft)
        let reporter = ProgressReporter(sink: sink)
        let log: (String) -> Void = { reporter.report($0) }
        let runURL = URL(fileURLWithPath: job.out)
        // Data-parallel: rank 0 creates the run folder, packs the data (and trains the tokenizer) first; the others
        // then reuse its files (see Communicator.beginRankZeroFirst).
        let world = World.current
        try world.beginRankZeroFirst()
        let run = try RunFolder(url: runURL)
        if world.isWriter { try (recipe ?? Recipe.of(sft)).write(to: run) }
        let modelURL = URL(fileURLWithPath: job.model)
        let folder = try HFModelFolder.read(modelURL, keepQuantized: peft.baseQuant == "gguf")
        try folder.requireCausalLM("finch sft --model")
        guard let tokURL = folder.tokenizerModel else {
            throw TrainingError("\(modelURL.path): no tokenizer in the model folder (tokenizer.model or tokenizer.json; finch sft needs the model's tokenizer)")
        }
        // Before packing data: rows plus prompt/prefix virtual tokens must fit the model's positions.
        try CausalLMModel.checkPositions(seqLen: config.seqLen, virtualTokens: ["prompt", "prefix"].contains(config.method) ? peft.numVirtualTokens : 0,
                                         maxPositions: folder.config.maxPositions)
        let tokenizer = try Tokenizers.load(path: tokURL.path)
        let template = try job.template.map { try ChatTemplate.load($0) } ?? ChatTemplate.forModel(modelURL)
        let dataDir = runURL.appendingPathComponent("data")
        func urls(_ s: [String]) -> [URL] { s.map { URL(fileURLWithPath: $0) } }
        let trainURL = try JobSupport.dataset(urls(job.data), into: dataDir.appendingPathComponent("train"), tokenizer: tokenizer,
                                              template: template, maxLength: config.seqLen, pack: job.pack,
                                              trainOnPrompt: job.trainOnPrompt, overlong: job.overlong, log: log)
        let heldOut = job.evalData == nil && job.evalFraction > 0 && config.evalEvery >= 0
        let train = try DatasetReader(trainURL, options: .init(seed: config.seed, shuffle: true,
                                                               split: heldOut ? .train(heldOut: job.evalFraction) : .all), tokenizer: tokenizer)
        var eval: DatasetReader? = nil
        if let e = job.evalData {
            let u = try JobSupport.dataset(urls(e), into: dataDir.appendingPathComponent("eval"), tokenizer: tokenizer, template: template,
                                           maxLength: config.seqLen, pack: job.pack, trainOnPrompt: job.trainOnPrompt,
                                           overlong: job.overlong, log: log)
            eval = try DatasetReader(u, options: .init(shuffle: false), tokenizer: tokenizer)
        } else if heldOut {
            eval = try DatasetReader(trainURL, options: .init(shuffle: false, split: .heldOut(job.evalFraction)), tokenizer: tokenizer)
            if eval!.count == 0 {
                log("note: the held-out split (--eval-fraction \(job.evalFraction)) is empty; no evaluation (give --eval-data)")
                eval = nil
            }
        }
        var replay: DatasetReader? = nil
        if let r = job.replay {
            let u = try JobSupport.dataset(urls(r), into: dataDir.appendingPathComponent("replay"), tokenizer: tokenizer, template: template,
                                           maxLength: config.seqLen, log: log)
            replay = try DatasetReader(u, options: .init(seed: config.seed &+ 1, shuffle: true), tokenizer: tokenizer)
        }
        var base: DatasetReader? = nil
        if let b = job.baseEval ?? job.replay {
            let name = job.baseEval == nil ? "replay" : "base-eval"
            let u = try JobSupport.dataset(urls(b), into: dataDir.appendingPathComponent(name), tokenizer: tokenizer, template: template,
                                           maxLength: config.seqLen, log: log)
            base = try DatasetReader(u, options: .init(shuffle: false), tokenizer: tokenizer)
        }

        let decoder = try Decoder(config: folder.config, parameters: folder.parameters, quantized: folder.quantized)
        let module = try PEFTMethods.make(config.method, options: peft, decoder: decoder, tokenizer: tokenizer, seed: config.seed)
        let model = CausalLMModel(decoder: decoder, peft: module, cacheFeatures: config.cacheFeatures)
        if let line = try PEFTMethods.quantizeBase(decoder, options: peft) { log(line) }
        try config.apply(to: decoder, loraDropout: config.method == "lora" ? peft.loraDropout : 0)
        let trainer = try Trainer(config: config, model: model, train: train, eval: eval, replay: replay, run: run, progress: reporter)
        log(JobSupport.parameterLine(model, method: config.method))
        log("data: \(train.count) training sequences, \(eval?.count ?? 0) held-out; \(trainer.stepsPerEpoch) steps per epoch, \(trainer.totalSteps) steps")
        let writeUsable: (URL) throws -> Void = { dir in
            if let m = module {
                try m.save(to: dir, baseModel: modelURL.path)
            } else {
                try JobSupport.writeModel(decoder, to: dir, tokenizer: tokURL, template: template)
            }
        }
        trainer.session.writeModel = writeUsable
        if job.evalGenerate != nil {
            trainer.extraEvaluation = try answerCheck(job, model: model, tokenizer: tokenizer, template: template, log: log)
        }
        try world.endRankZeroFirst()

        func baseEval() throws -> EvalResult? {
            guard let b = base else { return nil }
            return try CausalLMEvaluation.evaluate(model, reader: b, batchSize: config.batchSize, seqLen: config.seqLen,
                                                   maxBatches: job.baseEvalBatches)
        }
        var before: EvalResult? = nil, heldOutBefore: EvalResult? = nil
        let savedBefore = [("base_before.json", \EvalPair.base), ("held_out_before.json", \EvalPair.heldOut)]
        if job.resume, let latest = run.latestCheckpoint() {
            var pair = EvalPair()
            for (name, key) in savedBefore {
                let savedURL = runURL.appendingPathComponent(name)
                guard FileManager.default.fileExists(atPath: savedURL.path) else { continue }
                do { pair[keyPath: key] = try JSONDecoder().decode(EvalResult.self, from: Data(contentsOf: savedURL)) } catch {
                    throw TrainingError("\(savedURL.path): damaged (\(error)); delete it to evaluate the base again")
                }
            }
            (before, heldOutBefore) = (pair.base, pair.heldOut)
            try trainer.resume(from: latest.url)
            log("resumed from \(latest.url.path) (step \(latest.step))")
        } else {
            if job.resume {
                log("no checkpoint in \(run.checkpointsURL.path); starting from step 0")
                try trainer.session.startFresh()
            }
            // "Before" is the base model itself: a PEFT method is switched off (a random prefix is not the base).
            module?.enabled = false
            before = try baseEval()
            if before != nil { heldOutBefore = try trainer.evaluate() }
            module?.enabled = true
            let pair = EvalPair(base: before, heldOut: heldOutBefore)
            for (name, key) in savedBefore {
                if let b = pair[keyPath: key], world.isWriter { try AtomicFile.write(try JSONEncoder().encode(b), to: runURL.appendingPathComponent(name)) }
            }
        }
        let summary = try trainer.fit()
        let after = summary.endReason == "interrupted" ? nil : try baseEval()
        let finalURL = runURL.appendingPathComponent("final")
        if summary.endReason != "interrupted" && world.isWriter {
            try RunFolder.writeAtomically(to: finalURL) { dir in
                try writeUsable(dir)
                if job.merge, let lora = module as? LoRAModule {
                    let merged = try lora.mergedParameters(decoder.fullPrecisionParameters(), config: decoder.config)
                    let mergedDecoder = try Decoder(config: decoder.config, parameters: merged)
                    try JobSupport.writeModel(mergedDecoder, to: dir.appendingPathComponent("merged"), tokenizer: tokURL, template: template)
                }
            }
        }
        let report = JobReport(summary: summary, baseBefore: before, baseAfter: after, heldOutBefore: heldOutBefore,
                               finalFolder: finalURL, runFolder: runURL)
        let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        if world.isWriter { try AtomicFile.write(try enc.encode(summary), to: runURL.appendingPathComponent("summary.json")) }
        log(JobSupport.summaryTable(summary, baseBefore: before, baseAfter: after, heldOutBefore: heldOutBefore))
        if summary.endReason == "interrupted" { throw TrainingInterrupted(step: trainer.session.state.step, runFolder: runURL) }
        return report
    }
}

extension SFTJob {
    /// `--eval-generate`: greedy answers to the first checkable rows of a `finch eval` file by the model as it trains
    /// (its adapter included), scored as `finch eval` scores them.
    static func answerCheck(_ job: SFTJobOptions, model: CausalLMModel, tokenizer: any TextTokenizer, template: ChatTemplate?,
                            log: (String) -> Void) throws -> () throws -> (metrics: [String: Double], text: String) {
        let url = URL(fileURLWithPath: job.evalGenerate!)
        let rows = Array(try EvalRow.read(url).filter(\.isCheckable).prefix(job.evalGenerateLimit))
        guard !rows.isEmpty else {
            throw TrainingError("\(url.path): no row with a checkable answer (prompt, answer and task) for --eval-generate")
        }
        let encoder = try template.map { try ChatEncoder(tokenizer: tokenizer, template: $0) }
        let answering = EvalModel(name: "training", decoder: model.decoder, tokenizer: tokenizer, encoder: encoder)
        var settings = EvalSettings(maxTokens: job.evalGenerateMaxTokens, batch: 8)
        settings.referencePerplexity = false
        log("eval-generate: \(rows.count) checkable rows of \(url.lastPathComponent) answered greedily at every evaluation"
            + (encoder == nil ? " (no chat template: plain Question/Answer prompts)" : ""))
        return {
            PEFTMethods.setTraining(model.peft, false)
            defer { PEFTMethods.setTraining(model.peft, true) }
            let s = try ModelEvaluation.evaluate(answering, rows: rows, settings: settings)
            let em = s.exactMatch ?? 0, se = s.exactMatchStderr ?? 0
            return (["eval_exact_match": em, "eval_exact_match_stderr": se],
                    String(format: "exact match %.1f%% ±%.1f", 100 * em, 100 * se))
        }
    }
}

/// The two evaluations taken before training when forgetting is measured (saved for an exact resume).
private struct EvalPair {
    var base: EvalResult?
    var heldOut: EvalResult?
}
