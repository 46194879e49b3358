import Foundation
import FinchKernels
import FinchModel
import FinchDistributed
import FinchData

/// Loss, implicit-reward accuracy and margin of a policy on held-out pairs.
public struct DPOEvaluation: Codable, Equatable, Sendable {
    public var pairs: Int
    public var loss: Double
    public var rewardAccuracy: Double
    public var meanMargin: Double
}

/// `finch dpo`: Direct Preference Optimisation with TRL's sigmoid loss (`DPOLoss`). Sequence log-probs are
/// sums over the reply tokens; the reference log-probs are computed once, before training, with the initial
/// model (a LoRA policy with its adapter switched off), so no second model is held.
public final class DPOTrainer {
    public let config: DPOConfig
    public let source: LoadedModelFolder
    public let policy: PolicyModel
    public let train: [EncodedPair]
    public let eval: [EncodedPair]
    public let run: RunFolder
    public let progress: ProgressReporter
    /// Reference (chosen, rejected) sequence log-probs of `train` and `eval`.
    public private(set) var refTrain: (chosen: [Float], rejected: [Float]) = ([], [])
    public private(set) var refEval: (chosen: [Float], rejected: [Float]) = ([], [])

    public init(config: DPOConfig, progress sink: any ProgressSink = NoProgress()) throws {
        try config.validate()
        let progress = ProgressReporter(sink: sink)
        self.progress = progress
        source = try LoadedModelFolder(URL(fileURLWithPath: config.dpo.model), templateName: config.common.template, causalLM: "finch dpo --model")
        var config = config
        RLHFSetup.fitLength(&config.common, source.folder, progress)
        self.config = config
        let o = config.common
        let pairs = try PreferencePairs.load(config.dpo.data.map { URL(fileURLWithPath: $0) }, encoder: source.encoder, maxLength: o.maxLength,
                                             limit: config.dpo.limit, overlong: o.overlong, report: RLHFSetup.noteOverlong(progress))
        (train, eval) = PreferencePairs.split(pairs, evalFraction: o.evalFraction, seed: o.seed)
        let decoder = try source.decoder()
        let peft = try RLHFSetup.peft(o, config.peft, decoder: decoder, tokenizer: source.tokenizer)
        policy = PolicyModel(model: CausalLMModel(decoder: decoder, peft: peft))
        run = try RLHFSetup.runFolder(config.dpo.out, recipe: Recipe.of(config))
        progress.totalSteps = RLHFSetup.totalSteps(o, pairs: train.count)
    }

    public var totalSteps: Int {
        RLHFSetup.totalSteps(config.common, pairs: train.count)
    }

    /// Forward of pairs: (chosen, rejected) sums of reply-token log-probs; keeps the forward for `backward`.
    func sequenceLogProbs(_ part: [EncodedPair]) -> (chosen: [Float], rejected: [Float], spans: [Range<Int>], T: Int) {
        let rows = part.map(\.chosenSequence) + part.map(\.rejectedSequence)
        let (ids, T, lengths) = PreferencePairs.pad(rows, padID: source.padID)
        let mask = ids.indices.map { $0 % T < lengths[$0 / T] ? 1 : 0 }
        let (lp, _, _) = policy.forward(ids: ids, batch: rows.count, length: T, mask: mask)
        var sums: [Float] = [], spans: [Range<Int>] = []
        for (b, row) in rows.enumerated() {
            let start = b < part.count ? part[b].prompt.count : part[b - part.count].prompt.count
            let span = (b * T + max(1, start))..<(b * T + row.count)
            spans.append(span)
            var s: Float = 0
            for i in span { s += lp[i] }
            sums.append(s)
        }
        return (Array(sums[..<part.count]), Array(sums[part.count...]), spans, T)
    }

    /// Completion tokens of each pair's chosen and rejected reply (the spans `sequenceLogProbs` sums).
    static func replyLengths(_ part: ArraySlice<EncodedPair>) -> (chosen: [Int], rejected: [Int]) {
        (part.map { $0.chosenSequence.count - max(1, $0.prompt.count) }, part.map { $0.rejectedSequence.count - max(1, $0.prompt.count) })
    }

    /// The configured loss on policy log-probs of `pairs` (and their reference log-probs, unused by SimPO).
    func loss(_ pairs: ArraySlice<EncodedPair>, policy: (chosen: [Float], rejected: [Float]),
              reference: (chosen: [Float], rejected: [Float])) -> DPOLoss.Result {
        let lengths = Self.replyLengths(pairs)
        return DPOLoss.compute(policyChosen: policy.chosen, policyRejected: policy.rejected, referenceChosen: reference.chosen,
                               referenceRejected: reference.rejected, beta: config.dpo.beta, variant: config.dpo.lossType,
                               labelSmoothing: config.dpo.labelSmoothing, chosenLengths: lengths.chosen,
                               rejectedLengths: lengths.rejected, simpoGamma: config.dpo.simpoGamma)
    }

    /// Sequence log-probs of all pairs without gradients.
    func logProbs(_ pairs: [EncodedPair]) -> (chosen: [Float], rejected: [Float]) {
        var c: [Float] = [], r: [Float] = []
        let B = max(1, config.common.batchSize)
        policy.setTraining(false)
        defer { policy.setTraining(true) }
        for start in stride(from: 0, to: pairs.count, by: B) {
            let x = sequenceLogProbs(Array(pairs[start..<min(pairs.count, start + B)]))
            c += x.chosen; r += x.rejected
        }
        return (c, r)
    }

    public func evaluate() -> DPOEvaluation? {
        guard !eval.isEmpty else { return nil }
        let r = loss(eval[...], policy: logProbs(eval), reference: refEval)
        return DPOEvaluation(pairs: eval.count, loss: r.loss, rewardAccuracy: r.rewardAccuracy, meanMargin: r.marginsMean)
    }

    @discardableResult
    public func fit() throws -> (before: DPOEvaluation?, after: DPOEvaluation?) {
        let o = config.common
        let total = totalSteps
        // Reference log-probs once, from the initial model (adapter off); SimPO has no reference.
        if config.dpo.lossType.usesReference {
            policy.adapterEnabled = false
            refTrain = logProbs(train)
            refEval = logProbs(eval)
            policy.adapterEnabled = true
            progress.message("reference log-probs computed for \(train.count) train + \(eval.count) eval pairs")
        }
        policy.model.allocateGradients()
        let pm = policy.model
        let session = try RLHFSetup.session(run: run, o: o, totalSteps: total, parameters: { pm.trainableParameters }, progress: progress)
        let dp = DataParallel(bucketMB: o.allreduceBucketMb, timeout: o.rankTimeout, simulatedRanks: o.simulateRanks)
        session.writeModel = { [unowned self] in try self.policy.saveMerged(to: $0, source: self.source) }
        try RLHFSetup.resumeIfAsked(session, resume: o.resume)
        let before = session.state.step == 0 ? evaluate() : nil
        if let b = before { try session.log(["eval_loss": b.loss, "eval_accuracy": b.rewardAccuracy, "eval_margin": b.meanMargin]) }
        // LoRA dropout on while training, with masks following the step (so a resumed run draws the same).
        policy.setTraining(true)
        while session.state.step < total {
            if try dp.anyStop(progress.stopRequested) { try RLHFSetup.stop(session) }
            let step = session.state.step
            // One rank's pairs: forward, DPO loss against the reference, backward of its share of the mean.
            func rankPass(_ rank: Int) throws -> [Double] {
                let idx = try dp.pairBatch(step: step, count: train.count, batchSize: o.batchSize, seed: o.seed, rank: rank)
                let part = idx.map { train[$0] }
                pm.decoder.dropoutStep = UInt64(step)
                let x = sequenceLogProbs(part)
                let reference = config.dpo.lossType.usesReference
                    ? (idx.map { refTrain.chosen[$0] }, idx.map { refTrain.rejected[$0] }) : ([], [])
                let r = loss(part[...], policy: (x.chosen, x.rejected), reference: reference)
                try RLHFSetup.requireFinite(r.loss, "DPO loss", step: step + 1)
                var d = [Float](repeating: 0, count: 2 * part.count * x.T)
                for (b, span) in x.spans.enumerated() {
                    let g = b < part.count ? r.gradPolicyChosen[b] : r.gradPolicyRejected[b - part.count]
                    for i in span { d[i] = g }
                }
                dp.shareOfMean(&d)
                policy.backward(dLogprobs: d)
                return [r.loss, r.rewardAccuracy, r.marginsMean, r.rewardsChosenMean, r.rewardsRejectedMean, Double(2 * part.count * x.T)]
            }
            pm.zeroGradients()
            let mine = dp.isSimulated ? try dp.simulate(pm.gradients, zero: { pm.zeroGradients() }, rankStep: rankPass) : try rankPass(dp.rank)
            try dp.allReduce(pm.gradients)
            let means = try dp.mean(Array(mine[..<5]), what: "averaging the step's loss")
            let tokens = Int(mine[5]) * (dp.isSimulated ? 1 : dp.ranks)
            let report = try session.step(gradients: pm.gradients)
            try RLHFSetup.requireFinite(report.gradNorm, "gradient norm", step: session.state.step)
            session.state.microBatches += 1
            // The step's figures over every rank's pairs (this rank's alone with one process).
            let (lossAll, accuracy, margin) = (means[0], means[1], means[2])
            progress.step(session.state.step, loss: lossAll, lr: session.schedule.lr(at: session.state.step - 1), tokens: tokens,
                          fields: [ProgressField("acc", String(format: "%.2f", accuracy)), ProgressField("margin", String(format: "%.3f", margin))])
            var record: [String: Any] = ["loss": lossAll, "reward_accuracy": accuracy, "margin": margin,
                                         "rewards_chosen": means[3], "rewards_rejected": means[4],
                                         "lr": session.schedule.lr(at: session.state.step - 1), "grad_norm": report.gradNorm]
            if let tps = progress.tokensPerSecond { record["tokens_per_s"] = tps }
            try session.log(record)
            if o.evalEvery > 0, session.state.step % o.evalEvery == 0, let e = evaluate() {
                try session.log(["eval_loss": e.loss, "eval_accuracy": e.rewardAccuracy, "eval_margin": e.meanMargin], forceCurve: true)
                let improved = try session.evaluated(loss: e.loss, saveBest: true)
                progress.evaluation(EvaluationProgress(step: session.state.step, metrics: ["eval_loss": e.loss, "eval_accuracy": e.rewardAccuracy],
                                                       improved: improved, text: String(format: "step %d: eval DPO loss %.4f, reward accuracy %.3f", session.state.step, e.loss, e.rewardAccuracy) + (improved ? " (best)" : "")))
            }
            if session.shouldCheckpoint { try session.checkpoint() }
        }
        progress.done(step: session.state.step, reason: "completed")
        let after = evaluate()
        if let a = after { try session.log(["eval_loss": a.loss, "eval_accuracy": a.rewardAccuracy, "eval_margin": a.meanMargin]) }
        try session.writeLossCurve()
        if dp.isWriter { try RunFolder.writeAtomically(to: run.url.appendingPathComponent("final")) { try self.policy.saveMerged(to: $0, source: self.source) } }
        return (before, after)
    }
}
