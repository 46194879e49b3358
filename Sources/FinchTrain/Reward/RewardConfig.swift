import Foundation

/// Everything `finch reward` takes: inputs and the reward loss (`RewardOptions`), the shared RLHF loop
/// (`RLHFTrainingOptions`) and the PEFT settings, encoded flat.
public struct RewardConfig: TrainingConfig, Equatable, Sendable {
    public var reward = RewardOptions()
    public var common = RLHFTrainingOptions()
    public var peft = PEFTOptions()

    public init() {}

    public init(from decoder: any Decoder) throws {
        reward = try RewardOptions(from: decoder)
        common = try RLHFTrainingOptions(from: decoder)
        peft = try PEFTOptions(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        try reward.encode(to: encoder)
        try common.encode(to: encoder)
        try peft.encode(to: encoder)
    }

    public func validate() throws {
        try requireOption(reward.model, "model", "DIR")
        try requireOption(reward.data.first, "data", "FILE")
        try requireOption(reward.out, "out", "RUN")
        try common.validate()
        try peft.validate(method: common.method)
        if let l = reward.limit, l < 1 { throw TrainingError("--limit must be at least 1 (got \(l))") }
    }
}

/// Inputs of `finch reward` and its loss settings.
public struct RewardOptions: Codable, Equatable, Sendable {
    /// Base model folder (its trunk is kept, a score head added).
    public var model = ""
    /// Preference JSONL ({prompt, chosen, rejected[, margin]}).
    public var data: [String] = []
    /// Run folder.
    public var out = ""
    /// TRL's `center_rewards_coefficient` (0 = off).
    public var centerRewards = 0.0
    /// Ignore the data's `margin` column.
    public var noMargin = false
    /// Pairs read (nil = all).
    public var limit: Int?
    /// Held-out preference files: when given, every pair of the training data is trained on and these are
    /// evaluated instead of an `evalFraction` split (nil = split the training data).
    public var evalData: [String]?
    public init() {}
}
