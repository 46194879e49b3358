import Foundation
import FinchKernels
import FinchModel
import FinchData
import FinchDistributed

/// Pairwise accuracy, mean margin and mean Bradley–Terry loss of a reward model on some pairs.
public struct PairwiseEvaluation: Codable, Equatable, Sendable {
    public var pairs: Int
    public var accuracy: Double
    public var meanMargin: Double
    public var loss: Double

    /// Standard error of the accuracy, sqrt(p(1 − p)/n).
    public var accuracyStandardError: Double { (accuracy * (1 - accuracy) / Double(max(1, pairs))).squareRoot() }
}

/// `finch reward`: trains a scalar score head (and the trunk, full or LoRA) with the Bradley–Terry loss
/// −log σ(r_chosen − r_rejected − margin) (+ centering), evaluates pairwise accuracy, writes a
/// `LlamaForSequenceClassification` folder (`final/`, and `best/` at the best eval loss).
public final class RewardTrainer {
    public let config: RewardConfig
    public let source: LoadedModelFolder
    public let reward: RewardModel
    public let train: [EncodedPair]
    public let eval: [EncodedPair]
    public let run: RunFolder
    public let progress: ProgressReporter

    public init(config: RewardConfig, progress sink: any ProgressSink = NoProgress()) throws {
        try config.validate()
        let progress = ProgressReporter(sink: sink)
        self.progress = progress
        source = try LoadedModelFolder(URL(fileURLWithPath: config.reward.model), templateName: config.common.template)
        var config = config
        RLHFSetup.fitLength(&config.common, source.folder, progress)
        self.config = config
        let o = config.common
        let pairs = try PreferencePairs.load(config.reward.data.map { URL(fileURLWithPath: $0) }, encoder: source.encoder, maxLength: o.maxLength,
                                             limit: config.reward.limit, overlong: o.overlong, report: RLHFSetup.noteOverlong(progress))
        if let files = config.reward.evalData, !files.isEmpty {
            train = pairs
            eval = try PreferencePairs.load(files.map { URL(fileURLWithPath: $0) }, encoder: source.encoder, maxLength: o.maxLength,
                                            overlong: o.overlong, report: RLHFSetup.noteOverlong(progress))
        } else {
            (train, eval) = PreferencePairs.split(pairs, evalFraction: o.evalFraction, seed: o.seed)
        }
        let decoder = try RewardModel.sequenceClassifier(config: source.folder.config, parameters: source.folder.parameters,
                                                         padID: source.padID, seed: o.seed)
        let peft = try RLHFSetup.peft(o, config.peft, decoder: decoder, tokenizer: source.tokenizer)
        reward = try RewardModel(decoder: decoder, peft: peft, padID: source.padID)
        run = try RLHFSetup.runFolder(config.reward.out, recipe: Recipe.of(config))
        progress.totalSteps = RLHFSetup.totalSteps(o, pairs: train.count)
    }

    /// Optimizer steps of the run.
    public var totalSteps: Int {
        RLHFSetup.totalSteps(config.common, pairs: train.count)
    }

    /// Rewards (chosen, rejected) of pairs, in batches, without gradients.
    public func score(_ pairs: [EncodedPair]) -> (chosen: [Float], rejected: [Float]) {
        var c: [Float] = [], r: [Float] = []
        let B = max(1, config.common.batchSize)
        PEFTMethods.setTraining(reward.model.peft, false)
        defer { PEFTMethods.setTraining(reward.model.peft, true) }
        for start in stride(from: 0, to: pairs.count, by: B) {
            let part = pairs[start..<min(pairs.count, start + B)]
            let rows = part.map(\.chosenSequence) + part.map(\.rejectedSequence)
            let (ids, T, _) = PreferencePairs.pad(rows, padID: reward.padID)
            let s = reward.rewards(ids: ids, batch: rows.count, length: T)
            c += s[..<part.count]
            r += s[part.count...]
        }
        return (c, r)
    }

    public func evaluate(_ pairs: [EncodedPair]) -> PairwiseEvaluation? {
        guard !pairs.isEmpty else { return nil }
        let (c, r) = score(pairs)
        let l = RewardLoss.compute(chosen: c, rejected: r)
        return PairwiseEvaluation(pairs: pairs.count, accuracy: l.accuracy, meanMargin: l.meanMargin, loss: l.loss)
    }

    /// Runs the training loop; returns the held-out evaluation before and after.
    @discardableResult
    public func fit() throws -> (before: PairwiseEvaluation?, after: PairwiseEvaluation?) {
        let o = config.common
        let total = totalSteps
        reward.allocateGradients()
        let rm = reward
        let session = try RLHFSetup.session(run: run, o: o, totalSteps: total, parameters: { rm.trainableParameters }, progress: progress)
        let dp = DataParallel(bucketMB: o.allreduceBucketMb, timeout: o.rankTimeout, simulatedRanks: o.simulateRanks)
        let src = source
        session.writeModel = { try rm.save(to: $0, tokenizer: src.tokenizerURL, templateName: src.template.name) }
        try RLHFSetup.resumeIfAsked(session, resume: o.resume)
        let before = session.state.step == 0 ? evaluate(eval) : nil
        if let b = before {
            progress.message(String(format: "eval before: pairwise accuracy %.3f ± %.3f, mean margin %.3f on %d pairs", b.accuracy, b.accuracyStandardError, b.meanMargin, b.pairs))
            try session.log(["eval_loss": b.loss, "eval_accuracy": b.accuracy, "eval_margin": b.meanMargin])
        }
        // LoRA dropout on while training (also after a resume), masks following the step.
        PEFTMethods.setTraining(rm.model.peft, true)
        while session.state.step < total {
            if try dp.anyStop(progress.stopRequested) { try RLHFSetup.stop(session) }
            let step = session.state.step
            // One rank's pairs: forward, Bradley–Terry loss, backward of its share of the mean; returns its figures.
            func rankPass(_ r: Int) throws -> [Double] {
                let idx = try dp.pairBatch(step: step, count: train.count, batchSize: o.batchSize, seed: o.seed, rank: r)
                let part = idx.map { train[$0] }
                let rows = part.map(\.chosenSequence) + part.map(\.rejectedSequence)
                let (ids, T, _) = PreferencePairs.pad(rows, padID: rm.padID)
                rm.decoder.dropoutStep = UInt64(step)
                let rewards = rm.rewards(ids: ids, batch: rows.count, length: T)
                var (l, grad) = RewardLoss.compute(stackedRewards: rewards, margin: config.reward.noMargin ? nil : part.map(\.margin),
                                                   centeringCoefficient: config.reward.centerRewards)
                try RLHFSetup.requireFinite(l.loss, "reward loss", step: step + 1)
                dp.shareOfMean(&grad)
                rm.backward(dRewards: grad)
                return [l.loss, l.accuracy, l.meanMargin, Double(ids.count)]
            }
            rm.zeroGradients()
            let mine = dp.isSimulated ? try dp.simulate(rm.gradients, zero: { rm.zeroGradients() }, rankStep: rankPass) : try rankPass(dp.rank)
            try dp.allReduce(rm.gradients)
            // The step's figures over every rank's pairs (this rank's alone with one process).
            let means = try dp.mean(Array(mine[..<3]), what: "averaging the step's loss")
            let loss = (loss: means[0], accuracy: means[1], meanMargin: means[2])
            let tokens = Int(mine[3]) * (dp.isSimulated ? 1 : dp.ranks)
            let report = try session.step(gradients: rm.gradients)
            try RLHFSetup.requireFinite(report.gradNorm, "gradient norm", step: session.state.step)
            session.state.microBatches += 1
            session.state.tokensSeen += tokens
            progress.step(session.state.step, loss: loss.loss, lr: session.schedule.lr(at: session.state.step - 1), tokens: tokens,
                          fields: [ProgressField("acc", String(format: "%.2f", loss.accuracy))])
            var record: [String: Any] = ["loss": loss.loss, "accuracy": loss.accuracy, "margin": loss.meanMargin,
                                         "lr": session.schedule.lr(at: session.state.step - 1), "grad_norm": report.gradNorm]
            if let tps = progress.tokensPerSecond { record["tokens_per_s"] = tps }
            try session.log(record)
            if o.evalEvery > 0, session.state.step % o.evalEvery == 0, let e = evaluate(eval) {
                try session.log(["eval_loss": e.loss, "eval_accuracy": e.accuracy, "eval_margin": e.meanMargin], forceCurve: true)
                let improved = try session.evaluated(loss: e.loss, saveBest: true)
                progress.evaluation(EvaluationProgress(step: session.state.step, metrics: ["eval_loss": e.loss, "eval_accuracy": e.accuracy],
                                                       improved: improved, text: String(format: "step %d: eval pairwise accuracy %.3f, loss %.4f", session.state.step, e.accuracy, e.loss) + (improved ? " (best)" : "")))
            }
            if session.shouldCheckpoint { try session.checkpoint() }
        }
        progress.done(step: session.state.step, reason: "completed")
        // The last checkpoint before the final stage (as sft does), so a run killed in that stage resumes from it and
        // redoes the stage: the evaluation after and final/.
        if session.checkpointEvery > 0, session.run.latestCheckpoint()?.step != session.state.step { try session.checkpoint() }
        let after = evaluate(eval)
        if let a = after {
            try session.log(["eval_loss": a.loss, "eval_accuracy": a.accuracy, "eval_margin": a.meanMargin], forceCurve: true)
            progress.message(String(format: "eval after: pairwise accuracy %.3f ± %.3f, mean margin %.3f on %d pairs", a.accuracy, a.accuracyStandardError, a.meanMargin, a.pairs))
        }
        try session.writeLossCurve()
        if dp.isWriter {
            try RunFolder.writeAtomically(to: run.url.appendingPathComponent("final")) {
                try rm.save(to: $0, tokenizer: src.tokenizerURL, templateName: src.template.name)
            }
        }
        return (before, after)
    }
}
