import Foundation
import FinchKernels
import FinchModel
import FinchData

/// Loss, KL reference point and mean implicit rewards of a policy on held-out KTO examples.
public struct KTOEvaluation: Codable, Equatable, Sendable {
    public var examples: Int
    public var loss: Double
    public var kl: Double
    public var desirableReward: Double?
    public var undesirableReward: Double?
}

/// `finch kto`: Kahneman–Tversky Optimisation (TRL `KTOTrainer`) on unpaired thumbs-up / thumbs-down completions.
/// As in `finch dpo`, completion log-probs are sums over the reply tokens and the reference log-probs come from the
/// initial model (a LoRA policy with its adapter off), computed once before training — for the examples and for
/// every step's mismatched pairs (prompt i with the completion of batch row i − 1, TRL's KL pairs), whose batches
/// are a function of the step. The policy's KL log-probs are taken without gradient each step.
public final class KTOTrainer {
    public let config: KTOConfig
    public let source: LoadedModelFolder
    public let policy: PolicyModel
    public let train: [EncodedExample]
    public let eval: [EncodedExample]
    public let run: RunFolder
    public let progress: ProgressReporter
    /// Reference completion log-probs of `train` and `eval`, and of each training step's KL pairs.
    private var refTrain: [Float] = [], refEval: [Float] = [], refKL: [[Float]] = [], refEvalKL: [Float] = []

    public init(config: KTOConfig, progress sink: any ProgressSink = NoProgress()) throws {
        try config.validate()
        let progress = ProgressReporter(sink: sink)
        self.progress = progress
        source = try LoadedModelFolder(URL(fileURLWithPath: config.kto.model), templateName: config.common.template, causalLM: "finch kto --model")
        var config = config
        RLHFSetup.fitLength(&config.common, source.folder, progress)
        self.config = config
        let o = config.common
        let examples = try KTOExamples.load(config.kto.data.map { URL(fileURLWithPath: $0) }, encoder: source.encoder, maxLength: o.maxLength,
                                            limit: config.kto.limit, overlong: o.overlong, report: RLHFSetup.noteOverlong(progress))
        (train, eval) = PreferencePairs.split(examples, evalFraction: o.evalFraction, seed: o.seed)
        guard train.count >= o.batchSize else {
            throw TrainingError("\(train.count) training examples for a batch of \(o.batchSize): give more data or a smaller --batch-size")
        }
        let decoder = try source.decoder()
        let peft = try RLHFSetup.peft(o, config.peft, decoder: decoder, tokenizer: source.tokenizer)
        policy = PolicyModel(model: CausalLMModel(decoder: decoder, peft: peft))
        run = try RunFolder(url: URL(fileURLWithPath: config.kto.out))
        try Recipe.of(config).write(to: run)
        progress.totalSteps = totalSteps
    }

    public var totalSteps: Int { RLHFSetup.totalSteps(config.common, pairs: train.count) }

    /// Row i's KL pair: its prompt with the completion of row i − 1 (cyclically), as TRL's collator builds them.
    static func klRows(_ part: [EncodedExample]) -> [(prompt: [Int], completion: [Int])] {
        part.indices.map { i in (part[i].prompt, part[(i + part.count - 1) % part.count].completion) }
    }

    /// Forward of prompt + completion rows: the sums of completion-token log-probs; keeps the forward for `backward`.
    func completionLogProbs(_ rows: [(prompt: [Int], completion: [Int])]) -> (sums: [Float], spans: [Range<Int>], T: Int) {
        let seqs = rows.map { $0.prompt + $0.completion }
        let (ids, T, lengths) = PreferencePairs.pad(seqs, padID: source.padID)
        let mask = ids.indices.map { $0 % T < lengths[$0 / T] ? 1 : 0 }
        let (lp, _, _) = policy.forward(ids: ids, batch: rows.count, length: T, mask: mask)
        var sums: [Float] = [], spans: [Range<Int>] = []
        for (b, r) in rows.enumerated() {
            let span = (b * T + max(1, r.prompt.count))..<(b * T + seqs[b].count)
            spans.append(span)
            var s: Float = 0
            for i in span { s += lp[i] }
            sums.append(s)
        }
        return (sums, spans, T)
    }

    /// Completion log-probs of many rows in batches, without gradients.
    func logProbs(_ rows: [(prompt: [Int], completion: [Int])]) -> [Float] {
        let B = max(1, config.common.batchSize)
        policy.setTraining(false)
        defer { policy.setTraining(true) }
        var out: [Float] = []
        for start in stride(from: 0, to: rows.count, by: B) {
            out += completionLogProbs(Array(rows[start..<min(rows.count, start + B)])).sums
        }
        return out
    }

    func loss(_ part: [EncodedExample], policy p: [Float], reference: [Float], klPolicy: [Float], klReference: [Float]) -> KTOLoss.Result {
        KTOLoss.compute(policy: p, reference: reference, desirable: part.map(\.desirable), klPolicy: klPolicy, klReference: klReference,
                        beta: config.kto.beta, desirableWeight: config.kto.desirableWeight,
                        undesirableWeight: config.kto.undesirableWeight, variant: config.kto.lossType)
    }

    /// The held-out loss with the whole held-out set as one batch for the KL reference point.
    public func evaluate() -> KTOEvaluation? {
        guard !eval.isEmpty else { return nil }
        let usesKL = config.kto.lossType.usesReferencePoint
        let kl = usesKL && eval.count > 1 ? logProbs(Self.klRows(eval)) : []
        let r = KTOLoss.compute(policy: logProbs(eval.map { ($0.prompt, $0.completion) }), reference: refEval,
                                desirable: eval.map(\.desirable), klPolicy: kl, klReference: usesKL && eval.count > 1 ? refEvalKL : [],
                                beta: config.kto.beta, desirableWeight: config.kto.desirableWeight,
                                undesirableWeight: config.kto.undesirableWeight,
                                variant: usesKL && eval.count < 2 ? .apoZeroUnpaired : config.kto.lossType)
        return KTOEvaluation(examples: eval.count, loss: r.loss, kl: r.kl, desirableReward: r.desirableRewardMean,
                             undesirableReward: r.undesirableRewardMean)
    }

    func batch(step: Int) -> [Int] {
        RLHFSetup.batchIndices(step: step, count: train.count, batchSize: config.common.batchSize, seed: config.common.seed)
    }

    @discardableResult
    public func fit() throws -> (before: KTOEvaluation?, after: KTOEvaluation?) {
        let o = config.common
        let total = totalSteps
        let usesKL = config.kto.lossType.usesReferencePoint
        // Reference log-probs once, from the initial model (adapter off).
        policy.adapterEnabled = false
        refTrain = logProbs(train.map { ($0.prompt, $0.completion) })
        refEval = logProbs(eval.map { ($0.prompt, $0.completion) })
        if usesKL {
            refKL = (0..<total).map { s in logProbs(Self.klRows(batch(step: s).map { train[$0] })) }
            if eval.count > 1 { refEvalKL = logProbs(Self.klRows(eval)) }
        }
        policy.adapterEnabled = true
        progress.message("reference log-probs computed for \(train.count) train + \(eval.count) eval examples\(usesKL ? " and \(total) steps of KL pairs" : "")")
        policy.model.allocateGradients()
        let pm = policy.model
        let session = try RLHFSetup.session(run: run, o: o, totalSteps: total, parameters: { pm.trainableParameters }, progress: progress)
        session.writeModel = { [unowned self] in try self.policy.saveMerged(to: $0, source: self.source) }
        try RLHFSetup.resumeIfAsked(session, resume: o.resume)
        func record(_ e: KTOEvaluation) -> [String: Any] {
            var r: [String: Any] = ["eval_loss": e.loss, "eval_kl": e.kl]
            if let d = e.desirableReward { r["eval_rewards_desirable"] = d }
            if let u = e.undesirableReward { r["eval_rewards_undesirable"] = u }
            return r
        }
        let before = session.state.step == 0 ? evaluate() : nil
        if let b = before { try session.log(record(b)) }
        policy.setTraining(true)
        progress.startClock(afterStep: session.state.step)
        while session.state.step < total {
            if progress.stopRequested { try RLHFSetup.stop(session) }
            let step = session.state.step
            let idx = batch(step: step)
            let part = idx.map { train[$0] }
            // The policy's KL log-probs: no gradient flows through the reference point.
            let klPolicy = usesKL ? logProbs(Self.klRows(part)) : []
            pm.zeroGradients()
            pm.decoder.dropoutStep = UInt64(step)
            let x = completionLogProbs(part.map { ($0.prompt, $0.completion) })
            let r = loss(part, policy: x.sums, reference: idx.map { refTrain[$0] }, klPolicy: klPolicy, klReference: usesKL ? refKL[step] : [])
            try RLHFSetup.requireFinite(r.loss, "KTO loss", step: step + 1)
            var d = [Float](repeating: 0, count: part.count * x.T)
            for (b, span) in x.spans.enumerated() { for i in span { d[i] = r.gradPolicy[b] } }
            policy.backward(dLogprobs: d)
            let report = try session.step(gradients: pm.gradients)
            try RLHFSetup.requireFinite(report.gradNorm, "gradient norm", step: session.state.step)
            session.state.microBatches += 1
            let lr = session.schedule.lr(at: session.state.step - 1)
            progress.step(session.state.step, loss: r.loss, lr: lr, tokens: part.count * x.T * (usesKL ? 2 : 1),
                          fields: [ProgressField("kl", String(format: "%.3f", r.kl))])
            var rec: [String: Any] = ["loss": r.loss, "kl": r.kl, "lr": lr, "grad_norm": report.gradNorm]
            if let v = r.desirableRewardMean { rec["rewards_desirable"] = v }
            if let v = r.undesirableRewardMean { rec["rewards_undesirable"] = v }
            if let tps = progress.tokensPerSecond { rec["tokens_per_s"] = tps }
            try session.log(rec)
            if o.evalEvery > 0, session.state.step % o.evalEvery == 0, let e = evaluate() {
                try session.log(record(e), forceCurve: true)
                let improved = try session.evaluated(loss: e.loss, saveBest: true)
                progress.evaluation(EvaluationProgress(step: session.state.step, metrics: ["eval_loss": e.loss, "eval_kl": e.kl], improved: improved,
                                                       text: String(format: "step %d: eval KTO loss %.4f, kl %.3f", session.state.step, e.loss, e.kl) + (improved ? " (best)" : "")))
            }
            if session.shouldCheckpoint { try session.checkpoint() }
        }
        progress.done(step: session.state.step, reason: "completed")
        let after = evaluate()
        if let a = after { try session.log(record(a)) }
        try session.writeLossCurve()
        try RunFolder.writeAtomically(to: run.url.appendingPathComponent("final")) { try self.policy.saveMerged(to: $0, source: self.source) }
        return (before, after)
    }
}
