import Foundation
import FinchKernels
import FinchModel
import FinchData
import FinchDistributed

/// What a finished (or stopped) run measured.
public struct TrainingSummary: Codable, Sendable {
    public var steps: Int
    public var totalSteps: Int
    public var firstLoss: Double?
    public var lastLoss: Double?
    public var bestEvalLoss: Double?
    public var bestStep: Int?
    public var finalEval: EvalResult?
    public var tokensPerSecond: Double?
    public var peakMemoryBytes: Int
    public var trainableParameters: Int
    public var totalParameters: Int
    /// "completed", "early-stop", "interrupted".
    public var endReason: String
}

/// One optimizer step's figures.
public struct StepResult: Sendable {
    public var loss: Double
    public var trainedTokens: Int
    public var realTokens: Int
    public var gradNorm: Double
    public var lr: Double
}

/// The causal-LM training loop (pretraining and SFT with every method): micro-batches from a
/// `DatasetReader` (optionally mixed with replay rows), gradient accumulation normalised by the trained
/// tokens of the whole optimizer step, AdamW with groups + warmup/decay, evaluation, early stopping,
/// checkpoints and exact resume (via `TrainingSession`).
public final class Trainer {
    public let config: TrainerConfig
    public let model: CausalLMModel
    public let session: TrainingSession
    public let trainData: DatasetReader
    public let evalData: DatasetReader?
    public let replayData: DatasetReader?
    public let stepsPerEpoch: Int
    public let totalSteps: Int
    /// The ranks of a data-parallel run (one process: every call is a no-op).
    public let parallel: DataParallel
    /// Per-step losses of this process (tests compare them across resumes).
    public private(set) var stepLosses: [Double] = []

    public init(config: TrainerConfig, model: CausalLMModel, train: DatasetReader, eval: DatasetReader? = nil,
                replay: DatasetReader? = nil, run: RunFolder, progress: ProgressReporter = ProgressReporter(),
                parallel: DataParallel? = nil) throws {
        try config.validate()
        try model.checkPositions(seqLen: config.seqLen)
        guard train.count > 0 else { throw TrainingError("\(train.folder.path): the training split holds no entries") }
        if config.replayRatio > 0 && replay == nil { throw TrainingError("--replay-ratio needs --replay DATA") }
        self.config = config
        self.model = model
        self.trainData = train
        self.evalData = eval
        self.replayData = replay
        let parallel = parallel ?? DataParallel(bucketMB: config.allreduceBucketMb, timeout: config.rankTimeout,
                                                simulatedRanks: config.simulateRanks)
        // Full and LoRA weights of layer l are final once layer l's backward ran; other PEFT modules finish theirs later.
        parallel.overlap = ["full", "freeze", "lora"].contains(config.method)
        self.parallel = parallel
        let rowsPerStep = config.batchSize * config.gradAccum * parallel.ranks
        stepsPerEpoch = max(1, (train.count + rowsPerStep - 1) / rowsPerStep)
        totalSteps = config.maxSteps ?? max(1, Int((config.epochs * Double(stepsPerEpoch)).rounded(.up)))
        let schedule = LRSchedule(kind: LRSchedule.Kind(name: config.schedule)!, baseLR: config.lr,
                                  warmupSteps: config.warmup, totalSteps: totalSteps)
        progress.totalSteps = totalSteps
        try Self.applyTrainableSet(model, config: config, step: 0)
        session = try TrainingSession(run: run, parameters: { [unowned model] in model.trainableParameters },
                                      groups: Self.groups(model, config: config, names: nil), settings: config.adamW,
                                      schedule: schedule, seed: config.seed, progress: progress)
        session.checkpointEvery = config.checkpointEvery
        session.keepCheckpoints = config.keepCheckpoints
        session.isWriter = parallel.isWriter
        if config.zero1, let line = parallel.shard(session.optimizer, session: session) { progress.report(line) }
    }

    /// This run's rank layout (recorded beside the data cursor).
    public var rankLayout: RankLayout {
        RankLayout(ranks: parallel.ranks, microBatchesPerRank: config.gradAccum, rowsPerMicroBatch: config.batchSize)
    }

    /// Records the rank layout in the state: always in a data-parallel run, and in a single-process run that resumed
    /// one (a plain run's state stays as it was). Returns a note when the saved layout differs.
    func recordRankLayout() throws -> String? {
        guard parallel.ranks > 1 || session.state.extras[RankLayout.stateKey] != nil else { return nil }
        return try parallel.record(rankLayout, in: &session.state)
    }

    // MARK: trainable set

    /// Sets the decoder's trainable set for `step` (layer-wise methods; PEFT leaves the base frozen).
    static func applyTrainableSet(_ model: CausalLMModel, config: TrainerConfig, step: Int) throws {
        guard model.peft == nil else { return }
        let names = try TrainableSet.names(config: model.decoder.config, method: config.method, trainLayers: config.trainLayers,
                                           unfreezeEvery: config.unfreezeEvery, cacheFeatures: config.cacheFeatures, step: step)
        if names != model.decoder.trainable { model.decoder.trainable = names }
        model.allocateGradients()
    }

    /// Optimizer groups for the model's trainable tensors (or only `names`).
    static func groups(_ model: CausalLMModel, config: TrainerConfig, names: Set<String>?) -> [ParameterGroup] {
        let params = model.trainableParameters
        let chosen = names ?? Set(params.keys)
        if model.peft != nil {
            return TrainableSet.groups(names: Array(chosen), shapes: params.mapValues(\.shape), numLayers: model.decoder.config.numLayers,
                                       layerLrDecay: config.layerLrDecay)
        }
        return TrainableSet.decoderGroups(chosen, config: model.decoder.config, layerLrDecay: config.layerLrDecay)
    }

    /// Gradual unfreezing: adds newly unfrozen parameters to the model and optimizer before step `step + 1`.
    func updateTrainableSet() throws {
        guard model.peft == nil, config.unfreezeEvery > 0 else { return }
        try Self.applyTrainableSet(model, config: config, step: session.state.step)
        let known = Set(session.optimizer.parameterNames)
        let new = model.decoder.trainable.subtracting(known)
        guard !new.isEmpty else { return }
        for g in Self.groups(model, config: config, names: new) {
            try session.optimizer.addGroup(g, parameters: model.trainableParameters)
        }
        session.progress.message("step \(session.state.step): unfroze \(new.count) tensors (\(model.parameterCounts.trainable) trainable parameters)")
    }

    // MARK: resume

    /// Continues from a checkpoint folder: weights, optimizer, schedule position, RNG, data cursors.
    public func resume(from folder: URL) throws {
        let saved = try Checkpoint.state(at: folder)
        // The optimizer groups in the checkpoint are those of the step before it.
        try Self.applyTrainableSet(model, config: config, step: max(0, saved.step - 1))
        try session.resume(from: folder)
        if let c = session.state.dataCursor { trainData.cursor = try c.decode(Cursor.self) }
        if let r = replayData, let c = session.state.extras["replay_cursor"] { r.cursor = try c.decode(Cursor.self) }
        if let note = try recordRankLayout() { session.progress.message(note) }
    }

    /// Resumes from the newest periodic checkpoint of the run folder; false when there is none.
    @discardableResult
    public func resumeLatest() throws -> Bool {
        guard let latest = session.run.latestCheckpoint() else { return false }
        try resume(from: latest.url)
        return true
    }

    // MARK: steps

    /// The next micro-batch: `batchSize` rows, each a replay row with probability `replayRatio`.
    public func nextMicroBatch() throws -> Batch { try drawMicroBatch(read: true)! }

    /// Draws a micro-batch's rows from the streams (each row replay or training data by the shared RNG) and reads them
    /// when `read`; else only moves the cursors past them (another rank's micro-batch) and returns nil.
    func drawMicroBatch(read: Bool) throws -> Batch? {
        var examples: [Example] = []
        examples.reserveCapacity(read ? config.batchSize : 0)
        for _ in 0..<config.batchSize {
            var reader = trainData
            if let r = replayData, config.replayRatio > 0, session.state.rng.uniformDouble() < config.replayRatio { reader = r }
            if read {
                examples.append(try Self.checkedIDs(try reader.next(), reader: reader, vocabSize: model.decoder.config.vocabSize))
            } else {
                try reader.skip(1)
            }
        }
        return read ? Batch(examples, length: config.seqLen, padID: trainData.padID) : nil
    }

    /// `example` unless a token id is outside the model's vocabulary (a tokenizer with more pieces than the model's
    /// embedding, or a dataset packed for another model): then an error naming the record, its file and line.
    static func checkedIDs(_ example: Example, reader: DatasetReader, vocabSize: Int) throws -> Example {
        guard let i = example.ids.firstIndex(where: { $0 < 0 || Int($0) >= vocabSize }) else { return example }
        var start = 0
        var doc = example.documents.first
        for d in example.documents { if i < start + d.length { doc = d; break }; start += d.length }
        let sources = reader.manifest.sources
        let place = doc.map { d in "record \(d.record) (\(d.source < sources.count ? sources[d.source].path : "?"):\(d.line))" } ?? "an entry"
        throw TrainingError("token id \(example.ids[i]) ≥ vocabulary \(vocabSize) in \(place) of \(reader.folder.path): the data was tokenized with a tokenizer that has more pieces than the model's embedding")
    }

    /// Forward + backward of the micro-batches of one optimizer step into the model's gradients, each
    /// token's loss scaled by 1/(trained tokens over all of them), so the sum equals the large batch.
    /// Returns the step's mean loss. Gradients are accumulated (zero them before). Micro-batch i draws its
    /// dropout masks (when the decoder is in training mode) from counter `firstMicroBatch + i`.
    public static func accumulateGradients(_ model: CausalLMModel, microBatches: [Batch],
                                           firstMicroBatch: Int = 0) -> (loss: Double, trainedTokens: Int) {
        let total = microBatches.reduce(0) { $0 + $1.trainedTokens }
        let nll = accumulate(model, microBatches: microBatches, firstMicroBatch: firstMicroBatch, totalTrainedTokens: total)
        return (total > 0 ? nll / Double(total) : 0, total)
    }

    /// The same with the step's trained-token count given (a data-parallel step counts the tokens of every rank);
    /// returns the summed NLL. `lastBackward` runs after each layer of the last backward (the gradient sum's hook).
    static func accumulate(_ model: CausalLMModel, microBatches: [Batch], firstMicroBatch: Int, totalTrainedTokens total: Int,
                           lastBackward: ((Int) -> Void)? = nil) -> Double {
        let scale = GradientAccumulation.lossScale(totalTrainedTokens: total)
        var nll = 0.0
        for (i, mb) in microBatches.enumerated() {
            model.decoder.dropoutStep = UInt64(firstMicroBatch + i)
            let r = model.loss(mb, gradientScale: scale)
            nll += r.nllSum
            if i == microBatches.count - 1 { model.decoder.afterLayerBackward = lastBackward }
            model.backward()
            model.decoder.afterLayerBackward = nil
        }
        return nll
    }

    /// One optimizer step over `gradAccum` micro-batches.
    /// One optimizer step over `gradAccum` micro-batches (on each rank of a data-parallel run: the step's rows are
    /// `ranks × gradAccum` micro-batches, this rank computing its own run of `gradAccum` of them).
    public func trainStep() throws -> StepResult {
        try updateTrainableSet()
        let k = config.gradAccum, dp = parallel
        var batches: [Batch] = []
        for m in 0..<(k * dp.ranks) {
            if let b = try drawMicroBatch(read: dp.owns(microBatch: m, perRank: k)) { batches.append(b) }
        }
        model.zeroGradients()
        let lr = session.currentLR
        // Dropout only for the training forwards; evaluation runs with `training` off.
        model.decoder.dropout = Float(config.dropout)
        model.decoder.dropoutSeed = config.seed
        model.decoder.training = true
        PEFTMethods.setTraining(model.peft, true)   // LoRA dropout on from the first step (and after a resume)
        // The loss is normalised by the trained tokens of the whole step, over every rank, before any backward.
        let tokens = try dp.sum([batches.reduce(0) { $0 + $1.trainedTokens }], what: "counting the step's trained tokens")[0]
        let gradients = model.gradients
        let first = session.state.microBatches
        let nll: Double
        if dp.isSimulated {
            nll = dp.simulate(gradients, zero: { model.zeroGradients() }) { r in
                Self.accumulate(model, microBatches: Array(batches[(r * k)..<((r + 1) * k)]), firstMicroBatch: first + r * k,
                                totalTrainedTokens: tokens)
            }
        } else {
            nll = Self.accumulate(model, microBatches: batches, firstMicroBatch: first + dp.rank * k,
                                  totalTrainedTokens: tokens, lastBackward: dp.layerHook(for: gradients))
        }
        model.decoder.training = false
        try dp.allReduce(gradients)
        let sums = try dp.sum([nll, Double(batches.reduce(0) { $0 + $1.realTokens })], what: "summing the step's loss")
        let loss = tokens > 0 ? sums[0] / Double(tokens) : 0
        let report = try session.step(gradients: gradients)
        try dp.shareUpdatedParameters(session.optimizer, model.trainableParameters)
        session.state.microBatches += k * dp.ranks
        session.state.tokensSeen += tokens
        session.state.epoch = trainData.cursor.epoch
        session.state.dataCursor = try JSONValue(encoding: trainData.cursor)
        if let r = replayData { session.state.extras["replay_cursor"] = try JSONValue(encoding: r.cursor) }
        _ = try recordRankLayout()
        stepLosses.append(loss)
        return StepResult(loss: loss, trainedTokens: tokens, realTokens: Int(sums[1]), gradNorm: report.gradNorm, lr: lr)
    }

    /// Measured at every evaluation beside the held-out loss (e.g. exact match of generated answers): metrics logged
    /// under their names, and a short text for the progress line.
    public var extraEvaluation: (() throws -> (metrics: [String: Double], text: String))?

    /// Evaluates on the held-out split (nil without one).
    public func evaluate() throws -> EvalResult? {
        guard let e = evalData, e.count > 0 else { return nil }
        return try CausalLMEvaluation.evaluate(model, reader: e, batchSize: config.batchSize, seqLen: config.seqLen,
                                               maxBatches: config.evalBatches)
    }

    var evalInterval: Int? {
        if config.evalEvery < 0 || evalData == nil { return nil }
        return config.evalEvery > 0 ? config.evalEvery : stepsPerEpoch
    }

    // MARK: loop

    /// Runs until `totalSteps`, early stopping or a stop request of the sink (Ctrl-C in the CLI); always ends with a
    /// checkpoint and loss.svg.
    public func fit() throws -> TrainingSummary {
        let p = session.progress
        var endReason = "completed"
        var lastEval: EvalResult? = nil
        // The step of the last evaluation, kept in the checkpoint: a run resumed from its final checkpoint (killed in
        // the final stage) evaluates again only if that checkpoint's step was not evaluated in the loop.
        var evalAtStep = try session.state.extras["eval_step"]?.decode(Int.self) ?? -1
        let startLoss = stepLosses.count
        p.startClock(afterStep: session.state.step)
        while session.state.step < totalSteps {
            let r = try trainStep()
            let step = session.state.step
            p.step(step, loss: r.loss, lr: r.lr, tokens: r.realTokens)
            var rec: [String: Any] = ["loss": r.loss, "lr": r.lr, "grad_norm": r.gradNorm, "trained_tokens": r.trainedTokens,
                                      "epoch": Double(trainData.cursor.epoch) + Double(trainData.cursor.position) / Double(trainData.count)]
            if let tps = p.tokensPerSecond { rec["tokens_per_s"] = tps }
            try session.log(rec)
            if let every = evalInterval, step % every == 0 || step == totalSteps, let e = try evaluate() {
                lastEval = e; evalAtStep = step
                session.state.extras["eval_step"] = .int(Int64(step))
                let extra = try extraEvaluation?()
                try session.log(e.record().merging(extra?.metrics ?? [:]) { a, _ in a })
                let improved = try session.evaluated(loss: e.loss, saveBest: config.saveBest)
                var metrics = ["eval_loss": e.loss, "eval_ppl": e.perplexity]
                if let a = e.accuracy { metrics["eval_accuracy"] = a }
                metrics.merge(extra?.metrics ?? [:]) { a, _ in a }
                p.evaluation(EvaluationProgress(step: step, metrics: metrics, improved: improved,
                                                text: String(format: "step %d: eval loss %.4f · ppl %.2f", step, e.loss, e.perplexity)
                                                    + (e.accuracy.map { String(format: " · accuracy %.3f", $0) } ?? "")
                                                    + (extra.map { " · \($0.text)" } ?? "") + (improved ? " (best)" : "")))
                if session.state.shouldStopEarly(patience: config.patience) {
                    endReason = "early-stop"
                    p.message("early stop: no eval improvement in \(config.patience) evaluations")
                    break
                }
            }
            if session.shouldCheckpoint {
                try parallel.checkReplicas(model.trainableParameters, step: step)
                try session.checkpoint()
            }
            if try parallel.anyStop(p.stopRequested) { endReason = "interrupted"; break }
        }
        p.done(step: session.state.step, reason: endReason)
        try parallel.checkReplicas(model.trainableParameters, step: session.state.step)
        // Under ZeRO-1 a checkpoint is a collective: every rank must decide alike, from what it knows itself.
        let lastCheckpoint = session.optimizer.shard != nil ? session.lastCheckpointStep : session.run.latestCheckpoint()?.step
        if lastCheckpoint != session.state.step { try session.checkpoint() }
        if endReason == "interrupted" { p.message("stopped at step \(session.state.step); checkpoint written (resume with --resume)") }
        if evalAtStep != session.state.step, endReason != "interrupted", let e = try evaluate() {
            lastEval = e
            try session.log(e.record().merging(try extraEvaluation?().metrics ?? [:]) { a, _ in a })
            try session.evaluated(loss: e.loss, saveBest: config.saveBest)
        }
        try session.writeLossCurve()
        let losses = stepLosses[startLoss...]
        let counts = model.parameterCounts   // at the end: gradual unfreezing has grown the trainable set since step 0
        return TrainingSummary(steps: session.state.step, totalSteps: totalSteps, firstLoss: losses.first, lastLoss: losses.last,
                               bestEvalLoss: session.state.bestEvalLoss, bestStep: session.state.bestStep, finalEval: lastEval,
                               tokensPerSecond: p.tokensPerSecond, peakMemoryBytes: ResourceUsage.peakResidentBytes(),
                               trainableParameters: counts.trainable, totalParameters: counts.total, endReason: endReason)
    }
}
