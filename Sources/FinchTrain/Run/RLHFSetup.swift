import Foundation
import FinchKernels
import FinchModel
import FinchDistributed
import FinchData

/// The training-loop settings every RLHF trainer (reward, DPO, PPO) shares; a part of `RewardConfig`, `DPOConfig` and
/// `PPOConfig`, encoded flat with them (property names are the flags' camelCase forms).
public struct RLHFTrainingOptions: Codable, Equatable, Sendable {
    /// `full` or `lora` / `dora` (ppo also `adapter`, continuing a bottleneck adapter given as the policy).
    public var method = "full"
    public var lr = 1e-5
    public var schedule = "cosine"
    public var warmupSteps = 0
    public var weightDecay = 0.0
    public var maxGradNorm = 1.0
    /// Optimizer steps (0 = one pass over the training pairs / prompts per epoch × `epochs`).
    public var steps = 0
    public var epochs = 1
    public var batchSize = 8
    public var maxLength = 512
    /// Pairs / prompts longer than `maxLength`.
    public var overlong = OverlongPolicy.drop
    public var evalFraction = 0.1
    public var evalEvery = 0
    public var checkpointEvery = 0
    public var keepCheckpoints = 2
    public var seed: UInt64 = 42
    public var template: String?
    /// Compute threads (0 = every core).
    public var threads = 0
    /// Continue from the newest checkpoint of the run folder.
    public var resume = false
    /// Data-parallel runs (`mpirun -np N finch reward|dpo`): all-reduce bucket size, seconds to wait for the other ranks.
    public var allreduceBucketMb = 4.0
    public var rankTimeout = 300.0
    /// One process computing each step as N ranks would: the exact reference for `mpirun -np N` (see TrainerConfig).
    public var simulateRanks = 1
    public init() {}

    /// For the methods without a one-process simulation of ranks (ppo, grpo, kto): refuses `--simulate-ranks`.
    public func requireSingleProcess(_ command: String) throws {
        guard simulateRanks == 1 else { throw TrainingError("--simulate-ranks works with sft, pretrain, reward and dpo; \(command) has no simulation of ranks") }
    }

    /// The ranges every RLHF trainer needs; errors name the flag.
    public func validate() throws {
        func need(_ ok: Bool, _ msg: String) throws { if !ok { throw TrainingError(msg) } }
        try need(lr > 0 && lr.isFinite, "--lr must be positive (got \(lr))")
        try need(LRSchedule.Kind(name: schedule) != nil,
                 "unknown --schedule '\(schedule)' (choose one of \(LRSchedule.Kind.allCases.map(\.rawValue).joined(separator: ", ")))")
        try need(warmupSteps >= 0, "--warmup-steps must be >= 0 (got \(warmupSteps))")
        try need(steps >= 0, "--steps must be >= 0 (got \(steps))")
        try need(batchSize >= 1, "--batch-size must be at least 1 (got \(batchSize))")
        try need(maxLength >= 2, "--max-length must be at least 2 (got \(maxLength))")
        try need(evalFraction >= 0 && evalFraction < 1, "--eval-fraction must be in [0, 1) (got \(evalFraction))")
        try need(allreduceBucketMb > 0, "--allreduce-bucket-mb must be positive (got \(allreduceBucketMb))")
        try need(rankTimeout > 0, "--rank-timeout must be positive seconds (got \(rankTimeout))")
        try need(simulateRanks >= 1, "--simulate-ranks must be at least 1 (got \(simulateRanks))")
    }
}

/// A model folder with what training needs besides weights: tokenizer, chat template, encoder, pad id.
/// An adapter folder may stand for its model (its `base_model_name_or_path` is read): a LoRA/DoRA adapter is
/// merged into the base's weights; a bottleneck adapter (peft_type ADAPTER) cannot be merged, so it is kept in
/// `bottleneckAdapter` for the trainers that serve it (PPO continues training it).
public struct LoadedModelFolder {
    public let folder: HFModelFolder
    public let tokenizer: any TextTokenizer
    public let tokenizerURL: URL
    public let template: ChatTemplate
    public let encoder: ChatEncoder
    public let padID: Int
    /// The bottleneck adapter folder given in place of a model (its base is `folder`), nil otherwise.
    public let bottleneckAdapter: URL?

    /// Reads `url`; `templateName` overrides the template the folder records (else `chatml`).
    /// `causalLM`: refuse a reward / classifier folder (policies, DPO and PPO models generate or score tokens).
    /// `servesBottleneck`: the caller can train or serve a bottleneck adapter folder (else it is refused by name).
    public init(_ url: URL, templateName: String? = nil, causalLM: String? = nil, servesBottleneck: Bool = false) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), isDir.boolValue || HFModelFolder.isGGUF(url) else {
            throw TrainingError("model folder \(url.path) does not exist")
        }
        let (modelURL, adapter) = isDir.boolValue
            ? try PEFTAdapterFolder.modelAndAdapter(url, noBase: "merge it into its base first (finch merge)") : (url, nil)
        var read = try HFModelFolder.read(modelURL)
        if let use = causalLM { try read.requireCausalLM(use) }
        var bottleneck: URL? = nil
        if let adapter {
            switch try PEFTAdapterFolder.peftType(of: adapter) {
            case "LORA":
                read = read.replacingParameters(try LoRAMerger.merge(read.parameters, config: read.config, adapterFolder: adapter))
            case "ADAPTER" where servesBottleneck:
                bottleneck = adapter
            case let type:
                let use = causalLM ?? "this command"
                throw TrainingError("\(adapter.path) is a \(type) adapter; \(use) takes a model folder or a LoRA/DoRA adapter folder"
                                    + (type == "ADAPTER" ? " (bottleneck adapters are served by ppo, chat, generate and eval)" : ""))
            }
        }
        folder = read
        bottleneckAdapter = bottleneck
        guard let tok = folder.tokenizerModel else {
            throw TrainingError("\(modelURL.path): no tokenizer (tokenizer.model or tokenizer.json) in the model folder")
        }
        tokenizerURL = tok
        tokenizer = try Tokenizers.load(path: tok.path)
        try folder.requireTokenizerFits(tokenizer, tokenizerFile: tok)
        if let name = templateName { template = try ChatTemplate.load(name) }
        else if let a = adapter, let t = try ChatTemplate.forModel(a) { template = t }
        else { template = try ChatTemplate.forModel(modelURL) ?? ChatTemplate.load("chatml") }
        encoder = try ChatEncoder(tokenizer: tokenizer, template: template)
        if tokenizer.padID >= 0 { padID = tokenizer.padID }
        else if let p = folder.config.padTokenId { padID = p }
        else if tokenizer.unkID >= 0 { padID = tokenizer.unkID }
        else { padID = 0 }
    }

    /// A fresh decoder over (copies of) the folder's weights.
    public func decoder(copy: Bool = false) throws -> Decoder {
        let p = copy ? folder.parameters.mapValues { $0.copy() } : folder.parameters
        return try Decoder(config: folder.config, parameters: p)
    }
}

enum RLHFSetup {
    /// Ctrl-C between steps: the step is done; write a checkpoint and the loss curve, skip the final stage.
    static func stop(_ session: TrainingSession) throws -> Never {
        session.progress.done(step: session.state.step, reason: "interrupted")
        if session.run.latestCheckpoint()?.step != session.state.step { _ = try session.checkpoint() }
        try? session.writeLossCurve()
        throw TrainingInterrupted(step: session.state.step, runFolder: session.run.url)
    }

    /// `--max-length` fitted to the model's positions: a longer value would run past the position embeddings (NaN
    /// losses), so it is lowered to them, with a note.
    static func fitLength(_ options: inout RLHFTrainingOptions, _ folder: HFModelFolder, _ progress: ProgressReporter) {
        let positions = folder.config.maxPositions
        guard options.maxLength > positions else { return }
        progress.message("note: --max-length \(options.maxLength) is more than the model's \(positions) positions; using \(positions)")
        options.maxLength = positions
    }

    /// Says how many pairs or prompts were dropped or cut for length (silent when none).
    static func noteOverlong(_ progress: ProgressReporter) -> (OverlongReport) -> Void {
        { r in if !r.summary.isEmpty { progress.message("note: \(r.summary)") } }
    }

    /// The PEFT module of `options.method` (nil for `full`); only methods that keep the token layout.
    static func peft(_ o: RLHFTrainingOptions, _ peft: PEFTOptions, decoder: Decoder, tokenizer: any TextTokenizer) throws -> PEFTModule? {
        guard ["full", "lora", "dora"].contains(o.method) else {
            throw TrainingError("--method \(o.method): RLHF trainers support full, lora and dora"
                                + (o.method == "adapter" ? " (and ppo continues a bottleneck adapter given as --policy)" : ""))
        }
        let module = try PEFTMethods.make(o.method, options: peft, decoder: decoder, tokenizer: tokenizer, seed: o.seed)
        if let q = peft.baseQuant {   // the method freezes the base first; only frozen projections are quantised
            guard q != "gguf" else { throw TrainingError("--base-quant gguf is for finch sft; give a format (q8_0, q5_0, q4_0, q4_1, q4_K, q6_K)") }
            module?.attach(to: decoder)
            _ = try PEFTMethods.quantizeBase(decoder, options: peft)
        }
        return module
    }

    /// Two optimizer groups (with / without weight decay) over `parameters`.
    static func groups(_ parameters: [String: Tensor]) -> [ParameterGroup] {
        var decay: [String] = [], noDecay: [String] = []
        for (n, t) in parameters.sorted(by: { $0.key < $1.key }) {
            if TrainableSet.noDecay(n, shape: t.shape) { noDecay.append(n) } else { decay.append(n) }
        }
        var g: [ParameterGroup] = []
        if !decay.isEmpty { g.append(ParameterGroup(label: "decay", names: decay)) }
        if !noDecay.isEmpty { g.append(ParameterGroup(label: "no_decay", names: noDecay, weightDecay: false)) }
        return g
    }

    static func session(run: RunFolder, o: RLHFTrainingOptions, totalSteps: Int, parameters: @escaping () -> [String: Tensor],
                        progress: ProgressReporter) throws -> TrainingSession {
        guard let kind = LRSchedule.Kind(name: o.schedule) else {
            throw TrainingError("unknown --schedule '\(o.schedule)' (choose one of \(LRSchedule.Kind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let s = try TrainingSession(run: run, parameters: parameters, groups: groups(parameters()),
                                    settings: AdamWSettings(weightDecay: o.weightDecay, maxGradNorm: o.maxGradNorm > 0 ? o.maxGradNorm : nil),
                                    schedule: LRSchedule(kind: kind, baseLR: o.lr, warmupSteps: o.warmupSteps, totalSteps: totalSteps),
                                    seed: o.seed, progress: progress)
        s.checkpointEvery = o.checkpointEvery
        s.keepCheckpoints = o.keepCheckpoints
        s.isWriter = World.current.isWriter
        return s
    }

    /// Continues from the newest periodic checkpoint of `run` when `resume` (and one exists).
    /// `stepsPerIteration`: PPO counts iterations of several optimizer steps; the note names both.
    static func resumeIfAsked(_ s: TrainingSession, resume: Bool, stepsPerIteration: Int? = nil) throws {
        guard resume else { return }
        guard let last = s.run.latestCheckpoint() else {
            s.progress.message("no checkpoint in \(s.run.checkpointsURL.path): starting from step 0")
            try s.startFresh()
            return
        }
        try s.resume(from: last.url)
        let at = stepsPerIteration.map { "optimizer step \(s.state.step) = iteration \(s.state.step / max(1, $0))" } ?? "step \(s.state.step)"
        s.progress.message("resumed from \(last.url.path) (\(at))")
    }

    /// Optimizer steps of a reward / DPO run: `steps`, else whole epochs of `pairs / batchSize` batches (a batch of
    /// every rank's `batchSize` pairs under mpirun).
    static func totalSteps(_ o: RLHFTrainingOptions, pairs: Int) -> Int {
        o.steps > 0 ? o.steps : max(1, pairs / max(1, o.batchSize * max(World.current.size, o.simulateRanks))) * max(1, o.epochs)
    }

    /// The run folder of a reward / DPO run with its recipe, created by rank 0 first under mpirun.
    static func runFolder(_ path: String, recipe: Recipe) throws -> RunFolder {
        let world = World.current
        try world.beginRankZeroFirst()
        let run = try RunFolder(url: URL(fileURLWithPath: path))
        if world.isWriter { try recipe.write(to: run) }
        try world.endRankZeroFirst()
        return run
    }

    /// The indices of batch `step` in an epoch-shuffled order (seeded per epoch, so any step can be rebuilt).
    static func batchIndices(step: Int, count: Int, batchSize: Int, seed: UInt64) -> [Int] {
        let perEpoch = max(1, count / batchSize)
        let epoch = step / perEpoch, k = step % perEpoch
        var order = Array(0..<count)
        var rng = SeededRNG(seed: seed &+ UInt64(epoch) &* 0x9E37_79B9)
        rng.shuffle(&order)
        return Array(order[(k * batchSize)..<min(count, (k + 1) * batchSize)])
    }

    /// Throws the clear "stopped" error for a non-finite value (before any checkpoint of it is written).
    static func requireFinite(_ value: Double, _ what: String, step: Int) throws {
        guard value.isFinite else {
            throw TrainingError("step \(step): \(what) is \(value) — stopping; no checkpoint was written for this step (lower --lr or check the data)")
        }
    }

    /// The loop PPO and GRPO share, after their session is set up and resumed: the held-out mean reward before
    /// (on a fresh run), iterations of `perIteration` optimizer steps until `totalSteps` (stopping between them when the
    /// sink asks), an evaluation every `evalEvery` iterations written before that iteration's checkpoint (so a run killed
    /// between the two redoes both), checkpoints at iteration boundaries, then the evaluation after and `final/`.
    static func iterations(_ session: TrainingSession, o: RLHFTrainingOptions, perIteration perIter: Int, totalSteps: Int,
                           heldOut: Int, dp: DataParallel? = nil, evaluate: () throws -> Double?, iterate: (Int) throws -> Void,
                           writeFinal: @escaping (URL) throws -> Void) throws -> (before: Double?, after: Double?) {
        let progress = session.progress
        var before: Double? = nil
        if session.state.step == 0, let b = try evaluate() {
            before = b
            progress.message(String(format: "held-out mean reward before: %.4f on %d prompts", b, heldOut))
            try session.log(["eval_reward": b, "iteration": 0])
        }
        progress.startClock(afterStep: session.state.step / perIter)
        while session.state.step < totalSteps {
            if try dp?.anyStop(progress.stopRequested) ?? progress.stopRequested { try stop(session) }
            try iterate(session.state.step / perIter)
            let done = session.state.step / perIter
            if o.evalEvery > 0, done % o.evalEvery == 0, let e = try evaluate() {
                try session.log(["eval_reward": e, "iteration": done], forceCurve: true)
                let improved = try session.evaluated(loss: -e, saveBest: true)
                progress.evaluation(EvaluationProgress(step: done, metrics: ["eval_reward": e], improved: improved,
                                                       text: String(format: "iteration %d: held-out mean reward %.4f", done, e) + (improved ? " (best)" : "")))
            }
            if o.checkpointEvery > 0, done % o.checkpointEvery == 0 || session.state.step == totalSteps { try session.checkpoint() }
        }
        progress.done(step: session.state.step / perIter, reason: "completed")
        let after = try evaluate()
        if let a = after {
            progress.message(String(format: "held-out mean reward after: %.4f on %d prompts", a, heldOut))
            try session.log(["eval_reward": a, "iteration": session.state.step / perIter], forceCurve: true)
        }
        try session.writeLossCurve()
        if session.isWriter { try RunFolder.writeAtomically(to: session.run.url.appendingPathComponent("final"), writeFinal) }
        return (before, after)
    }

    /// The resumed step must sit on an iteration boundary (else the iteration settings changed since the checkpoint).
    static func requireIterationBoundary(_ session: TrainingSession, perIteration: Int, method: String, settings: String) throws {
        guard session.state.step % perIteration == 0 else {
            throw TrainingError("checkpoint step \(session.state.step) is not at a \(method) iteration boundary (\(perIteration) optimizer steps per iteration); were \(settings) changed?")
        }
    }
}
