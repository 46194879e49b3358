import ArgumentParser
import Foundation
import FinchData
import FinchCLI
import FinchTrain

/// Flags shared by `finch reward`, `finch dpo` and `finch ppo`, named as `RLHFTrainingOptions`' and `PEFTOptions`'
/// properties (see `FlagBinding`); defaults shown from the library's own.
struct RLHFCommonOptions: ParsableArguments {
    static let d = RLHFTrainingOptions(), p = PEFTOptions()
    @Option(help: "full, lora or dora (ppo also takes adapter: a bottleneck adapter folder given as --policy keeps training; default \(d.method)).") var method: String?
    @Option(help: "LoRA rank (default \(p.loraR)).") var loraR: Int?
    @Option(help: "LoRA alpha (default \(p.loraAlpha)).") var loraAlpha: Double?
    @Option(help: "LoRA dropout (default: reward, dpo \(p.loraDropout); ppo 0).") var loraDropout: Double?
    @Option(help: "LoRA target modules, comma-separated (or all-linear).") var loraTargets: String?
    @Option(help: "With lora: hold the frozen base as q8_0, q5_0, q4_0, q4_1, q4_K or q6_K blocks.") var baseQuant: String?
    @Option(help: "Peak learning rate (default: reward \(RewardConfig().common.lr), dpo \(DPOConfig().common.lr), ppo \(PPOConfig().common.lr)).") var lr: Double?
    @Option(help: "constant, cosine or linear, after the warmup (default \(d.schedule)).") var schedule: String?
    @Option(help: "Warmup steps (default \(d.warmupSteps)).") var warmupSteps: Int?
    @Option(help: "AdamW weight decay (default \(d.weightDecay)).") var weightDecay: Double?
    @Option(help: "Global gradient-norm clip, 0 = off (default \(d.maxGradNorm)).") var maxGradNorm: Double?
    @Option(help: "Optimizer steps (reward/dpo; 0 = epochs over the data; default \(d.steps)).") var steps: Int?
    @Option(help: "Epochs when --steps is 0 (default \(d.epochs)).") var epochs: Int?
    @Option(help: "Pairs (reward/dpo) or prompts (ppo) per batch (default \(d.batchSize)).") var batchSize: Int?
    @Option(help: "Maximum tokens per sequence (default \(d.maxLength)).") var maxLength: Int?
    @Option(help: "Pairs longer than --max-length: drop (default), truncate or error.") var overlong: OverlongPolicy?
    @Option(help: "Held-out share of the data for evaluation (default \(d.evalFraction)).") var evalFraction: Double?
    @Option(help: "Evaluate every N steps (ppo: iterations); 0 = only before and after.") var evalEvery: Int?
    @Option(help: "Checkpoint every N steps (ppo: iterations); 0 = only when stopped.") var checkpointEvery: Int?
    @Option(help: "Periodic checkpoints kept (default \(d.keepCheckpoints)).") var keepCheckpoints: Int?
    @Option(help: "Random seed (default \(d.seed)).") var seed: UInt64?
    @Option(help: "Chat template name or path (default: the model's, else chatml).") var template: String?
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Option(help: "Under mpirun: gradient all-reduce bucket size in MiB (default 4).") var allreduceBucketMb: Double?
    @Option(help: "Compute each step as N data-parallel ranks would, in this one process: the exact reference for mpirun -np N.") var simulateRanks: Int?
    @Option(help: "Under mpirun: seconds a rank waits for the others before stopping with an error (default 300).") var rankTimeout: Double?
    @Flag(help: "Continue from the newest checkpoint in --out.") var resume = false
}

/// `finch reward`: train a reward model (score head, Bradley–Terry loss) on preference pairs.
struct RewardTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reward",
        abstract: "Train a reward model (LlamaForSequenceClassification, num_labels=1) on preference pairs.",
        discussion: """
        Every option may also come from a YAML recipe (--config recipe.yaml, same keys as the flags; flags win);
        RUN/config.yaml records the resolved configuration. Ctrl-C finishes the step, writes a checkpoint and exits 130;
        --resume continues exactly.
        Example: finch reward --model models/sft --data prefs.jsonl --out runs/rm --method lora --steps 200
        """)

    @Option(help: "Base model folder (Llama).") var model: String?
    @Option(help: "Preference JSONL ({prompt, chosen, rejected[, margin]}); repeatable.") var data: [String] = []
    @Option(help: "Run folder (metrics, checkpoints, best/, final/).") var out: String?
    @Option(help: "Reward-centering coefficient (TRL center_rewards_coefficient; default 0).") var centerRewards: Double?
    @Flag(help: "Ignore the data's margin column.") var noMargin = false
    @Option(help: "Read at most N pairs.") var limit: Int?
    @Option(help: "Held-out preference JSONL evaluated instead of an --eval-fraction split of --data; repeatable.") var evalData: [String] = []
    @OptionGroup var common: RLHFCommonOptions
    @OptionGroup var options: ConfigOptions

    func run() throws {
        guard let (config, recipe) = try options.resolve(RewardConfig.self, command: self) else { return }
        let progress = trainingProgress(logEvery: 10, threads: config.common.threads)
        try prepareRunFolder(config.reward.out, resume: config.common.resume, overwrite: options.overwrite)
        try annotating(recipe) {
            let t = try RewardTrainer(config: config, progress: progress)
            progress.receive(.message("reward model: \(t.train.count) training pairs, \(t.eval.count) held out, \(t.totalSteps) steps"))
            let (b, a) = try t.fit()
            func f(_ e: PairwiseEvaluation?) -> String { e.map { String(format: "accuracy %.3f ± %.3f, margin %.3f", $0.accuracy, $0.accuracyStandardError, $0.meanMargin) } ?? "-" }
            print("held-out pairwise: before \(f(b)) → after \(f(a)); model: \(t.run.url.appendingPathComponent("final").path)")
        }
    }
}

/// Runs a training job; a data or model error (TrainingError) is printed with where its option's value came from
/// (recipe line or flag) and without usage text.
func annotating(_ recipe: Recipe, _ body: () throws -> Void) throws {
    do { try body() } catch let e as TrainingError { throw TrainingError(recipe.annotate(e.description)) }
}
