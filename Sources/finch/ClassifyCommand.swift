import ArgumentParser
import FinchCLI
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

    static let d = ClassifyOptions(), p = ClassifyConfig().peft
    @Option(help: "Model folder.") var model: String?
    @Option(help: "Training {text, label} JSONL.") var data: String?
    @Option(help: "Held-out {text, label} JSONL for the report.") var evalData: String?
    @Option(help: "Labels, comma-separated.") var labels: String?
    @Option(help: "full, freeze (head only) or lora (default \(d.method)).") var method: String?
    @Option(help: "Run folder.") var out: String?
    @Option(help: "Passes over the data, ignored with --max-steps (default \(d.epochs)).") var epochs: Int?
    @Option(help: "Optimizer steps.") var maxSteps: Int?
    @Option(help: "Rows per step (default \(d.batchSize)).") var batchSize: Int?
    @Option(help: "Tokens per row (default \(d.maxLength)).") var maxLength: Int?
    @Option(help: "Peak learning rate (default \(d.lr)).") var lr: Double?
    @Option(help: "LoRA rank (default \(p.loraR)).") var loraR: Int?
    @Option(help: "LoRA alpha (default \(p.loraAlpha)).") var loraAlpha: Double?
    @Option(help: "Random seed (default \(d.seed)).") var seed: UInt64?
    @Option(help: "Checkpoint every N steps (0 = only when stopped).") var checkpointEvery: Int?
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Flag(help: "Continue from the newest checkpoint in --out.") var resume = false
    @OptionGroup var options: ConfigOptions

    func run() throws {
        guard let (config, recipe) = try options.resolve(ClassifyConfig.self, command: self) else { return }
        let progress = trainingProgress(logEvery: config.classify.logEvery, threads: config.classify.threads)
        try prepareRunFolder(config.classify.out, resume: config.classify.resume, overwrite: options.overwrite)
        try annotating(recipe) { _ = try ClassifyJob.run(config, progress: progress) }
    }
}
