import Foundation
import FinchData

/// Everything `finch sft` takes: inputs and outputs (`SFTJobOptions`), the training loop (`TrainerConfig`) and the
/// PEFT method's settings (`PEFTOptions`), encoded flat (`lora-r: 8` beside `lr: 3e-4` in a recipe).
public struct SFTConfig: TrainingConfig, Equatable, Sendable {
    public var job = SFTJobOptions()
    public var training = TrainerConfig()
    public var peft = PEFTOptions()

    public init() {}
    public init(job: SFTJobOptions, training: TrainerConfig, peft: PEFTOptions = PEFTOptions()) {
        self.job = job; self.training = training; self.peft = peft
    }

    public init(from decoder: any Decoder) throws {
        job = try SFTJobOptions(from: decoder)
        training = try TrainerConfig(from: decoder)
        peft = try PEFTOptions(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        try job.encode(to: encoder)
        try training.encode(to: encoder)
        try peft.encode(to: encoder)
    }

    public func validate() throws {
        try requireOption(job.model, "model", "DIR")
        try requireOption(job.data.first, "data", "FILE")
        try requireOption(job.out, "out", "RUN")
        try training.validate()
        try peft.validate(method: training.method)
        guard job.evalFraction >= 0 && job.evalFraction < 1 else {
            throw TrainingError("--eval-fraction must be in [0, 1) (got \(job.evalFraction))")
        }
        if job.evalGenerate != nil {
            guard job.evalGenerateLimit >= 1 else { throw TrainingError("--eval-generate-limit must be at least 1 (got \(job.evalGenerateLimit))") }
            guard job.evalGenerateMaxTokens >= 1 else {
                throw TrainingError("--eval-generate-max-tokens must be at least 1 (got \(job.evalGenerateMaxTokens))")
            }
            // Generation runs the decoder with its hooks; virtual tokens and cached features are not part of that path.
            guard !["prefix", "prompt"].contains(training.method), !training.cacheFeatures else {
                throw TrainingError("--eval-generate answers with the decoder itself: it does not work with --method \(training.method)\(training.cacheFeatures ? " and --cache-features" : "")")
            }
            guard training.evalEvery >= 0 else { throw TrainingError("--eval-generate needs evaluations (--eval-every is negative)") }
        }
    }
}

/// Inputs and outputs of `finch sft` (besides `TrainerConfig` and `PEFTOptions`).
public struct SFTJobOptions: Codable, Equatable, Sendable {
    /// Base model: a Hugging Face / Finch folder or a .gguf file.
    public var model = ""
    /// JSONL record files or one packed dataset folder.
    public var data: [String] = []
    /// Run folder.
    public var out = ""
    public var template: String?
    /// Held-out share of `data` for evaluation (ignored with `evalData`).
    public var evalFraction: Double = 0.05
    public var evalData: [String]?
    /// Base-corpus data mixed in (`replayRatio`) and used for the forgetting check.
    public var replay: [String]?
    /// Base-corpus text for the before/after perplexity (default: `replay`).
    public var baseEval: [String]?
    /// Micro-batches of the base corpus measured before and after.
    public var baseEvalBatches: Int = 8
    /// Rows with checkable answers (`finch eval` data: prompt, answer, task) answered greedily at every evaluation,
    /// logged as `eval_exact_match` beside `eval_loss`: the loss can rise while the answers still improve.
    public var evalGenerate: String?
    /// How many rows of `evalGenerate` (its first ones) are answered.
    public var evalGenerateLimit: Int = 100
    /// Longest generated answer (tokens).
    public var evalGenerateMaxTokens: Int = 32
    public var resume: Bool = false
    /// Also write a merged model (LoRA / DoRA) into RUN/final/merged.
    public var merge: Bool = false
    public var pack: Bool = true
    public var trainOnPrompt: Bool = false
    /// Records longer than the sequence length: dropped (default), truncated, or an error.
    public var overlong: OverlongPolicy = .drop
    /// Compute threads (0 = every core).
    public var threads = 0

    public init() {}
    public init(model: String, data: [String], out: String) { self.model = model; self.data = data; self.out = out }
}
