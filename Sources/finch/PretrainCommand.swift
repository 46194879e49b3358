import ArgumentParser
import FinchCLI
import FinchTrain
import Foundation

/// `finch pretrain`: trains a decoder from scratch on text.
struct PretrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pretrain",
        abstract: "Train a decoder from scratch on text, or continue pretraining a model on domain text (--model).",
        discussion: """
        Writes RUN/final (and RUN/best): config.json, model.safetensors, tokenizer.model, finch.json with the chat template.
        With --model (a Finch / Hugging Face folder or a .gguf file), the model is trained further on the text:
        domain-adaptive pretraining, in full or with --method lora|dora|adapter|prefix|prompt, with --replay of a
        general corpus against forgetting; the summary gives the perplexity of the general text that --base-eval names
        (by default the --replay text) and of the held-out domain text, before and after. The model keeps its tokenizer
        and chat template.
        Example: finch pretrain --model smollm2.gguf --data novels.txt --method lora --replay general.txt --replay-ratio 0.2 --out runs/dapt
        --model-config FILE takes a Hugging Face config.json; --config takes a YAML recipe (a .json file given to --config
        is read as the model config). Presets: \(ModelPresets.names.joined(separator: ", ")).
        Example: finch pretrain --data corpus.txt --preset tiny --vocab-size 4096 --max-steps 2000 --out runs/tiny
        """)

    static let d = PretrainJobOptions()
    @Option(parsing: .upToNextOption, help: "Text / JSONL file(s) or a packed dataset folder.") var data: [String] = []
    @Option(help: "Run folder.") var out: String?
    @Option(help: "A model to continue pretraining (folder or .gguf); default: a new model.") var model: String?
    @Option(help: "With --model: full, lora, dora, adapter, prefix or prompt (default full).") var method: String?
    @Option(parsing: .upToNextOption, help: "With --model: general-corpus data mixed into batches against forgetting.") var replay: [String] = []
    @Option(help: "Share of replay rows in every micro-batch.") var replayRatio: Double?
    @Option(parsing: .upToNextOption, help: "With --model: general text for the before/after perplexity (default: --replay).") var baseEval: [String] = []
    @Flag(help: "With --model and lora/dora: also write a merged model to RUN/final/merged.") var merge = false
    @Option(help: "LoRA rank.") var loraR: Int?
    @Option(help: "LoRA alpha.") var loraAlpha: Double?
    @Option(help: "LoRA dropout.") var loraDropout: Double?
    @Option(help: "LoRA target modules (comma-separated) or all-linear.") var loraTargets: String?
    @Option(help: "Hold the frozen base as q8_0, q5_0, q4_0, q4_1, q4_K, q6_K or gguf blocks (lora, adapter, prefix, prompt).")
    var baseQuant: String?
    @Option(help: "Model preset (default tiny).") var preset: String?
    @Option(help: "A Hugging Face config.json for the model.") var modelConfig: String?
    @Option(help: "Tokenizer (.model or folder); default: train one on DATA.") var tokenizer: String?
    @Option(help: "Vocabulary size of a tokenizer trained here (default \(d.vocabSize)).") var vocabSize: Int?
    @Option(help: "Chat template recorded with the model (default \(d.template ?? "none")).") var template: String?
    @Option(help: "Held-out share of DATA for evaluation (default \(d.evalFraction)).") var evalFraction: Double?
    @OptionGroup var train: TrainOptions
    @OptionGroup var options: ConfigOptions

    func run() throws {
        // A .json file given to --config is a model config (a Hugging Face config.json), not a recipe.
        var recipePath = options.recipe
        var command = self
        if let r = recipePath, r.hasSuffix(".json") {
            if command.modelConfig == nil { command.modelConfig = r }
            recipePath = nil
        }
        guard let (config, recipe) = try options.resolve(PretrainConfig.self, command: command, recipeOverride: recipePath ?? "")
        else { return }
        let progress = trainingProgress(logEvery: config.training.logEvery, threads: config.job.threads)
        try prepareRunFolder(config.job.out, resume: config.job.resume, overwrite: options.overwrite)
        do {
            _ = try PretrainJob.run(config, recipe: recipe, progress: progress)
        } catch let e as TrainingError {
            throw TrainingError(recipe.annotate(e.description))   // a data or model error: no usage text
        }
    }
}
