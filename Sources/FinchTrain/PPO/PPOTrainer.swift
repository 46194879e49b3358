import Foundation
import FinchKernels
import FinchModel
import FinchData

/// `finch ppo`: TRL-style PPO. Each iteration samples responses to a batch of prompts with the KV cache,
/// scores them (reward model or reward command), computes per-token log-probs under the policy and a frozen
/// reference (LoRA: the adapter switched off; full: a frozen copy) and values from a value head on the policy
/// trunk, turns them into KL-penalised rewards, GAE advantages and returns (`PPOMath.processRollout`), then
/// runs `ppoEpochs` passes of clipped policy + value losses over shuffled minibatches (one optimizer step each).
/// With `estimator == .rloo` there is no value head: leave-one-out advantages of the KL-penalised rewards and a
/// clipped sequence-ratio loss (`RLOOMath`, TRL's RLOO trainer) replace GAE and the value loss.
///
/// Checkpoints are written only at iteration boundaries, so a run stopped mid-iteration (NaN loss, exploding
/// KL, a failing reward command, Ctrl-C) keeps its last complete checkpoint; `--resume` continues exactly
/// (sampling seeds, prompt order, minibatch order and the KL controller are functions of the saved state).
///
/// Under `mpirun -np N` the ranks split the work as GRPO's do: each samples and scores its share of the prompt groups
/// (with the whole batch's row seeds) and computes their log-probs and values; all then hold the whole rollout, so
/// rewards are normalised and advantages whitened over every rank's rows. Each minibatch's forward is split by rank,
/// its loss computed over the gathered log-probs and values, each rank backpropagates its rows' share, and the summed
/// gradients take one optimizer step on every rank (the pretraining-loss mix, `--ptx-coef`, runs on rank 0 only, so
/// the sum holds it once).
public final class PPOTrainer {
    public let config: PPOConfig
    public let source: LoadedModelFolder
    public let policy: PolicyModel
    /// nil for a LoRA policy (the adapter is switched off instead).
    let referenceCopy: PolicyModel?
    public let valueHead: ValueHead
    public let rewards: RewardSource
    public let train: [PPOPrompt]
    public let eval: [PPOPrompt]
    public let run: RunFolder
    public let progress: ProgressReporter
    /// Whether this trainer opened `rewards` (and closes it).
    private let ownsRewards: Bool
    private var ptx = PTXData(ids: [], mask: [])
    /// The ranks sharing the work (one process: every method returns at once).
    let dp: DataParallel
    private lazy var promptTokens = PromptTokenCache(encoder: source.encoder, maxLength: config.common.maxLength,
                                                     maxPositions: policy.decoder.config.maxPositions, maxNewTokens: config.ppo.maxNewTokens)

    /// - Parameter rewards: the scores' source; nil = the reward model or program `config` names (opened here and
    ///   closed when the trainer goes away).
    public init(config: PPOConfig, rewards: RewardSource? = nil, progress sink: any ProgressSink = NoProgress()) throws {
        try config.validate()
        let progress = ProgressReporter(sink: sink, totalSteps: config.ppo.iterations)
        self.progress = progress
        source = try LoadedModelFolder(URL(fileURLWithPath: config.ppo.policy), templateName: config.common.template,
                                       causalLM: "finch ppo --policy", servesBottleneck: true)
        var config = config
        RLHFSetup.fitLength(&config.common, source.folder, progress)
        self.config = config
        let o = config.common
        let decoder = try source.decoder()
        if let adapter = source.bottleneckAdapter {
            // A bottleneck-adapter policy (SFT with --method adapter) keeps training its adapter; the adapter cannot be
            // switched off for the reference (that would be the base, not the SFT policy), so the reference is a frozen copy.
            guard o.method == "adapter" else {
                throw TrainingError("\(adapter.path) is a bottleneck adapter: PPO continues training it; give --method adapter")
            }
            policy = PolicyModel(model: CausalLMModel(decoder: decoder, peft: try AdapterModule(folder: adapter, config: decoder.config)))
            let ref = try source.decoder(copy: true)
            referenceCopy = PolicyModel(model: CausalLMModel(decoder: ref, peft: try AdapterModule(folder: adapter, config: ref.config)))
        } else {
            let peft = try RLHFSetup.peft(o, config.peft, decoder: decoder, tokenizer: source.tokenizer)
            policy = PolicyModel(model: CausalLMModel(decoder: decoder, peft: peft))
            if peft == nil {
                let ref = try source.decoder(copy: true)
                ref.trainable = []
                referenceCopy = PolicyModel(model: CausalLMModel(decoder: ref))
            } else { referenceCopy = nil }
        }
        // Rollouts sampled at a temperature are scored (policy, old and new, and reference) under logits / τ.
        if config.ppo.temperature > 0 {
            policy.temperature = Float(config.ppo.temperature)
            referenceCopy?.temperature = Float(config.ppo.temperature)
        }
        valueHead = ValueHead(name: "v_head.weight", hiddenSize: decoder.config.hiddenSize, bias: true, seed: o.seed &+ 17)
        self.rewards = try rewards ?? RewardSource(config.ppo)
        ownsRewards = rewards == nil
        let all = try PPOPrompts.fitting(PPOPrompts.load(URL(fileURLWithPath: config.ppo.prompts)), encoder: source.encoder,
                                         maxLength: o.maxLength, overlong: o.overlong, progress: progress)
        var (tr, ev) = PreferencePairs.split(all, evalFraction: o.evalFraction, seed: o.seed)
        if ev.count > config.ppo.evalPrompts {   // held-out prompts beyond --eval-prompts train rather than go unused
            tr += ev[config.ppo.evalPrompts...]
            ev = Array(ev.prefix(config.ppo.evalPrompts))
        }
        (train, eval) = (tr, ev)
        dp = DataParallel(bucketMB: o.allreduceBucketMb, timeout: o.rankTimeout)
        if dp.isDistributed {
            guard config.ppo.oversample <= 1 else {
                throw TrainingError("--oversample draws prompt groups one after another until the batch is full; under mpirun give --oversample 1")
            }
            guard o.batchSize / config.ppo.samplesPerPrompt >= dp.ranks else {
                throw TrainingError("--batch-size \(o.batchSize) holds \(o.batchSize / config.ppo.samplesPerPrompt) prompt groups for \(dp.ranks) ranks: give at least one group per rank")
            }
        }
        run = try RLHFSetup.runFolder(config.ppo.out, recipe: Recipe.of(config))
        if config.ppo.ptxCoef > 0, let p = config.ppo.ptxData {
            ptx = try PTXData.load(p, encoder: source.encoder, tokenizer: source.tokenizer)
        }
    }

    deinit { if ownsRewards { rewards.close() } }

    var optimizerStepsPerIteration: Int { max(1, config.ppo.ppoEpochs) * max(1, config.ppo.minibatches) }

    /// Every tensor the optimizer updates: the policy's (decoder or adapter) and, with GAE, the value head.
    public var trainableParameters: [String: Tensor] {
        guard usesValueHead else { return policy.model.trainableParameters }
        return policy.model.trainableParameters.merging(valueHead.parameters) { a, _ in a }
    }
    var gradients: [String: Tensor] {
        guard usesValueHead else { return policy.model.gradients }
        return policy.model.gradients.merging(valueHead.gradients) { a, _ in a }
    }
    var usesValueHead: Bool { config.ppo.estimator == .gae }

    // MARK: rollouts

    func promptIDs(_ p: PPOPrompt) throws -> [Int] { try promptTokens.ids(p) }

    /// Samples one response per prompt (adapter on, no dropout), the prompts decoded together; row i samples with
    /// seed `BatchGenerator.rowSeed(seed, row: i)`, whatever its batch-mates. Greedy when `greedy`. Sampled rollouts
    /// add their tokens and time to `rolloutSpeed`.
    /// `firstRow`: the index of `prompts[0]` in the whole batch (a rank's share samples with the whole batch's row seeds).
    func generate(_ prompts: [PPOPrompt], seed: UInt64, greedy: Bool, firstRow: Int = 0) throws -> [[Int]] {
        let ids = try prompts.map(promptIDs)
        let sampling = SamplingOptions(temperature: greedy ? 0 : Float(config.ppo.temperature), topK: config.ppo.topK,
                                       topP: Float(config.ppo.topP), seed: seed)
        let start = Date()
        policy.setTraining(false)
        defer { policy.setTraining(true) }
        let seeds = prompts.indices.map { BatchGenerator.rowSeed(seed, row: firstRow + $0) }
        let out = BatchGenerator(decoder: policy.decoder).generate(ids, options: GenerationOptions(
            maxNewTokens: config.ppo.maxNewTokens, sampling: sampling, stopTokenIds: Set(source.encoder.stopIDs)), seeds: seeds).map(\.tokens)
        if !greedy {
            rolloutSpeed.tokens += out.reduce(0) { $0 + $1.count }
            rolloutSpeed.seconds += Date().timeIntervalSince(start)
        }
        return out
    }

    /// New tokens and wall seconds of the current iteration's sampled rollouts (`rollout_tokens_per_s` in metrics.jsonl).
    private var rolloutSpeed = (tokens: 0, seconds: 0.0)

    /// Response text as the reward sees it: decoded up to (not including) the first stop token.
    func responseText(_ tokens: [Int]) throws -> String {
        let stop = Set(source.encoder.stopIDs)
        let cut = tokens.firstIndex { stop.contains($0) } ?? tokens.count
        return try source.tokenizer.decode(tokens[..<cut])
    }

    /// Raw scores of responses (before penalties / normalisation).
    func score(_ prompts: [PPOPrompt], _ responses: [[Int]]) throws -> [Float] {
        try rewards.score(prompts: prompts, responses: responses.map { try responseText($0) })
    }

    /// Rows prompt + response (right-padded to the longest), with the response block [B, R] layout.
    struct RowLayout {
        var ids: [Int]; var mask: [Int]; var T: Int; var promptLengths: [Int]; var R: Int
        /// Flat index in the [B, T] rows of response token t of row b (its log-prob lives there).
        func tokenIndex(_ b: Int, _ t: Int) -> Int { b * T + promptLengths[b] + t }
    }

    func layout(prompts: [[Int]], responses: [[Int]], R: Int) -> RowLayout {
        let pad = source.padID
        let rows = zip(prompts, responses).map { p, r in p + r + [Int](repeating: pad, count: R - r.count) }
        let (ids, T, _) = PreferencePairs.pad(rows, padID: pad)
        var mask = [Int](repeating: 0, count: ids.count)
        for (b, r) in zip(prompts, responses).enumerated() {
            for t in 0..<(r.0.count + r.1.count) { mask[b * T + t] = 1 }
        }
        return RowLayout(ids: ids, mask: mask, T: T, promptLengths: prompts.map(\.count), R: R)
    }

    /// `responseStats` of the rows `rows` of the batch (each rank its share), gathered: every rank gets the whole
    /// batch's log-probs and values [B·R] (no hidden states: these are for statistics without gradients).
    func gatheredStats(_ model: PolicyModel, promptIds: [[Int]], generated: [[Int]], R: Int, values: Bool) throws -> (logprobs: [Float], values: [Float]) {
        let mine = Array(dp.share(generated.count))
        var lp: [Float] = [], v: [Float] = []
        if !mine.isEmpty {
            let st = responseStats(model, layout(prompts: mine.map { promptIds[$0] }, responses: mine.map { generated[$0] }, R: R), values: values)
            (lp, v) = (st.logprobs, st.values)
        }
        return (try dp.gather(lp, what: "gathering the rollout log-probs"), try dp.gather(v, what: "gathering the rollout values"))
    }

    /// Per-token response log-probs [B·R] (and values, entropies) from a forward of `model` over `l`.
    func responseStats(_ model: PolicyModel, _ l: RowLayout, values: Bool, entropy: Bool = false)
        -> (logprobs: [Float], values: [Float], entropy: [Float], hidden: Tensor) {
        let B = l.promptLengths.count
        let f = model.forward(ids: l.ids, batch: B, length: l.T, mask: l.mask, entropy: entropy)
        var lp = [Float](repeating: 0, count: B * l.R), ent = lp
        var rows: [Int] = []
        for b in 0..<B {
            for t in 0..<l.R {
                let i = l.tokenIndex(b, t)
                lp[b * l.R + t] = f.logprobs[i]
                if entropy { ent[b * l.R + t] = f.entropy![i] }
                rows.append(i - 1)   // the value of the state before token t
            }
        }
        let v = values ? valueHead.forward(hidden: f.hidden.ptr, rows: rows) : []
        return (lp, v, ent, f.hidden)
    }

    // MARK: evaluation

    /// Mean score of greedy responses to the held-out prompts.
    public func evaluate() throws -> Double? {
        guard !eval.isEmpty else { return nil }
        let mine = dp.share(eval.count)
        let part = Array(eval[mine])
        let local = part.isEmpty ? [] : try score(part, try generate(part, seed: 0, greedy: true, firstRow: mine.lowerBound))
        let s = try dp.gather(local, what: "gathering the held-out rewards")
        return s.reduce(0.0) { $0 + Double($1) } / Double(s.count)
    }

    // MARK: training

    func saveModel(to folder: URL) throws {
        if let adapter = policy.model.peft as? AdapterModule {
            // A bottleneck adapter cannot be merged: the result is an adapter folder over the same base.
            try adapter.save(to: folder, baseModel: source.folder.url.path)
            try source.template.save(toModel: folder)
            if usesValueHead { try SafeTensors.write(valueHead.parameters, to: folder.appendingPathComponent("value_head.safetensors")) }
            return
        }
        try policy.saveMerged(to: folder, source: source)
        if usesValueHead { try SafeTensors.write(valueHead.parameters, to: folder.appendingPathComponent("value_head.safetensors")) }
    }

    /// Runs the remaining iterations; returns the held-out mean reward before and after.
    @discardableResult
    public func fit() throws -> (before: Double?, after: Double?) {
        let o = config.common
        let perIter = optimizerStepsPerIteration
        let totalSteps = config.ppo.iterations * perIter
        policy.model.allocateGradients()
        let session = try RLHFSetup.session(run: run, o: o, totalSteps: totalSteps, parameters: { [unowned self] in self.trainableParameters },
                                            progress: progress)
        session.checkpointEvery = 0   // checkpoints at iteration boundaries only (below)
        session.writeModel = { [unowned self] in try self.saveModel(to: $0) }
        var kl = config.ppo.klTarget.map { KLController.adaptive(initial: config.hyper.klCoef, target: $0, horizon: config.ppo.klHorizon) }
            ?? .fixed(config.hyper.klCoef)
        try RLHFSetup.resumeIfAsked(session, resume: o.resume, stepsPerIteration: perIter)
        if let blob = session.state.extras["kl_controller"] { kl = try blob.decode(KLController.self) }
        try RLHFSetup.requireIterationBoundary(session, perIteration: perIter, method: "PPO", settings: "--ppo-epochs/--minibatches")
        return try RLHFSetup.iterations(session, o: o, perIteration: perIter, totalSteps: totalSteps, heldOut: eval.count, dp: dp,
                                        evaluate: evaluate, iterate: { iteration in
            try self.iterate(iteration: iteration, session: session, kl: &kl)
            session.state.extras["kl_controller"] = try JSONValue(encoding: kl)
        }, writeFinal: { [unowned self] in try self.saveModel(to: $0) })
    }

    /// One PPO iteration: rollout, rewards, advantages, `ppoEpochs × minibatches` optimizer steps, metrics.
    func iterate(iteration: Int, session: TrainingSession, kl: inout KLController) throws {
        let k = config.ppo.samplesPerPrompt
        let clock = DispatchTime.now().uptimeNanoseconds
        let (prompts, generated, raw, drawn) = try rollout(iteration: iteration)
        progress.rollout(RolloutProgress(iteration: iteration + 1, responses: generated.count, newTokens: generated.reduce(0) { $0 + $1.count },
                                         seconds: Double(DispatchTime.now().uptimeNanoseconds - clock) * 1e-9,
                                         meanScore: raw.reduce(0.0) { $0 + Double($1) } / Double(max(1, raw.count))))
        let promptIds = try prompts.map { try promptIDs($0) }
        let R = max(1, generated.map(\.count).max() ?? 1)
        let pad = source.padID
        let responses = generated.map { $0 + [Int](repeating: pad, count: R - $0.count) }
        let B = prompts.count

        // Scores.
        var scores = raw
        if let p = config.ppo.missingEosPenalty {
            PPOMath.applyMissingEOSPenalty(scores: &scores, responses: generated, eosTokenID: source.encoder.endOfTurnID, penalty: p)
        }
        // RLOO takes its leave-one-out baseline on the KL-penalised reward instead (below).
        if config.ppo.groupBaseline, config.ppo.estimator == .gae { scores = PPOTrainer.leaveOneOutBaseline(scores, groupSize: k) }
        if config.ppo.normalizeRewards, B > 1 {
            let m = scores.reduce(0, +) / Float(B)
            let sd = (scores.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Float(B - 1)).squareRoot()
            scores = scores.map { ($0 - m) / (sd + 1e-6) }
        }
        if let c = config.ppo.rewardClip { scores = scores.map { min(max($0, Float(-c)), Float(c)) } }

        // Log-probs, reference, values (no gradients), each rank over its share of the rows.
        policy.setTraining(false)
        let cur = try gatheredStats(policy, promptIds: promptIds, generated: generated, R: R, values: usesValueHead)
        let ref: [Float]
        if let copy = referenceCopy { ref = try gatheredStats(copy, promptIds: promptIds, generated: generated, R: R, values: false).logprobs }
        else {
            policy.adapterEnabled = false
            ref = try gatheredStats(policy, promptIds: promptIds, generated: generated, R: R, values: false).logprobs
            policy.adapterEnabled = true
        }
        policy.setTraining(true)
        var hyper = config.hyper
        hyper.klCoef = kl.value
        if config.ppo.estimator == .rloo {
            try iterateRLOO(iteration: iteration, session: session, kl: &kl, hyper: hyper, promptIds: promptIds,
                            generated: generated, responses: responses, raw: raw, scores: scores, logprobs: cur.logprobs,
                            ref: ref, drawn: drawn)
            return
        }
        let roll = PPOMath.processRollout(responses: responses, padTokenID: pad, logprobs: cur.logprobs, refLogprobs: ref,
                                          values: cur.values, scores: scores, hyper: hyper)
        try checkRolloutKL(roll.meanKL, iteration: iteration, step: session.state.step)

        // PPO epochs over minibatches.
        var pgSum = 0.0, vfSum = 0.0, clipSum = 0.0, vclipSum = 0.0, entSum = 0.0, approxSum = 0.0
        let n = try optimiseMinibatches(iteration: iteration, session: session, promptIds: promptIds, generated: generated, R: R) { rows, sub, share in
            let mb = roll.batch.rows(rows)
            let now = try minibatchStats(sub, values: true)
            let loss = PPOMath.minibatchLoss(batch: mb, newLogprobs: now.logprobs, vpred: now.values, hyper: hyper)
            try RLHFSetup.requireFinite(loss.loss, "PPO loss", step: session.state.step + 1)
            if let h = now.hidden, let sub {
                // This rank's rows: their slice of the loss gradients, back through the value head and the policy.
                var dLP = [Float](repeating: 0, count: share.count * sub.T)
                var vRows: [Int] = []
                for b in 0..<share.count {
                    for t in 0..<R {
                        let i = sub.tokenIndex(b, t)
                        dLP[i] = loss.gradNewLogprobs[(share.lowerBound + b) * R + t]
                        vRows.append(i - 1)
                    }
                }
                let dHidden = Tensor(shape: [share.count * sub.T, policy.decoder.config.hiddenSize])
                valueHead.backward(hidden: h.ptr, rows: vRows, dOut: Array(loss.gradVpred[(share.lowerBound * R)..<(share.upperBound * R)]), dHidden: dHidden.ptr)
                policy.backward(dLogprobs: dLP, extraDHidden: dHidden)
            }
            pgSum += loss.pgLoss; vfSum += loss.vfLoss; clipSum += loss.pgClipfrac; vclipSum += loss.vfClipfrac
            approxSum += loss.approxKL; entSum += PPOTrainer.meanEntropy(now.entropy, paddingMask: mb.paddingMask)
        }
        kl.update(currentKL: roll.meanKL, nSteps: B)
        session.state.microBatches += Int(n)
        try logIteration(iteration, session: session, raw: raw, generated: generated, drawn: drawn, klCoef: hyper.klCoef, [
            "score": roll.meanScore, "kl": roll.meanKL, "entropy": entSum / n, "rollout_entropy": roll.meanEntropy,
            "policy_loss": pgSum / n, "value_loss": vfSum / n, "loss": (pgSum + hyper.vfCoef * vfSum) / n,
            "clip_fraction": clipSum / n, "value_clip_fraction": vclipSum / n, "approx_kl": approxSum / n,
            "response_length": roll.meanResponseLength, "non_score_reward": roll.meanNonScoreReward, "rlhf_reward": roll.rlhfReward,
        ])
    }

    /// The forward of this rank's rows of a minibatch (`sub`: their layout; nil when it has none) with the whole
    /// minibatch's log-probs, values and entropies gathered over the ranks [rows·R]; `hidden` is this rank's, for its
    /// backward.
    func minibatchStats(_ sub: RowLayout?, values: Bool) throws -> (logprobs: [Float], values: [Float], entropy: [Float], hidden: Tensor?) {
        var lp: [Float] = [], v: [Float] = [], ent: [Float] = [], hidden: Tensor? = nil
        if let sub {
            let st = responseStats(policy, sub, values: values, entropy: true)
            (lp, v, ent, hidden) = (st.logprobs, st.values, st.entropy, st.hidden)
        }
        return (try dp.gather(lp, what: "gathering the minibatch log-probs"), try dp.gather(v, what: "gathering the minibatch values"),
                try dp.gather(ent, what: "gathering the minibatch entropies"), hidden)
    }

    /// `ppoEpochs` passes over the iteration's rollout rows in shuffled minibatches (the order a function of the
    /// iteration, so resume is exact), one optimizer step each. `minibatch` runs the forward and backward of the
    /// given rows: this rank's share of them (`share`, positions in `rows`) with their layout (nil when the share is
    /// empty); gradients are zeroed before it, and the gradient sum over ranks, pretraining-loss mixing and the step
    /// follow it. Returns the number of steps taken.
    func optimiseMinibatches(iteration: Int, session: TrainingSession, promptIds: [[Int]], generated: [[Int]], R: Int,
                             _ minibatch: ([Int], RowLayout?, Range<Int>) throws -> Void) throws -> Double {
        let B = generated.count
        var rng = SeededRNG(seed: config.common.seed ^ (UInt64(iteration) &* 0xA24B_AED4_963E_E407))
        let mbCount = max(1, min(config.ppo.minibatches, B))
        var n = 0.0
        for _ in 0..<max(1, config.ppo.ppoEpochs) {
            var order = Array(0..<B)
            rng.shuffle(&order)
            for m in 0..<mbCount {
                let rows = Array(order[(m * B / mbCount)..<((m + 1) * B / mbCount)])
                let share = dp.share(rows.count)
                let mine = rows[share]
                let sub = mine.isEmpty ? nil : layout(prompts: mine.map { promptIds[$0] }, responses: mine.map { generated[$0] }, R: R)
                policy.model.zeroGradients()
                if usesValueHead { valueHead.zeroGradients() }
                // LoRA dropout masks follow the optimizer step, so a resumed run draws the same ones.
                policy.decoder.dropoutStep = UInt64(session.state.step)
                try minibatch(rows, sub, share)
                if config.ppo.ptxCoef > 0 && dp.rank == 0 { try pretrainingLoss(step: session.state.step) }
                try dp.allReduce(gradients)
                let report = try session.step(gradients: gradients)
                try RLHFSetup.requireFinite(report.gradNorm, "gradient norm", step: session.state.step)
                n += 1
            }
        }
        return n
    }

    /// Mean per-token entropy over a minibatch's real (unpadded) response tokens.
    static func meanEntropy(_ entropy: [Float], paddingMask: [Bool]) -> Double {
        var sum = 0.0, count = 0.0
        for i in paddingMask.indices where !paddingMask[i] { sum += Double(entropy[i]); count += 1 }
        return count > 0 ? sum / count : 0
    }

    /// Stops the run (before any update of this iteration) on a non-finite or exploding rollout KL.
    func checkRolloutKL(_ meanKL: Double, iteration: Int, step: Int) throws {
        try RLHFSetup.requireFinite(meanKL, "rollout KL", step: step)
        guard meanKL <= config.ppo.maxKl else {
            throw TrainingError(String(format: "iteration %d: KL to the reference exploded (%.2f nats per response > --max-kl %.2f) — stopping; the last checkpoint is intact (lower --lr or raise --kl-coef)", iteration + 1, meanKL, config.ppo.maxKl))
        }
    }

    /// One metrics.jsonl record per iteration (the estimator's statistics plus the common fields) and the progress line.
    func logIteration(_ iteration: Int, session: TrainingSession, raw: [Float], generated: [[Int]], drawn: Int, klCoef: Double,
                      _ stats: [String: Double]) throws {
        let meanRaw = raw.reduce(0.0) { $0 + Double($1) } / Double(max(1, raw.count))
        var record: [String: Any] = stats
        record["iteration"] = iteration + 1; record["reward"] = meanRaw; record["kl_coef"] = klCoef
        record["lr"] = session.schedule.lr(at: session.state.step - 1); record["prompts_drawn"] = drawn
        if rolloutSpeed.seconds > 0 { record["rollout_tokens_per_s"] = Double(rolloutSpeed.tokens) / rolloutSpeed.seconds }
        try session.log(record)
        progress.step(iteration + 1, loss: stats["loss"] ?? 0, lr: session.schedule.lr(at: session.state.step - 1),
                      tokens: generated.reduce(0) { $0 + $1.count }, fields: progressFields(meanReward: meanRaw, stats))
    }

    /// The per-iteration statistics shown on the progress line, most wanted first (a terminal too narrow for all
    /// drops them from the end; a log line has every one): mean reward, KL to the reference, response length,
    /// entropy, policy loss, value loss (value head only) and clip fraction.
    func progressFields(meanReward: Double, _ stats: [String: Double]) -> [ProgressField] {
        func f(_ key: String, _ format: String) -> String { String(format: format, stats[key] ?? 0) }
        var fields = [("reward", String(format: "%.3f", meanReward)), ("kl", f("kl", "%.3f")), ("len", f("response_length", "%.1f")),
                      ("ent", f("entropy", "%.2f")), ("pg", f("policy_loss", "%.4f"))]
        if usesValueHead { fields.append(("vf", f("value_loss", "%.4f"))) }
        fields.append(("clip", f("clip_fraction", "%.3f")))
        return fields.map { ProgressField($0.0, $0.1) }
    }

    /// The RLOO half of an iteration (after sampling, scoring and the rollout log-probs): leave-one-out advantages
    /// of the KL-penalised rewards, then `ppoEpochs × minibatches` clipped sequence-ratio steps, metrics.
    func iterateRLOO(iteration: Int, session: TrainingSession, kl: inout KLController, hyper: PPOMath.Hyperparameters,
                     promptIds: [[Int]], generated: [[Int]], responses: [[Int]], raw: [Float], scores: [Float],
                     logprobs: [Float], ref: [Float], drawn: Int) throws {
        let B = responses.count, R = responses.first?.count ?? 1
        let roll = RLOOMath.processRollout(responses: responses, padTokenID: source.padID, logprobs: logprobs, refLogprobs: ref,
                                           scores: scores, groupSize: config.ppo.samplesPerPrompt, klCoef: hyper.klCoef,
                                           klEstimator: hyper.klEstimator, normalizeAdvantage: config.ppo.normalizeAdvantage)
        try checkRolloutKL(roll.meanKL, iteration: iteration, step: session.state.step)
        var pgSum = 0.0, clipSum = 0.0, entSum = 0.0, approxSum = 0.0
        let n = try optimiseMinibatches(iteration: iteration, session: session, promptIds: promptIds, generated: generated, R: R) { rows, sub, share in
            let mb = roll.rows(rows)
            let now = try minibatchStats(sub, values: false)
            let loss = RLOOMath.minibatchLoss(oldLogprobs: mb.logprobs, paddingMask: mb.paddingMask, advantages: mb.advantages,
                                              newLogprobs: now.logprobs, cliprange: hyper.cliprange)
            try RLHFSetup.requireFinite(loss.pgLoss, "RLOO loss", step: session.state.step + 1)
            if let sub {
                var dLP = [Float](repeating: 0, count: share.count * sub.T)
                for b in 0..<share.count {
                    for t in 0..<R { dLP[sub.tokenIndex(b, t)] = loss.gradNewLogprobs[(share.lowerBound + b) * R + t] }
                }
                policy.backward(dLogprobs: dLP)
            }
            pgSum += loss.pgLoss; clipSum += loss.pgClipfrac; approxSum += loss.approxKL
            entSum += PPOTrainer.meanEntropy(now.entropy, paddingMask: mb.paddingMask)
        }
        kl.update(currentKL: roll.meanKL, nSteps: B)
        session.state.microBatches += Int(n)
        try logIteration(iteration, session: session, raw: raw, generated: generated, drawn: drawn, klCoef: hyper.klCoef, [
            "score": roll.meanScore, "kl": roll.meanKL, "entropy": entSum / n, "rollout_entropy": roll.meanEntropy,
            "policy_loss": pgSum / n, "value_loss": 0, "loss": pgSum / n, "clip_fraction": clipSum / n,
            "value_clip_fraction": 0, "approx_kl": approxSum / n, "response_length": roll.meanResponseLength,
            "non_score_reward": roll.meanNonScoreReward, "rlhf_reward": roll.meanRLHFReward,
        ])
    }

    /// The iteration's rollout batch: prompts (each `samplesPerPrompt` times in a row), sampled replies, raw scores,
    /// and how many prompts were drawn. Without oversampling: the next `batchSize / k` prompts of the shuffled order.
    /// With it: candidates are drawn `oversample` batches deep and generated a group at a time; groups whose scores
    /// differ are kept until the batch is full, and tied groups fill what is left. Every draw and sampling seed is
    /// a function of the iteration, so a resumed run makes the same batches.
    func rollout(iteration: Int) throws -> (prompts: [PPOPrompt], generated: [[Int]], raw: [Float], drawn: Int) {
        rolloutSpeed = (0, 0)
        let o = config.common
        let k = config.ppo.samplesPerPrompt, groups = o.batchSize / k
        let seed = o.seed &+ UInt64(iteration) &* 1_000_003
        guard config.ppo.oversample > 1 else {
            let idx = RLHFSetup.batchIndices(step: iteration, count: train.count, batchSize: groups, seed: o.seed)
            // Each prompt k times in a row; `generate` seeds every row differently, so the k replies differ. Each rank
            // samples and scores its share of the groups; then every rank holds the whole batch.
            let prompts = idx.flatMap { [PPOPrompt](repeating: train[$0], count: k) }
            let mine = dp.share(idx.count)
            let rows = (mine.lowerBound * k)..<(mine.upperBound * k)
            let part = Array(prompts[rows])
            let gen = try generate(part, seed: seed, greedy: false, firstRow: rows.lowerBound)
            let raw = try score(part, gen)
            return (prompts, try dp.gather(lists: gen, what: "gathering the rollouts"), try dp.gather(raw, what: "gathering the scores"), idx.count)
        }
        let depth = min(train.count, groups * config.ppo.oversample)
        let candidates = RLHFSetup.batchIndices(step: iteration, count: train.count, batchSize: depth, seed: o.seed ^ 0x5DA3)
        typealias Group = (prompts: [PPOPrompt], generated: [[Int]], raw: [Float])
        var kept: [Group] = [], tied: [Group] = []
        var drawn = 0
        for (j, i) in candidates.enumerated() where kept.count < groups {
            let g = [PPOPrompt](repeating: train[i], count: k)
            let gen = try generate(g, seed: seed &+ UInt64(j) &* 0xD6E8_FEB8_6659_FD93, greedy: false)
            let s = try score(g, gen)
            drawn += 1
            if (s.max() ?? 0) - (s.min() ?? 0) > 1e-6 { kept.append((g, gen, s)) }
            else if tied.count < groups { tied.append((g, gen, s)) }
        }
        let batch = kept + tied.prefix(max(0, groups - kept.count))
        guard batch.count == groups else {
            throw TrainingError("iteration \(iteration + 1): only \(batch.count) prompt groups for a batch of \(groups) (too few training prompts for --batch-size)")
        }
        return (batch.flatMap(\.prompts), batch.flatMap(\.generated), batch.flatMap(\.raw), drawn)
    }

    /// Each score minus the mean of the other scores in its group (consecutive runs of `groupSize`).
    public static func leaveOneOutBaseline(_ scores: [Float], groupSize k: Int) -> [Float] {
        precondition(k >= 2 && scores.count % k == 0, "leaveOneOutBaseline: \(scores.count) scores in groups of \(k)")
        var out = scores
        for g in stride(from: 0, to: scores.count, by: k) {
            let sum = scores[g..<(g + k)].reduce(0, +)
            for i in g..<(g + k) { out[i] = scores[i] - (sum - scores[i]) / Float(k - 1) }
        }
        return out
    }

    /// Adds `ptxCoef` × the causal-LM loss of a `maxLength`-token window of the `--ptx-data` tokens (mean over the
    /// window's trained positions) to the gradients.
    func pretrainingLoss(step: Int) throws {
        let T = min(config.common.maxLength, ptx.ids.count)
        var rng = SeededRNG(seed: config.common.seed ^ UInt64(step) &* 0x2545_F491)
        let start = rng.int(below: max(1, ptx.ids.count - T))
        let (ids, dLogprobs) = ptx.window(start: start, length: T, coef: config.ppo.ptxCoef)
        policy.decoder.dropoutStep = UInt64(step) | (1 << 62)   // other masks than the step's PPO forward
        let f = policy.forward(ids: ids, batch: 1, length: T, mask: nil)
        try RLHFSetup.requireFinite(Double(f.logprobs.reduce(0, +)), "pretraining loss", step: step)
        policy.backward(dLogprobs: dLogprobs)
    }
}
