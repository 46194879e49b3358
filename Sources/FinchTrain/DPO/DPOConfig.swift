import Foundation

/// Everything `finch dpo` takes: inputs and the DPO loss (`DPOOptions`), the shared RLHF loop and the PEFT settings,
/// encoded flat. The default rate is 5e-6.
public struct DPOConfig: TrainingConfig, Equatable, Sendable {
    public var dpo = DPOOptions()
    public var common = RLHFTrainingOptions()
    public var peft = PEFTOptions()

    public init() { common.lr = 5e-6 }

    public init(from decoder: any Decoder) throws {
        dpo = try DPOOptions(from: decoder)
        common = try RLHFTrainingOptions(from: decoder)
        peft = try PEFTOptions(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        try dpo.encode(to: encoder)
        try common.encode(to: encoder)
        try peft.encode(to: encoder)
    }

    public func validate() throws {
        try requireOption(dpo.model, "model", "DIR")
        try requireOption(dpo.data.first, "data", "FILE")
        try requireOption(dpo.out, "out", "RUN")
        guard dpo.beta > 0, dpo.beta.isFinite else {
            throw TrainingError("--beta must be positive (got \(dpo.beta)): at 0 the DPO loss is log 2 whatever the policy does")
        }
        guard dpo.labelSmoothing >= 0 && dpo.labelSmoothing <= 0.5 else {
            throw TrainingError("--label-smoothing must be in [0, 0.5] (got \(dpo.labelSmoothing))")
        }
        if dpo.lossType == .robust, dpo.labelSmoothing >= 0.5 {
            throw TrainingError("--loss-type robust needs --label-smoothing below 0.5 (got \(dpo.labelSmoothing)): it divides by 1 − 2ε")
        }
        try common.validate()
        try peft.validate(method: common.method)
        if let l = dpo.limit, l < 1 { throw TrainingError("--limit must be at least 1 (got \(l))") }
    }
}

/// Inputs of `finch dpo` and its loss settings.
public struct DPOOptions: Codable, Equatable, Sendable {
    /// The policy (the SFT model; also the reference).
    public var model = ""
    /// Preference JSONL.
    public var data: [String] = []
    /// Run folder.
    public var out = ""
    public var beta = 0.1
    /// sigmoid (TRL's default), ipo, hinge, robust, apo_zero or simpo (reference-free).
    public var lossType = DPOLoss.Variant.sigmoid
    /// SimPO's target reward margin γ (TRL `simpo_gamma`).
    public var simpoGamma = 0.5
    /// Conservative DPO's label smoothing.
    public var labelSmoothing = 0.0
    /// Pairs read (nil = all).
    public var limit: Int?
    public init() {}
}
