import ArgumentParser
import FinchKernels
import FinchTrain
import Foundation

/// `finch classify`: a sequence-classification head on a decoder, trained on `{text, label}` JSONL.
struct ClassifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Fine-tune a classification head (full, freeze or lora) on {text, label} JSONL; report accuracy and per-class P/R/F1.",
        discussion: """
        The head reads the last real token's hidden state (as LlamaForSequenceClassification). RUN/final is a Hugging Face
        LlamaForSequenceClassification folder (LoRA merged) with labels.json; RUN/classify.json holds the report.
        Example: finch classify --model runs/base/final --data corpora/classify.jsonl --eval-data corpora/classify_eval.jsonl \\
                   --labels food,sports,technology,weather --method lora --out runs/classify
        """)

    @Option(help: "Model folder.") var model: String
    @Option(help: "Training {text, label} JSONL.") var data: String
    @Option(help: "Held-out {text, label} JSONL for the report.") var evalData: String?
    @Option(help: "Labels, comma-separated.") var labels: String
    @Option(help: "full, freeze (head only) or lora.") var method = "lora"
    @Option(help: "Run folder.") var out: String
    @Option(help: "Passes over the data (ignored with --max-steps).") var epochs = 2
    @Option(help: "Optimizer steps.") var maxSteps: Int?
    @Option(help: "Rows per step.") var batchSize = 16
    @Option(help: "Tokens per row.") var maxLength = 128
    @Option(help: "Peak learning rate.") var lr = 1e-3
    @Option(help: "LoRA rank.") var loraR = 8
    @Option(help: "LoRA alpha.") var loraAlpha = 16.0
    @Option(help: "Random seed.") var seed: UInt64 = 42
    @Option(help: "Threads (default: all cores).") var threads: Int?

    func run() throws {
        if let threads, threads > 0 { ThreadPool.shared.setThreads(threads) }
        var o = ClassifyOptions(model: model, data: data, labels: labels.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }, out: out)
        o.evalData = evalData; o.method = method; o.epochs = epochs; o.maxSteps = maxSteps; o.batchSize = batchSize
        o.maxLength = maxLength; o.lr = lr; o.seed = seed
        o.peft.loraR = loraR; o.peft.loraAlpha = loraAlpha; o.peft.loraDropout = 0
        _ = try ClassifyJob.run(o)
    }
}
