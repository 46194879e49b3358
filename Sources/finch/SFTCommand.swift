import ArgumentParser
import FinchCLI
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

    static let d = SFTConfig()
    @Option(help: "Base model: a Hugging Face / Finch folder, or a .gguf file.") var model: String?
    @Option(parsing: .upToNextOption, help: "Instruction JSONL file(s) or a packed dataset folder.") var data: [String] = []
    @Option(help: "Run folder.") var out: String?
    @Option(help: "Method: full, freeze, lora, dora, adapter, prefix, prompt (default \(d.training.method)).") var method: String?
    @Option(help: "Chat template (default: the model's).") var template: String?
    @Option(help: "Held-out share of DATA for evaluation (default \(d.job.evalFraction)).") var evalFraction: Double?
    @Option(parsing: .upToNextOption, help: "Separate evaluation data (JSONL or dataset).") var evalData: [String] = []
    @Option(parsing: .upToNextOption, help: "Base-corpus data mixed into batches against forgetting.") var replay: [String] = []
    @Option(help: "Share of replay rows in every micro-batch.") var replayRatio: Double?
    @Option(parsing: .upToNextOption, help: "Base-corpus text for the before/after perplexity (default: --replay).") var baseEval: [String] = []
    @Option(help: "Rows with checkable answers (finch eval data) answered greedily at each evaluation: eval_exact_match.")
    var evalGenerate: String?
    @Option(help: "Rows of --eval-generate answered, its first ones (default \(d.job.evalGenerateLimit)).") var evalGenerateLimit: Int?
    @Option(help: "Longest answer for --eval-generate, in tokens (default \(d.job.evalGenerateMaxTokens)).") var evalGenerateMaxTokens: Int?
    @Flag(help: "Also write a merged model (LoRA/DoRA) to RUN/final/merged.") var merge = false
    @Flag(inversion: .prefixedNo, help: "Pack several short records per row (default on).") var pack: Bool?
    @Flag(help: "Train on prompt tokens too.") var trainOnPrompt = false
    @Option(help: "Records longer than --seq-len: drop (default), truncate or error.") var overlong: OverlongPolicy?
    // Layer-wise methods.
    @Option(help: "freeze: also train the top K blocks.") var trainLayers: Int?
    @Flag(help: "freeze (head only): compute the frozen trunk's output once per row and reuse it.") var cacheFeatures = false
    @Option(help: "Gradual unfreezing: one more block from the top every N steps.") var unfreezeEvery: Int?
    @Option(help: "Discriminative rates: block i of L gets lr·f^(L−i).") var layerLrDecay: Double?
    // PEFT.
    @Option(help: "LoRA rank (default \(d.peft.loraR)).") var loraR: Int?
    @Option(help: "LoRA alpha (default \(d.peft.loraAlpha)).") var loraAlpha: Double?
    @Option(help: "LoRA dropout (default \(d.peft.loraDropout)).") var loraDropout: Double?
    @Option(help: "LoRA target modules (comma-separated) or all-linear.") var loraTargets: String?
    @Flag(help: "rsLoRA scaling alpha/sqrt(r).") var rslora = false
    @Option(help: "Bottleneck adapter size (default \(d.peft.adapterSize)).") var adapterSize: Int?
    @Option(help: "Adapter placement: attention, mlp or both (default \(d.peft.adapterPlacement)).") var adapterPlacement: String?
    @Option(help: "Virtual tokens, prefix / prompt tuning (default \(d.peft.numVirtualTokens)).") var numVirtualTokens: Int?
    @Flag(help: "Prefix tuning with a reparametrisation MLP.") var prefixProjection = false
    @Option(help: "Initialise prompt-tuning embeddings from this text.") var promptInitText: String?
    @Option(help: "Hold the frozen base as q8_0, q5_0, q4_0, q4_1, q4_K or q6_K blocks, or gguf (a GGUF's own blocks); lora, adapter, prefix, prompt.")
    var baseQuant: String?
    @OptionGroup var train: TrainOptions
    @OptionGroup var options: ConfigOptions

    func run() throws {
        guard let (config, recipe) = try options.resolve(SFTConfig.self, command: self) else { return }
        let progress = trainingProgress(logEvery: config.training.logEvery, threads: config.job.threads)
        try prepareRunFolder(config.job.out, resume: config.job.resume, overwrite: options.overwrite)
        do {
            _ = try SFTJob.run(config, recipe: recipe, progress: progress)
        } catch let e as TrainingError {
            throw TrainingError(recipe.annotate(e.description))   // a data or model error: no usage text
        }
    }
}

extension OverlongPolicy: ExpressibleByArgument {}
