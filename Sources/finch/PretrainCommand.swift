import ArgumentParser
import FinchCLI
import FinchTrain
import Foundation

/// `finch pretrain`: trains a decoder from scratch on text.
struct PretrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pretrain",
        abstract: "Train a GPT-2 / Llama decoder from scratch on text (training a tokenizer first when none is given).",
        discussion: """
        Writes RUN/final (and RUN/best): config.json, model.safetensors, tokenizer.model, finch.json with the chat template.
        --model-config FILE takes a Hugging Face config.json; --config takes a YAML recipe (a .json file given to --config
        is read as the model config). Presets: \(ModelPresets.names.joined(separator: ", ")).
        Example: finch pretrain --data corpus.txt --preset tiny --vocab-size 4096 --max-steps 2000 --out runs/tiny
        """)

    static let d = PretrainJobOptions()
    @Option(parsing: .upToNextOption, help: "Text / JSONL file(s) or a packed dataset folder.") var data: [String] = []
    @Option(help: "Run folder.") var out: String?
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
