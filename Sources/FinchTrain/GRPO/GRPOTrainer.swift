import Foundation
import FinchKernels
import FinchModel
import FinchData

/// `finch grpo`: Group Relative Policy Optimisation (TRL's `GRPOTrainer`). Each iteration samples `groupSize`
/// completions for each of `batchSize` prompts, scores them with every reward function (weighted sum, plus DAPO's
/// soft over-long penalty when set), turns the scores into group-relative advantages (`GRPOMath.advantages`), and
/// runs `innerIterations` passes of `minibatches` optimizer steps on the clipped surrogate (`GRPOMath.loss`). No value
/// model; with β > 0 a k3 KL to the reference (a LoRA policy's base with the adapter off, else a frozen copy).
///
/// Checkpoints are written at iteration boundaries; sampling seeds, prompt order and minibatch order are functions of
/// the iteration, so `--resume` continues exactly.
///
/// Under `mpirun -np N` the ranks split the work: each samples and scores its share of the prompt groups (row seeds
/// as in one process, so the completions are the same), then all hold the whole batch and compute the group-relative
/// advantages over it. Each minibatch's rows are split too: every rank runs the forward of its rows, the log-probs are
/// gathered so the loss is computed over the whole minibatch, each rank backpropagates its rows' share of that loss,
/// and the gradient sums take one optimizer step on every rank.
public final class GRPOTrainer {
    public let config: GRPOConfig
    public let source: LoadedModelFolder
    public let policy: PolicyModel
    /// The frozen reference of a full-model policy when β > 0 (nil otherwise: LoRA switches its adapter off).
    let referenceCopy: PolicyModel?
    public let rewards: [RewardSource]
    public let rewardWeights: [Double]
    public let train: [PPOPrompt]
    public let eval: [PPOPrompt]
    public let run: RunFolder
    public let progress: ProgressReporter
    private let ownsRewards: Bool
    /// The ranks sharing the work (one process: every method returns at once).
    let dp: DataParallel
    private lazy var promptTokens = PromptTokenCache(encoder: source.encoder, maxLength: config.common.maxLength,
                                                     maxPositions: policy.decoder.config.maxPositions, maxNewTokens: config.grpo.maxNewTokens)

    /// - Parameter rewards: the reward functions; nil = the reward models and programs `config` names (opened here,
    ///   closed when the trainer goes away).
    public init(config: GRPOConfig, rewards: [RewardSource]? = nil, progress sink: any ProgressSink = NoProgress()) throws {
        try config.validate()
        let progress = ProgressReporter(sink: sink, totalSteps: config.grpo.iterations)
        self.progress = progress
        source = try LoadedModelFolder(URL(fileURLWithPath: config.grpo.policy), templateName: config.common.template,
                                       causalLM: "finch grpo --policy")
        var config = config
        RLHFSetup.fitLength(&config.common, source.folder, progress)
        self.config = config
        let o = config.common, g = config.grpo
        let decoder = try source.decoder()
        let peft = try RLHFSetup.peft(o, config.peft, decoder: decoder, tokenizer: source.tokenizer)
        policy = PolicyModel(model: CausalLMModel(decoder: decoder, peft: peft))
        if peft == nil, g.beta > 0 {
            let ref = try source.decoder(copy: true)
            ref.trainable = []
            referenceCopy = PolicyModel(model: CausalLMModel(decoder: ref))
        } else { referenceCopy = nil }
        // Completions sampled at a temperature are scored under logits / τ (as TRL).
        policy.temperature = Float(g.temperature)
        referenceCopy?.temperature = Float(g.temperature)
        if let given = rewards {
            self.rewards = given
        } else {
            self.rewards = try g.reward.map { try RewardSource(rewardModel: URL(fileURLWithPath: $0)) }
                + g.rewardCommand.map { try RewardSource(command: $0, timeout: g.rewardTimeout) }
        }
        ownsRewards = rewards == nil
        rewardWeights = g.rewardWeights ?? [Double](repeating: 1, count: self.rewards.count)
        guard rewardWeights.count == self.rewards.count else {
            throw TrainingError("\(rewardWeights.count) reward weights for \(self.rewards.count) reward functions")
        }
        let all = try PPOPrompts.fitting(PPOPrompts.load(URL(fileURLWithPath: g.prompts)), encoder: source.encoder,
                                         maxLength: o.maxLength, overlong: o.overlong, progress: progress)
        var (tr, ev) = PreferencePairs.split(all, evalFraction: o.evalFraction, seed: o.seed)
        if ev.count > g.evalPrompts { tr += ev[g.evalPrompts...]; ev = Array(ev.prefix(g.evalPrompts)) }
        guard tr.count >= o.batchSize else {
            throw TrainingError("\(tr.count) training prompts for a batch of \(o.batchSize) prompts: give more prompts or a smaller --batch-size")
        }
        (train, eval) = (tr, ev)
        dp = DataParallel(bucketMB: o.allreduceBucketMb, timeout: o.rankTimeout)
        guard o.batchSize >= dp.ranks else {
            throw TrainingError("--batch-size \(o.batchSize) prompts cannot be shared by \(dp.ranks) ranks: give at least one prompt per rank")
        }
        run = try RLHFSetup.runFolder(g.out, recipe: Recipe.of(config))
    }

    deinit { if ownsRewards { rewards.forEach { $0.close() } } }

    var stepsPerIteration: Int { config.grpo.innerIterations * config.grpo.minibatches }

    // MARK: rollouts

    func promptIDs(_ p: PPOPrompt) throws -> [Int] { try promptTokens.ids(p) }

    /// Completions of `prompts` from the batched generator (sampled, row i with seed `BatchGenerator.rowSeed(seed, row: i)`
    /// whatever its batch-mates; greedy when `greedy`), ending with the stop token when the row stopped, and whether
    /// each was cut at --max-new-tokens.
    /// `firstRow`: the index of `prompts[0]` in the whole batch (a rank's share samples with the whole batch's row seeds).
    func sample(_ prompts: [PPOPrompt], seed: UInt64, greedy: Bool, firstRow: Int = 0) throws -> (tokens: [[Int]], truncated: [Bool]) {
        let g = config.grpo
        let ids = try prompts.map { try promptIDs($0) }
        let sampling = SamplingOptions(temperature: greedy ? 0 : Float(g.temperature), topK: g.topK, topP: Float(g.topP), seed: seed)
        policy.setTraining(false)
        defer { policy.setTraining(true) }
        let seeds = prompts.indices.map { BatchGenerator.rowSeed(seed, row: firstRow + $0) }
        let out = BatchGenerator(decoder: policy.decoder).generate(ids, options: GenerationOptions(
            maxNewTokens: g.maxNewTokens, sampling: sampling, stopTokenIds: Set(source.encoder.stopIDs)), seeds: seeds)
        return (out.map(\.tokens), out.map { if case .maxNewTokens = $0.stop { return true } else { return false } })
    }

    /// Weighted reward of each completion, and each reward function's raw scores (for the logs).
    public func score(_ prompts: [PPOPrompt], _ completions: [[Int]]) throws -> (total: [Double], perFunction: [[Float]]) {
        let stop = Set(source.encoder.stopIDs)
        let texts = try completions.map { c in try source.tokenizer.decode(c[..<(c.firstIndex { stop.contains($0) } ?? c.count)]) }
        let per = try rewards.map { try $0.score(prompts: prompts, responses: texts) }
        var total = [Double](repeating: 0, count: completions.count)
        for (w, s) in zip(rewardWeights, per) { for i in total.indices { total[i] += w * Double(s[i]) } }
        if let cache = config.grpo.overlongPenalty {
            // DAPO's soft over-long punishment (TRL get_soft_overlong_punishment), on the generated length.
            let limit = config.grpo.maxNewTokens, start = limit - cache
            for (i, c) in completions.enumerated() {
                let n = c.count
                if n > start { total[i] += n <= limit ? Double(start - n) / Double(cache) : -1 }
            }
        }
        return (total, per)
    }

    /// Mean weighted reward of greedy completions to the held-out prompts (each rank answers its share).
    public func evaluate() throws -> Double? {
        guard !eval.isEmpty else { return nil }
        let mine = dp.share(eval.count)
        let part = Array(eval[mine])
        let local = part.isEmpty ? [] : try score(part, try sample(part, seed: 0, greedy: true, firstRow: mine.lowerBound).tokens).total
        let s = try dp.gather(local, what: "gathering the held-out rewards")
        return s.reduce(0, +) / Double(s.count)
    }

    // MARK: loop

    @discardableResult
    public func fit() throws -> (before: Double?, after: Double?) {
        let o = config.common
        let perIter = stepsPerIteration
        let totalSteps = config.grpo.iterations * perIter
        policy.model.allocateGradients()
        let pm = policy.model
        let session = try RLHFSetup.session(run: run, o: o, totalSteps: totalSteps, parameters: { pm.trainableParameters }, progress: progress)
        session.checkpointEvery = 0   // at iteration boundaries only (below)
        session.writeModel = { [unowned self] in try self.policy.saveMerged(to: $0, source: self.source) }
        try RLHFSetup.resumeIfAsked(session, resume: o.resume, stepsPerIteration: perIter)
        try RLHFSetup.requireIterationBoundary(session, perIteration: perIter, method: "GRPO", settings: "--inner-iterations/--minibatches")
        return try RLHFSetup.iterations(session, o: o, perIteration: perIter, totalSteps: totalSteps, heldOut: eval.count, dp: dp,
                                        evaluate: evaluate, iterate: { try self.iterate(iteration: $0, session: session) },
                                        writeFinal: { [unowned self] in try self.policy.saveMerged(to: $0, source: self.source) })
    }

    /// Per-token log-probs (and entropies) of the rows of `layout` under `model`.
    func tokenLogProbs(_ model: PolicyModel, _ ids: [Int], _ mask: [Int], B: Int, T: Int, entropy: Bool = false) -> (logprobs: [Float], entropy: [Float]?) {
        let f = model.forward(ids: ids, batch: B, length: T, mask: mask, entropy: entropy)
        return (f.logprobs, f.entropy)
    }

    /// One iteration: sample, score, advantages, `innerIterations × minibatches` optimizer steps, one metrics record.
    func iterate(iteration: Int, session: TrainingSession) throws {
        let o = config.common, g = config.grpo, G = g.groupSize
        let pm = policy.model
        let idx = RLHFSetup.batchIndices(step: iteration, count: train.count, batchSize: o.batchSize, seed: o.seed)
        let prompts = idx.flatMap { [PPOPrompt](repeating: train[$0], count: G) }
        let clock = DispatchTime.now().uptimeNanoseconds
        // This rank's share of the groups is sampled and scored here; then every rank holds the whole batch.
        let groups = dp.share(idx.count)
        let myRows = (groups.lowerBound * G)..<(groups.upperBound * G)
        let mine = try sample(Array(prompts[myRows]), seed: o.seed &+ UInt64(iteration) &* 1_000_003, greedy: false, firstRow: myRows.lowerBound)
        let myScores = try score(Array(prompts[myRows]), mine.tokens)
        let completions = try dp.gather(lists: mine.tokens, what: "gathering the completions")
        let truncated = try dp.gather(mine.truncated, what: "gathering the completions")
        let rewardsTotal = try dp.gather(myScores.total, what: "gathering the rewards")
        let perFunction = try myScores.perFunction.map { try dp.gather($0, what: "gathering the rewards") }
        let sampledTokens = completions.reduce(0) { $0 + $1.count }
        progress.rollout(RolloutProgress(iteration: iteration + 1, responses: completions.count, newTokens: sampledTokens,
                                         seconds: Double(DispatchTime.now().uptimeNanoseconds - clock) * 1e-9,
                                         meanScore: rewardsTotal.reduce(0, +) / Double(rewardsTotal.count)))
        let (advantages, zeroStd) = GRPOMath.advantages(rewards: rewardsTotal, groupSize: G, scaling: g.scaleRewards)

        // Rows prompt + completion, right-padded; the loss mask covers completion tokens (not truncated ones with --mask-truncated).
        let promptIds = try prompts.map { try promptIDs($0) }
        let rows = zip(promptIds, completions).map { $0 + $1 }
        let (ids, T, lengths) = PreferencePairs.pad(rows, padID: source.padID)
        let B = rows.count
        let attention = ids.indices.map { $0 % T < lengths[$0 / T] ? 1 : 0 }
        var lossMask = [Float](repeating: 0, count: B * T)
        for b in 0..<B where !(g.maskTruncated && truncated[b]) {
            for t in promptIds[b].count..<lengths[b] { lossMask[b * T + t] = 1 }
        }
        // The rows `rows` of the padded batch.
        func pick<E>(_ x: [E], _ rows: [Int]) -> [E] { rows.flatMap { x[($0 * T)..<(($0 + 1) * T)] } }
        // The sampling policy's and the reference's log-probs (no gradients), each rank over its rows.
        let batchRows = Array(dp.share(B))
        let batchIds = pick(ids, batchRows), batchAttention = pick(attention, batchRows)
        func logProbs(_ model: PolicyModel) throws -> [Float] {
            let local = batchRows.isEmpty ? [] : tokenLogProbs(model, batchIds, batchAttention, B: batchRows.count, T: T).logprobs
            return try dp.gather(local, what: "gathering the rollout log-probs")
        }
        policy.setTraining(false)
        let old = try logProbs(policy)
        var ref: [Float]? = nil
        if g.beta > 0 {
            if let copy = referenceCopy { ref = try logProbs(copy) } else {
                policy.adapterEnabled = false
                ref = try logProbs(policy)
                policy.adapterEnabled = true
            }
        }
        policy.setTraining(true)
        let totalTokens = Double(lossMask.reduce(0, +))
        let settings = config.lossSettings
        var lossSum = 0.0, klSum = 0.0, low = 0.0, high = 0.0, region = 0.0, entSum = 0.0, passes = 0.0
        for pass in 0..<g.innerIterations {
            var order = Array(0..<B)
            var rng = SeededRNG(seed: o.seed ^ (UInt64(iteration) &* 0x9E37_79B9) ^ (UInt64(pass) &* 0xD1B5_4A32_D192_ED03))
            rng.shuffle(&order)
            let size = (B + g.minibatches - 1) / g.minibatches
            for m in 0..<g.minibatches {
                let rowsMB = Array(order[min(B, m * size)..<min(B, (m + 1) * size)])
                guard !rowsMB.isEmpty else { continue }
                let mbMask = pick(lossMask, rowsMB)
                pm.zeroGradients()
                pm.decoder.dropoutStep = UInt64(session.state.step)
                // This rank's rows of the minibatch: their forward here, the loss over every rank's rows.
                let share = dp.share(rowsMB.count)
                let myMB = Array(rowsMB[share])
                let now: (logprobs: [Float], entropy: [Float]?) = myMB.isEmpty ? ([], nil) : tokenLogProbs(policy, pick(ids, myMB), pick(attention, myMB), B: myMB.count, T: T, entropy: true)
                let logprobs = try dp.gather(now.logprobs, what: "gathering the minibatch log-probs")
                let entropy = try dp.gather(now.entropy ?? [], what: "gathering the minibatch log-probs")
                let r = GRPOMath.loss(logprobs: logprobs, oldLogprobs: pick(old, rowsMB), refLogprobs: ref.map { pick($0, rowsMB) },
                                      advantages: rowsMB.map { advantages[$0] }, mask: mbMask, batch: rowsMB.count, length: T,
                                      settings: settings, tokensInBatch: totalTokens / Double(g.minibatches))
                try RLHFSetup.requireFinite(r.loss, "GRPO loss", step: session.state.step + 1)
                if !myMB.isEmpty { policy.backward(dLogprobs: Array(r.gradient[(share.lowerBound * T)..<(share.upperBound * T)])) }
                try dp.allReduce(pm.gradients)
                let report = try session.step(gradients: pm.gradients)
                try RLHFSetup.requireFinite(report.gradNorm, "gradient norm", step: session.state.step)
                session.state.microBatches += 1
                let n = max(1, Double(mbMask.reduce(0, +)))
                entSum += zip(entropy, mbMask).reduce(0.0) { $0 + Double($1.0 * $1.1) } / n
                lossSum += r.loss; klSum += r.meanKL; low += r.clipLow; high += r.clipHigh; region += r.clipRegion; passes += 1
            }
        }
        // One record per iteration.
        let mean = rewardsTotal.reduce(0, +) / Double(B)
        let std = (rewardsTotal.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(max(1, B - 1))).squareRoot()
        let lengthsC = completions.map(\.count)
        var record: [String: Any] = [
            "iteration": iteration + 1, "loss": lossSum / passes, "reward": mean, "reward_std": std,
            "frac_reward_zero_std": Double(zeroStd.filter { $0 }.count) / Double(B),
            "clip_ratio_low": low / passes, "clip_ratio_high": high / passes, "clip_ratio": region / passes,
            "entropy": entSum / passes, "completion_length": Double(lengthsC.reduce(0, +)) / Double(B),
            "completion_length_min": lengthsC.min() ?? 0, "completion_length_max": lengthsC.max() ?? 0,
            "truncated_fraction": Double(truncated.filter { $0 }.count) / Double(B),
            "lr": session.schedule.lr(at: session.state.step - 1),
        ]
        if g.beta > 0 { record["kl"] = klSum / passes }
        for (k, s) in perFunction.enumerated() { record["reward_\(k)"] = s.reduce(0.0) { $0 + Double($1) } / Double(B) }
        progress.step(iteration + 1, loss: lossSum / passes, lr: session.schedule.lr(at: session.state.step - 1), tokens: sampledTokens,
                      fields: [ProgressField("reward", String(format: "%.3f", mean)), ProgressField("std0", String(format: "%.2f", record["frac_reward_zero_std"] as! Double)),
                               ProgressField("len", String(format: "%.1f", record["completion_length"] as! Double)),
                               ProgressField("clip", String(format: "%.3f", region / passes))])
        if let tps = progress.tokensPerSecond { record["tokens_per_s"] = tps }
        try session.log(record)
    }
}
