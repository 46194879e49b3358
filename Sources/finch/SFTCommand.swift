import ArgumentParser
import FinchTrain
import FinchData
import Foundation

/// `finch sft`: supervised fine-tuning of a model folder on instruction data.
struct SFTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sft",
        abstract: "Fine-tune a model on instruction data (full, freeze, lora, dora, adapter, prefix, prompt).",
        discussion: """
        DATA is JSONL (packed into RUN/data with the model's tokenizer and chat template) or a packed dataset folder.
        Every option may also come from a YAML recipe (--config recipe.yaml, same keys as the flags; flags win);
        RUN/config.yaml records the resolved configuration. Ctrl-C finishes the step, writes a checkpoint and exits;
        --resume continues exactly. The model (or PEFT adapter) is written to RUN/final, the best one to RUN/best.
        Example: finch sft --model base/ --data train.jsonl --method lora --lora-r 8 --epochs 2 --out runs/lora
        """)

    @Option(help: "Base model: a Hugging Face / Finch folder, or a .gguf file.") var model: String?
    @Option(parsing: .upToNextOption, help: "Instruction JSONL file(s) or a packed dataset folder.") var data: [String] = []
    @Option(help: "Run folder.") var out: String?
    @Option(help: "Method: full, freeze, lora, dora, adapter, prefix, prompt.") var method: String?
    @Option(help: "Chat template (default: the model's).") var template: String?
    @Option(help: "Held-out share of DATA for evaluation.") var evalFraction: Double?
    @Option(parsing: .upToNextOption, help: "Separate evaluation data (JSONL or dataset).") var evalData: [String] = []
    @Option(parsing: .upToNextOption, help: "Base-corpus data mixed into batches against forgetting.") var replay: [String] = []
    @Option(help: "Share of replay rows in every micro-batch.") var replayRatio: Double?
    @Option(parsing: .upToNextOption, help: "Base-corpus text for the before/after perplexity (default: --replay).") var baseEval: [String] = []
    @Flag(help: "Also write a merged model (LoRA/DoRA) to RUN/final/merged.") var merge = false
    @Flag(inversion: .prefixedNo, help: "Pack several short records per row.") var pack: Bool?
    @Flag(help: "Train on prompt tokens too.") var trainOnPrompt = false
    @Option(help: "Records longer than --seq-len: drop (default), truncate or error.") var overlong: OverlongPolicy?
    // Layer-wise methods.
    @Option(help: "freeze: also train the top K blocks.") var trainLayers: Int?
    @Flag(help: "freeze (head only): compute the frozen trunk's output once per row and reuse it.") var cacheFeatures = false
    @Option(help: "Gradual unfreezing: one more block from the top every N steps.") var unfreezeEvery: Int?
    @Option(help: "Discriminative rates: block i of L gets lr·f^(L−i).") var layerLrDecay: Double?
    // PEFT.
    @Option(help: "LoRA rank.") var loraR: Int?
    @Option(help: "LoRA alpha.") var loraAlpha: Double?
    @Option(help: "LoRA dropout.") var loraDropout: Double?
    @Option(help: "LoRA target modules (comma-separated) or all-linear.") var loraTargets: String?
    @Flag(help: "rsLoRA scaling alpha/sqrt(r).") var rslora = false
    @Option(help: "Bottleneck adapter size.") var adapterSize: Int?
    @Option(help: "Adapter placement: attention, mlp or both.") var adapterPlacement: String?
    @Option(help: "Virtual tokens (prefix / prompt tuning).") var numVirtualTokens: Int?
    @Flag(help: "Prefix tuning with a reparametrisation MLP.") var prefixProjection = false
    @Option(help: "Initialise prompt-tuning embeddings from this text.") var promptInitText: String?
    @OptionGroup var train: TrainOptions

    func run() throws {
        var flags = train.flags
        func put(_ k: String, _ v: Any?) { if let v { flags[k] = v } }
        put("model", model); put("out", out); put("method", method); put("template", template)
        put("eval-fraction", evalFraction); put("replay-ratio", replayRatio); put("train-layers", trainLayers)
        put("unfreeze-every", unfreezeEvery); put("layer-lr-decay", layerLrDecay); put("lora-r", loraR)
        put("lora-alpha", loraAlpha); put("lora-dropout", loraDropout)
        put("lora-targets", loraTargets.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } })
        put("adapter-size", adapterSize); put("adapter-placement", adapterPlacement); put("num-virtual-tokens", numVirtualTokens)
        put("prompt-init-text", promptInitText); put("pack", pack)
        put("overlong", overlong?.rawValue)
        if !data.isEmpty { flags["data"] = data }
        if !evalData.isEmpty { flags["eval-data"] = evalData }
        if !replay.isEmpty { flags["replay"] = replay }
        if !baseEval.isEmpty { flags["base-eval"] = baseEval }
        if merge { flags["merge"] = true }
        if trainOnPrompt { flags["train-on-prompt"] = true }
        if cacheFeatures { flags["cache-features"] = true }
        if rslora { flags["rslora"] = true }
        if prefixProjection { flags["prefix-projection"] = true }

        let jobDefaults = try SFTJobOptions(model: "", data: [], out: "").recipeDefaults()
        let recipe = try resolveRecipe(defaults: [try TrainerConfig().recipeDefaults(), try PEFTOptions().recipeDefaults(), jobDefaults],
                                       optionalKeys: ["max-steps", "template", "eval-data", "replay", "base-eval", "lora-targets", "prompt-init-text"],
                                       recipe: train.recipe, flags: flags)
        try applyThreads(recipe)
        let job = try recipe.decode(SFTJobOptions.self)
        guard !job.model.isEmpty else { throw ValidationError("--model DIR is required (or `model:` in the recipe)") }
        guard !job.data.isEmpty else { throw ValidationError("--data is required (or `data:` in the recipe)") }
        guard !job.out.isEmpty else { throw ValidationError("--out RUN is required (or `out:` in the recipe)") }
        try prepareRunFolder(job.out, resume: job.resume, overwrite: train.overwrite)
        let config = try recipe.decode(TrainerConfig.self)
        let peft = try recipe.decode(PEFTOptions.self)
        do {
            _ = try SFTJob.run(job, config: config, peft: peft, recipe: recipe)
        } catch let e as TrainingError {
            throw TrainingError(recipe.annotate(e.description))   // a data or model error: no usage text
        }
    }
}

extension OverlongPolicy: ExpressibleByArgument {}
