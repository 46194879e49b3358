import Foundation
import FinchModel
import FinchData
import FinchDistributed

/// `finch pretrain`: tokenizer (trained when not given), packed text, a decoder trained from scratch,
/// an HF model folder in RUN/final (and best/).
public enum PretrainJob {
    /// Runs `finch pretrain`: events go to `progress`, which may ask the run to stop.
    public static func run(_ pretrain: PretrainConfig, recipe: Recipe? = nil, progress sink: any ProgressSink = NoProgress()) throws -> JobReport {
        try pretrain.validate()
        if pretrain.job.model != nil { return try ContinuedPretrainJob.run(pretrain, recipe: recipe, progress: sink) }
        let job = pretrain.job
        var config = pretrain.training
        config.method = "full"
        let reporter = ProgressReporter(sink: sink)
        let log: (String) -> Void = { reporter.report($0) }
        let runURL = URL(fileURLWithPath: job.out)
        // Data-parallel: rank 0 creates the run folder, packs the data (and trains the tokenizer) first; the others
        // then reuse its files (see Communicator.beginRankZeroFirst).
        let world = World.current
        try world.beginRankZeroFirst()
        let run = try RunFolder(url: runURL)
        if world.isWriter { try (recipe ?? Recipe.of(pretrain)).write(to: run) }
        let inputs = job.data.map { URL(fileURLWithPath: $0) }

        // Tokenizer: given, left by an earlier (resumed) run, or trained now.
        let tokDir = runURL.appendingPathComponent("tokenizer")
        let tokenizer: any TextTokenizer
        if let t = job.tokenizer {
            tokenizer = try Tokenizers.load(path: t)
        } else if FileManager.default.fileExists(atPath: tokDir.appendingPathComponent("tokenizer.model").path) {
            tokenizer = try Tokenizers.load(path: tokDir.path)
        } else {
            guard !(inputs.count == 1 && JobSupport.isDataset(inputs[0])) else {
                throw TrainingError("\(inputs[0].path) is a packed dataset: give the --tokenizer it was packed with")
            }
            log("training a \(job.vocabSize)-piece tokenizer on \(inputs.map(\.lastPathComponent).joined(separator: ", "))")
            let texts = try TokenizerTrainer.textInputs(inputs, scratch: runURL.appendingPathComponent("data/tokenizer-text"))
            var o = TokenizerTrainer.Options(inputs: texts, vocabSize: job.vocabSize)
            o.seed = UInt32(truncatingIfNeeded: config.seed)
            tokenizer = try TokenizerTrainer.train(o, into: tokDir)
        }
        let tokURL = job.tokenizer.map { p -> URL in
            let u = URL(fileURLWithPath: p)
            return u.pathExtension == "model" ? u : u.appendingPathComponent("tokenizer.model")
        } ?? tokDir.appendingPathComponent("tokenizer.model")
        let template = try job.template.map { try ChatTemplate.load($0) }

        let trainURL = try JobSupport.dataset(inputs, into: runURL.appendingPathComponent("data/train"), tokenizer: tokenizer,
                                              template: nil, maxLength: config.seqLen, log: log)
        let heldOut = job.evalFraction > 0 && config.evalEvery >= 0
        let train = try DatasetReader(trainURL, options: .init(seed: config.seed, shuffle: true,
                                                               split: heldOut ? .train(heldOut: job.evalFraction) : .all), tokenizer: tokenizer)
        var eval = heldOut ? try DatasetReader(trainURL, options: .init(shuffle: false, split: .heldOut(job.evalFraction)), tokenizer: tokenizer) : nil
        if let e = eval, e.count == 0 { log("note: the held-out split is empty; no evaluation"); eval = nil }

        var modelConfig: DecoderConfig
        if let file = job.modelConfig {
            modelConfig = try HFConfig.load(URL(fileURLWithPath: file))
            guard modelConfig.vocabSize >= tokenizer.vocabSize else {
                throw TrainingError("\(file): vocab_size \(modelConfig.vocabSize) is smaller than the tokenizer's \(tokenizer.vocabSize) pieces")
            }
        } else {
            modelConfig = try ModelPresets.config(job.preset ?? "tiny", vocabSize: tokenizer.vocabSize,
                                                  maxPositions: nil, bos: tokenizer.bosID >= 0 ? tokenizer.bosID : nil,
                                                  eos: tokenizer.eosID >= 0 ? tokenizer.eosID : nil, pad: tokenizer.padID >= 0 ? tokenizer.padID : nil)
            if modelConfig.maxPositions < config.seqLen { modelConfig.maxPositions = config.seqLen }
        }
        let decoder = Decoder(config: modelConfig, seed: config.seed)
        try config.apply(to: decoder, loraDropout: 0)
        let model = CausalLMModel(decoder: decoder)
        let trainer = try Trainer(config: config, model: model, train: train, eval: eval, run: run, progress: reporter)
        let writeUsable: (URL) throws -> Void = { try JobSupport.writeModel(decoder, to: $0, tokenizer: tokURL, template: template) }
        trainer.session.writeModel = writeUsable
        try world.endRankZeroFirst()
        log(JobSupport.parameterLine(model, method: "pretrain (\(job.modelConfig ?? job.preset ?? "tiny"), \(modelConfig.flavour.rawValue))"))
        log("data: \(train.count) training sequences of ≤\(config.seqLen) tokens, \(eval?.count ?? 0) held-out; \(trainer.totalSteps) steps")
        if job.resume {
            if try trainer.resumeLatest() { log("resumed at step \(trainer.session.state.step)") } else {
                log("no checkpoint to resume; starting at step 0")
                try trainer.session.startFresh()
            }
        }
        let summary = try trainer.fit()
        let finalURL = runURL.appendingPathComponent("final")
        if summary.endReason != "interrupted" && world.isWriter { try RunFolder.writeAtomically(to: finalURL, writeUsable) }
        let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        if world.isWriter { try AtomicFile.write(try enc.encode(summary), to: runURL.appendingPathComponent("summary.json")) }
        log(JobSupport.summaryTable(summary, baseBefore: nil, baseAfter: nil))
        if summary.endReason == "interrupted" { throw TrainingInterrupted(step: trainer.session.state.step, runFolder: runURL) }
        return JobReport(summary: summary, baseBefore: nil, baseAfter: nil, finalFolder: finalURL, runFolder: runURL)
    }
}
