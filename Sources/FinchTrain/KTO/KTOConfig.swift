import Foundation

/// Everything `finch kto` takes: inputs and the KTO loss (`KTOOptions`), the shared RLHF loop and the PEFT settings,
/// encoded flat. Defaults as TRL's KTOConfig (β 0.1, λ_D = λ_U = 1) with DPO's rate, 5e-6.
public struct KTOConfig: TrainingConfig, Equatable, Sendable {
    public var kto = KTOOptions()
    public var common = RLHFTrainingOptions()
    public var peft = PEFTOptions()

    public init() { common.lr = 5e-6 }

    public init(from decoder: any Decoder) throws {
        kto = try KTOOptions(from: decoder)
        common = try RLHFTrainingOptions(from: decoder)
        peft = try PEFTOptions(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        try kto.encode(to: encoder)
        try common.encode(to: encoder)
        try peft.encode(to: encoder)
    }

    public func validate() throws {
        func need(_ ok: Bool, _ msg: String) throws { if !ok { throw TrainingError(msg) } }
        try requireOption(kto.model, "model", "DIR")
        try requireOption(kto.data.first, "data", "FILE")
        try requireOption(kto.out, "out", "RUN")
        try need(kto.beta > 0 && kto.beta.isFinite, "--beta must be positive (got \(kto.beta))")
        try need(kto.desirableWeight > 0 && kto.undesirableWeight > 0,
                 "--desirable-weight and --undesirable-weight must be positive (got \(kto.desirableWeight), \(kto.undesirableWeight))")
        // The KL reference point pairs each prompt with another example's completion: a batch of one has none.
        try need(!(kto.lossType == .kto && common.batchSize < 2), "--loss-type kto needs --batch-size 2 or more (its KL estimate pairs prompts with other completions in the batch)")
        try common.validate()
        try common.requireSingleProcess("finch kto")
        try peft.validate(method: common.method)
        if let l = kto.limit { try need(l >= 1, "--limit must be at least 1 (got \(l))") }
    }
}

/// Inputs of `finch kto` and its loss settings.
public struct KTOOptions: Codable, Equatable, Sendable {
    /// The policy (the SFT model; also the reference).
    public var model = ""
    /// Unpaired JSONL ({prompt, completion, label}) or preference pairs (unpaired into both labels).
    public var data: [String] = []
    /// Run folder.
    public var out = ""
    public var beta = 0.1
    /// λ_D and λ_U: weights of the desirable and undesirable losses (TRL suggests λ_D·n_D / (λ_U·n_U) in [1, 4/3]).
    public var desirableWeight = 1.0
    public var undesirableWeight = 1.0
    /// kto (with the KL reference point) or apo_zero_unpaired.
    public var lossType = KTOLoss.Variant.kto
    /// Examples read (nil = all).
    public var limit: Int?
    public init() {}
}
