import Foundation

/// Everything `finch pretrain` takes: inputs, model shape and tokenizer (`PretrainJobOptions`) and the training loop
/// (`TrainerConfig`; the method is always full training), encoded flat.
public struct PretrainConfig: TrainingConfig, Equatable, Sendable {
    public var job = PretrainJobOptions()
    public var training = TrainerConfig()
    /// LoRA and the other PEFT methods, for continued pretraining of a `--model` (domain-adaptive pretraining).
    public var peft = PEFTOptions()

    public init() {}

    public init(from decoder: any Decoder) throws {
        job = try PretrainJobOptions(from: decoder)
        training = try TrainerConfig(from: decoder)
        peft = try PEFTOptions(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        try job.encode(to: encoder)
        try training.encode(to: encoder)
        try peft.encode(to: encoder)
    }

    public func validate() throws {
        try requireOption(job.data.first, "data", "FILE")
        try requireOption(job.out, "out", "RUN")
        guard job.preset == nil || job.modelConfig == nil else { throw TrainingError("give --preset or --model-config, not both") }
        if job.model != nil {
            // Continued pretraining: the model brings its architecture and tokenizer.
            for (given, flag) in [(job.preset, "--preset"), (job.modelConfig, "--model-config"), (job.tokenizer, "--tokenizer")] where given != nil {
                throw TrainingError("\(flag) describes a new model; with --model the model's own architecture and tokenizer are used")
            }
            try training.validate()
            try peft.validate(method: training.method)
        } else {
            guard training.method == "full" else {
                throw TrainingError("--method \(training.method) needs a model to adapt: give --model (a model trained from scratch is trained in full)")
            }
            for (given, flag) in [(job.replay, "--replay"), (job.baseEval, "--base-eval")] where given != nil {
                throw TrainingError("\(flag) measures forgetting of a pretrained model: give --model")
            }
        }
        if let p = job.preset, !ModelPresets.names.contains(p) {
            throw TrainingError("unknown --preset '\(p)' (choose one of \(ModelPresets.names.joined(separator: ", ")))")
        }
        guard job.evalFraction >= 0 && job.evalFraction < 1 else {
            throw TrainingError("--eval-fraction must be in [0, 1) (got \(job.evalFraction))")
        }
        var t = training
        t.method = "full"
        try t.validate()
    }
}

/// Inputs and outputs of `finch pretrain` (besides `TrainerConfig`).
public struct PretrainJobOptions: Codable, Equatable, Sendable {
    /// Text / JSONL files or one packed dataset folder.
    public var data: [String] = []
    public var out = ""
    /// A model to continue pretraining (domain-adaptive pretraining): a Finch / Hugging Face folder or a .gguf file.
    /// Nil = train a new model from `preset` / `modelConfig`.
    public var model: String?
    /// General-corpus data mixed into batches (`replayRatio`) against forgetting, and measured before and after.
    public var replay: [String]?
    /// General text for the before/after perplexity (default: `replay`).
    public var baseEval: [String]?
    /// Micro-batches of the general text measured before and after.
    public var baseEvalBatches: Int = 8
    /// Also write a merged model (LoRA / DoRA) into RUN/final/merged.
    public var merge: Bool = false
    /// A preset name (`ModelPresets.names`) or a config.json file (`modelConfig`).
    public var preset: String?
    public var modelConfig: String?
    /// A tokenizer (.model file or folder); nil = train one on `data` into RUN/tokenizer.
    public var tokenizer: String?
    public var vocabSize: Int = 4096
    /// Chat template recorded in the model's finch.json (for later SFT / chat).
    public var template: String? = "chatml"
    public var evalFraction: Double = 0.02
    public var resume: Bool = false
    /// Compute threads (0 = every core).
    public var threads = 0

    public init() {}
    public init(data: [String], out: String) { self.data = data; self.out = out }
}
