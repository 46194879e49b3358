import Foundation

/// Everything `finch grpo` takes: inputs, rollouts and the GRPO loss (`GRPOOptions`), the shared RLHF loop and the
/// PEFT settings, encoded flat. Defaults as TRL's GRPOConfig: loss `dapo`, β = 0 (no reference), ε = 0.2 on both
/// sides, group std scaling, one inner iteration; the rate 1e-5 and LoRA dropout 0 as `finch ppo`.
public struct GRPOConfig: TrainingConfig, Equatable, Sendable {
    public var grpo = GRPOOptions()
    public var common = RLHFTrainingOptions()
    public var peft = PEFTOptions()

    public init() {
        common.lr = 1e-5
        common.batchSize = 4
        peft.loraDropout = 0
    }

    public init(from decoder: any Decoder) throws {
        grpo = try GRPOOptions(from: decoder)
        common = try RLHFTrainingOptions(from: decoder)
        peft = try PEFTOptions(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        try grpo.encode(to: encoder)
        try common.encode(to: encoder)
        try peft.encode(to: encoder)
    }

    /// The loss settings `GRPOMath.loss` takes.
    public var lossSettings: GRPOMath.Settings {
        var s = GRPOMath.Settings()
        s.lossType = grpo.lossType; s.epsilonLow = grpo.epsilon; s.epsilonHigh = grpo.epsilonHigh ?? grpo.epsilon
        s.beta = grpo.beta; s.maxCompletionLength = grpo.maxNewTokens
        return s
    }

    public func validate() throws {
        func need(_ ok: Bool, _ msg: String) throws { if !ok { throw TrainingError(msg) } }
        let o = grpo
        try requireOption(o.policy, "policy", "DIR")
        try requireOption(o.prompts, "prompts", "FILE")
        try requireOption(o.out, "out", "RUN")
        try need(!o.reward.isEmpty || !o.rewardCommand.isEmpty, "give at least one --reward RM_DIR or --reward-command CMD")
        if let w = o.rewardWeights {
            try need(w.count == o.reward.count + o.rewardCommand.count,
                     "--reward-weights has \(w.count) weights for \(o.reward.count + o.rewardCommand.count) reward functions (reward models first, then commands)")
        }
        try need(o.groupSize >= 2, "--group-size must be at least 2 (got \(o.groupSize)): the advantage compares a completion with the others of its group")
        try need(o.iterations >= 1, "--iterations must be at least 1 (got \(o.iterations))")
        try need(o.innerIterations >= 1, "--inner-iterations must be at least 1 (got \(o.innerIterations))")
        try need(o.minibatches >= 1 && o.minibatches <= common.batchSize * o.groupSize,
                 "--minibatches \(o.minibatches) must be between 1 and the completions per iteration (\(common.batchSize * o.groupSize))")
        try need(o.maxNewTokens >= 1, "--max-new-tokens must be at least 1 (got \(o.maxNewTokens))")
        try need(o.temperature > 0 && o.temperature.isFinite, "--temperature must be positive (got \(o.temperature)): a group of greedy completions is one completion")
        try need(o.epsilon > 0 && (o.epsilonHigh ?? o.epsilon) > 0, "--epsilon and --epsilon-high must be positive")
        try need(o.beta >= 0, "--beta must be >= 0 (got \(o.beta))")
        if let c = o.overlongPenalty { try need(c >= 1 && c < o.maxNewTokens, "--overlong-penalty \(c) must be between 1 and --max-new-tokens − 1") }
        try need(o.rewardTimeout > 0, "--reward-timeout must be positive (got \(o.rewardTimeout))")
        try common.validate()
        try common.requireSingleProcess("finch grpo")
        try peft.validate(method: common.method)
    }
}

/// Inputs of `finch grpo`, its rollouts and its loss.
public struct GRPOOptions: Codable, Equatable, Sendable {
    /// The policy (the SFT model, or a LoRA adapter folder that stands for it).
    public var policy = ""
    /// Prompts JSONL ({prompt, ...} or chat messages; the other fields go to reward commands).
    public var prompts = ""
    /// Run folder.
    public var out = ""
    /// Reward model folders and reward programs (JSONL in, one number per line out); each is a reward function.
    public var reward: [String] = []
    public var rewardCommand: [String] = []
    /// One weight per reward function, reward models first (nil = all 1).
    public var rewardWeights: [Double]?
    public var rewardTimeout = 60.0
    /// Iterations: each samples `groupSize` completions for `batchSize` prompts.
    public var iterations = 20
    /// G: completions per prompt.
    public var groupSize = 4
    /// μ: optimisation passes over each iteration's completions (TRL `num_iterations`).
    public var innerIterations = 1
    /// Optimizer steps per pass (the completions are split into this many minibatches).
    public var minibatches = 1
    public var maxNewTokens = 32
    public var temperature = 1.0
    public var topK = 0
    public var topP = 1.0
    /// grpo, dapo (default) or dr_grpo.
    public var lossType = GRPOMath.LossType.dapo
    /// ε_low and ε_high (nil = ε_low).
    public var epsilon = 0.2
    public var epsilonHigh: Double?
    /// k3 KL coefficient to the reference (the base with the adapter off for LoRA; 0 = none).
    public var beta = 0.0
    /// group, batch or none (Dr. GRPO: no std scaling).
    public var scaleRewards = GRPOMath.RewardScaling.group
    /// DAPO's soft over-long punishment: completions within this many tokens of --max-new-tokens lose up to 1 reward.
    public var overlongPenalty: Int?
    /// Leave completions cut at --max-new-tokens (no end of turn) out of the loss.
    public var maskTruncated = false
    /// Held-out prompts evaluated (greedy) before and after.
    public var evalPrompts = 64
    public init() {}
}
