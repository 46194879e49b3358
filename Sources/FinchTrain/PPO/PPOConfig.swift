import Foundation

/// Everything `finch ppo` takes: inputs, rollout and PPO settings (`PPOOptions`), the PPO / GAE hyper-parameters
/// (`PPOMath.Hyperparameters`), the shared RLHF loop and the PEFT settings, encoded flat. Defaults as TRL's PPO
/// examples: rate 1e-5, LoRA dropout 0.
public struct PPOConfig: TrainingConfig, Equatable, Sendable {
    public var ppo = PPOOptions()
    public var hyper = PPOMath.Hyperparameters()
    public var common = RLHFTrainingOptions()
    public var peft = PEFTOptions()

    public init() {
        common.lr = 1e-5
        common.batchSize = 8
        common.evalFraction = 0.1
        peft.loraDropout = 0   // masks follow the step when it is set
    }

    public init(from decoder: any Decoder) throws {
        ppo = try PPOOptions(from: decoder)
        hyper = try PPOMath.Hyperparameters(from: decoder)
        common = try RLHFTrainingOptions(from: decoder)
        peft = try PEFTOptions(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        try ppo.encode(to: encoder)
        try hyper.encode(to: encoder)
        try common.encode(to: encoder)
        try peft.encode(to: encoder)
    }

    public func validate() throws {
        func need(_ ok: Bool, _ msg: String) throws { if !ok { throw TrainingError(msg) } }
        try requireOption(ppo.policy, "policy", "DIR")
        try requireOption(ppo.prompts, "prompts", "FILE")
        try requireOption(ppo.out, "out", "RUN")
        // Neither is fine for a library caller that passes its own `RewardSource`.
        try need(ppo.reward == nil || ppo.rewardCommand == nil, "give exactly one of --reward RM_DIR or --reward-command CMD")
        try common.validate()
        try common.requireSingleProcess("finch ppo")
        if common.method != "adapter" { try peft.validate(method: common.method) }
        let o = ppo
        try need(o.iterations >= 1, "--iterations must be at least 1 (got \(o.iterations))")
        try need(o.samplesPerPrompt >= 1 && common.batchSize % o.samplesPerPrompt == 0,
                 "--samples-per-prompt \(o.samplesPerPrompt) must be at least 1 and divide the batch size \(common.batchSize)")
        try need(!(o.groupBaseline && o.samplesPerPrompt < 2), "--group-baseline needs --samples-per-prompt 2 or more")
        try need(!(o.estimator == .rloo && o.samplesPerPrompt < 2),
                 "--estimator rloo needs --samples-per-prompt 2 or more (the baseline is the other replies to the same prompt)")
        try need(o.oversample >= 1, "--oversample \(o.oversample) must be at least 1")
        try need(!(o.oversample > 1 && o.samplesPerPrompt < 2), "--oversample needs --samples-per-prompt 2 or more (groups of replies to compare)")
        try need(o.minibatches >= 1 && o.minibatches <= common.batchSize,
                 "--minibatches \(o.minibatches) must be between 1 and the batch size \(common.batchSize)")
        try need(o.ppoEpochs >= 1, "--ppo-epochs must be at least 1 (got \(o.ppoEpochs))")
        try need(o.maxNewTokens >= 1, "--max-new-tokens must be at least 1 (got \(o.maxNewTokens))")
        try need(o.temperature >= 0 && o.temperature.isFinite, "--temperature must be >= 0 (got \(o.temperature))")
        try need(!(o.ptxCoef > 0 && o.ptxData == nil), "--ptx-coef needs --ptx-data (a text file, or instruction/chat JSONL)")
        try need(o.rewardTimeout > 0, "--reward-timeout must be positive (got \(o.rewardTimeout))")
    }
}

/// Inputs of `finch ppo`, rollouts and the PPO loop.
public struct PPOOptions: Codable, Equatable, Sendable {
    /// The SFT policy (model folder, or an adapter folder that stands for it).
    public var policy = ""
    /// Reward model folder, or a reward program (run once via /bin/sh -c; JSONL in, one number per line out).
    public var reward: String?
    public var rewardCommand: String?
    /// Seconds to wait for the reward program's answer.
    public var rewardTimeout = 60.0
    /// Prompts JSONL ({prompt, ...} or chat messages).
    public var prompts = ""
    /// Run folder.
    public var out = ""
    /// PPO iterations (rollout batches); `batchSize` responses each.
    public var iterations = 20
    /// Responses sampled per prompt: a batch holds `batchSize / samplesPerPrompt` distinct prompts, so that
    /// right and wrong replies to the same prompt meet in one batch and the whitened advantages contrast them.
    public var samplesPerPrompt = 1
    /// Leave-one-out baseline (RLOO): each score minus the mean score of the other replies to the same prompt
    /// (needs `samplesPerPrompt` ≥ 2). Prompts whose replies all score alike then add no policy-gradient noise,
    /// which matters when most rollouts of a weak policy score 0.
    public var groupBaseline = false
    /// Dynamic sampling (DAPO): when > 1, up to `oversample × batchSize / samplesPerPrompt` prompts are drawn per
    /// iteration and a prompt's group of replies enters the batch only if its scores differ (a group that is all
    /// right or all wrong carries no signal under a group baseline); tied groups fill any slots left over.
    public var oversample = 1
    /// gae (TRL PPO: value head, GAE) or rloo (TRL RLOO: no critic, leave-one-out advantage per reply;
    /// needs `samplesPerPrompt` ≥ 2 and implies the group baseline).
    public var estimator = AdvantageEstimator.gae
    /// rloo: whiten the advantages over the batch (TRL `normalize_advantage`).
    public var normalizeAdvantage = false
    public var ppoEpochs = 4
    public var minibatches = 1
    public var maxNewTokens = 32
    public var temperature = 1.0
    public var topK = 0
    public var topP = 1.0
    /// Adaptive KL: target KL per sequence (nil = fixed coefficient `klCoef`) and horizon (samples).
    public var klTarget: Double?
    public var klHorizon = 10000.0
    /// Subtracted from the score of a response that never emits end-of-turn (nil = off).
    public var missingEosPenalty: Double?
    /// Scores are whitened over the batch (`normalizeRewards`) and/or clipped to ±`rewardClip`.
    public var normalizeRewards = false
    public var rewardClip: Double?
    /// Pretraining-loss mixing: coefficient and data (a text file, or instruction/chat JSONL).
    public var ptxCoef = 0.0
    public var ptxData: String?
    /// The run stops when the rollout KL (nats per sequence) exceeds this.
    public var maxKl = 50.0
    /// Held-out prompts evaluated before and after.
    public var evalPrompts = 64
    public init() {}
}
