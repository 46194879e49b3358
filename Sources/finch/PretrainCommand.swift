import ArgumentParser
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

    @Option(parsing: .upToNextOption, help: "Text / JSONL file(s) or a packed dataset folder.") var data: [String] = []
    @Option(help: "Run folder.") var out: String?
    @Option(help: "Model preset.") var preset: String?
    @Option(help: "A Hugging Face config.json for the model.") var modelConfig: String?
    @Option(help: "Tokenizer (.model or folder); default: train one on DATA.") var tokenizer: String?
    @Option(help: "Vocabulary size of a tokenizer trained here.") var vocabSize: Int?
    @Option(help: "Chat template recorded with the model.") var template: String?
    @Option(help: "Held-out share of DATA for evaluation.") var evalFraction: Double?
    @OptionGroup var train: TrainOptions

    func run() throws {
        var flags = train.flags
        var recipePath = train.recipe
        var modelConfigPath = modelConfig
        if let r = recipePath, r.hasSuffix(".json") { modelConfigPath = modelConfigPath ?? r; recipePath = nil }
        func put(_ k: String, _ v: Any?) { if let v { flags[k] = v } }
        put("out", out); put("preset", preset); put("model-config", modelConfigPath); put("tokenizer", tokenizer)
        put("vocab-size", vocabSize); put("template", template); put("eval-fraction", evalFraction)
        if !data.isEmpty { flags["data"] = data }
        let recipe = try resolveRecipe(defaults: [try TrainerConfig().recipeDefaults(), try PretrainJobOptions(data: [], out: "").recipeDefaults()],
                                       optionalKeys: ["max-steps", "preset", "model-config", "tokenizer"],
                                       recipe: recipePath, flags: flags)
        try applyThreads(recipe)
        let job = try recipe.decode(PretrainJobOptions.self)
        guard !job.data.isEmpty else { throw ValidationError("--data is required (or `data:` in the recipe)") }
        guard !job.out.isEmpty else { throw ValidationError("--out RUN is required (or `out:` in the recipe)") }
        try prepareRunFolder(job.out, resume: job.resume, overwrite: train.overwrite)
        guard job.preset == nil || job.modelConfig == nil else { throw ValidationError("give --preset or --model-config, not both") }
        let config = try recipe.decode(TrainerConfig.self)
        do {
            _ = try PretrainJob.run(job, config: config, recipe: recipe)
        } catch let e as TrainingError {
            throw TrainingError(recipe.annotate(e.description))   // a data or model error: no usage text
        }
    }
}
