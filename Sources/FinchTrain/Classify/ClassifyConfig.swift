import Foundation

/// Everything `finch classify` takes: inputs, labels and the training loop (`ClassifyOptions`) and the LoRA settings,
/// encoded flat. Defaults: LoRA (r 8, α 16, no dropout), 2 epochs of 16 rows, rate 1e-3.
public struct ClassifyConfig: TrainingConfig, Equatable, Sendable {
    public var classify = ClassifyOptions()
    public var peft = PEFTOptions()

    public init() { peft.loraDropout = 0 }
    public init(classify: ClassifyOptions) { self.init(); self.classify = classify }

    public init(from decoder: any Decoder) throws {
        classify = try ClassifyOptions(from: decoder)
        peft = try PEFTOptions(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        try classify.encode(to: encoder)
        try peft.encode(to: encoder)
    }

    public func validate() throws {
        func need(_ ok: Bool, _ msg: String) throws { if !ok { throw TrainingError(msg) } }
        let o = classify
        try requireOption(o.model, "model", "DIR")
        try requireOption(o.data, "data", "FILE")
        try requireOption(o.out, "out", "RUN")
        try need(["full", "freeze", "lora"].contains(o.method), "--method must be full, freeze or lora (got \(o.method))")
        try need(o.labels.count >= 2, "--labels needs at least two labels")
        try need(Set(o.labels).count == o.labels.count, "--labels names a label twice (\(o.labels.joined(separator: ",")))")
        try need(o.batchSize >= 1, "--batch-size must be at least 1 (got \(o.batchSize))")
        try need(o.maxLength >= 2, "--max-length must be at least 2 (got \(o.maxLength))")
        try need(o.lr > 0 && o.lr.isFinite, "--lr must be positive (got \(o.lr))")
        try need(o.maxSteps.map { $0 >= 1 } ?? (o.epochs >= 1), "--max-steps must be >= 1, or --epochs >= 1")
        try need(o.warmup >= 0, "--warmup must be >= 0 (got \(o.warmup))")
        if o.method == "lora" { try peft.validate(method: "lora") }
    }
}

/// Inputs, labels and training loop of `finch classify`.
public struct ClassifyOptions: Codable, Equatable, Sendable {
    public var model = ""
    /// Training {text, label} JSONL.
    public var data = ""
    /// Held-out {text, label} JSONL for the report.
    public var evalData: String?
    public var labels: [String] = []
    public var out = ""
    /// full, freeze (head only) or lora.
    public var method = "lora"
    public var epochs = 2
    public var maxSteps: Int?
    public var batchSize = 16
    public var maxLength = 128
    public var lr = 1e-3
    public var warmup = 10
    public var seed: UInt64 = 42
    public var logEvery = 10
    /// Periodic checkpoint interval in steps (0 = only when stopped) and how many to keep.
    public var checkpointEvery = 0
    public var keepCheckpoints = 2
    public var threads = 0
    /// Continue from the newest checkpoint of the run folder.
    public var resume = false
    public init() {}
    public init(model: String, data: String, labels: [String], out: String) {
        self.model = model; self.data = data; self.labels = labels; self.out = out
    }
}
