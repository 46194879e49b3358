import ArgumentParser
import Foundation
import FinchData
import FinchTrain

/// Options shared by `finch reward`, `finch dpo` and `finch ppo`.
struct RLHFCommonOptions: ParsableArguments {
    @Option(help: "full, lora or dora (ppo also takes adapter: a bottleneck adapter folder given as --policy keeps training).") var method = "full"
    @Option(help: "LoRA rank.") var loraR = 8
    @Option(help: "LoRA alpha.") var loraAlpha = 16.0
    @Option(help: "LoRA dropout.") var loraDropout: Double?
    @Option(help: "LoRA target modules, comma-separated (or all-linear).") var loraTargets: String?
    @Option(help: "Peak learning rate (default: reward 1e-5, dpo 5e-6, ppo 1e-5).") var lr: Double?
    @Option(help: "constant, cosine or linear (with warmup).") var schedule = "cosine"
    @Option(help: "Warmup steps.") var warmupSteps = 0
    @Option(help: "AdamW weight decay.") var weightDecay = 0.0
    @Option(help: "Global gradient-norm clip (0 = off).") var maxGradNorm = 1.0
    @Option(help: "Optimizer steps (reward/dpo; 0 = epochs over the data).") var steps = 0
    @Option(help: "Epochs when --steps is 0.") var epochs = 1
    @Option(help: "Pairs (reward/dpo) or prompts (ppo) per batch (default 8).") var batchSize: Int?
    @Option(help: "Maximum tokens per sequence.") var maxLength = 512
    @Option(help: "Pairs longer than --max-length: drop (default), truncate or error.") var overlong: OverlongPolicy = .drop
    @Option(help: "Held-out share of the data for evaluation (default 0.1).") var evalFraction: Double?
    @Option(help: "Evaluate every N steps (ppo: iterations); 0 = only before and after.") var evalEvery = 0
    @Option(help: "Checkpoint every N steps (ppo: iterations); 0 = none.") var checkpointEvery = 0
    @Option(help: "Periodic checkpoints kept.") var keepCheckpoints = 2
    @Option(help: "Random seed.") var seed: UInt64 = 42
    @Option(help: "Chat template name or path (default: the model's, else chatml).") var template: String?
    @Flag(help: "Continue from the newest checkpoint in --out.") var resume = false
    @Flag(help: "Replace what an earlier run left in --out.") var overwrite = false

    func apply(to o: inout RLHFTrainingOptions) {
        o.method = method
        o.peft.loraR = loraR
        o.peft.loraAlpha = loraAlpha
        if let d = loraDropout { o.peft.loraDropout = d }
        if let t = loraTargets { o.peft.loraTargets = t.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }
        if let lr { o.lr = lr }
        o.schedule = schedule
        o.warmupSteps = warmupSteps
        o.weightDecay = weightDecay
        o.maxGradNorm = maxGradNorm
        o.steps = steps
        o.epochs = epochs
        if let b = batchSize { o.batchSize = b }
        o.maxLength = maxLength
        o.overlong = overlong
        if let e = evalFraction { o.evalFraction = e }
        o.evalEvery = evalEvery
        o.checkpointEvery = checkpointEvery
        o.keepCheckpoints = keepCheckpoints
        o.seed = seed
        o.template = template
    }
}

/// `finch reward`: train a reward model (score head, Bradley–Terry loss) on preference pairs.
struct RewardTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reward",
        abstract: "Train a reward model (LlamaForSequenceClassification, num_labels=1) on preference pairs.",
        discussion: "Example: finch reward --model models/sft --data prefs.jsonl --out runs/rm --method lora --steps 200")

    @Option(help: "Base model folder (Llama).") var model: String
    @Option(help: "Preference JSONL ({prompt, chosen, rejected[, margin]}); repeatable.") var data: [String]
    @Option(help: "Run folder (metrics, checkpoints, best/, final/).") var out: String
    @Option(help: "Reward-centering coefficient (TRL center_rewards_coefficient).") var centerRewards = 0.0
    @Flag(help: "Ignore the data's margin column.") var noMargin = false
    @Option(help: "Read at most N pairs.") var limit: Int?
    @Option(help: "Held-out preference JSONL evaluated instead of an --eval-fraction split of --data; repeatable.") var evalData: [String] = []
    @OptionGroup var common: RLHFCommonOptions

    func run() throws {
        var o = RewardTrainer.Options()
        common.apply(to: &o.common)
        o.centerRewardsCoefficient = centerRewards
        o.useMargin = !noMargin
        o.limit = limit
        o.evalData = evalData.isEmpty ? nil : evalData
        try prepareRunFolder(out, resume: common.resume, overwrite: common.overwrite)
        let t = try RewardTrainer(model: URL(fileURLWithPath: model), data: data.map { URL(fileURLWithPath: $0) },
                                  out: URL(fileURLWithPath: out), options: o)
        t.progress.message("reward model: \(t.train.count) training pairs, \(t.eval.count) held out, \(t.totalSteps) steps")
        let (b, a) = try t.run(resume: common.resume)
        func f(_ e: PairwiseEvaluation?) -> String { e.map { String(format: "accuracy %.3f ± %.3f, margin %.3f", $0.accuracy, $0.accuracyStandardError, $0.meanMargin) } ?? "-" }
        print("held-out pairwise: before \(f(b)) → after \(f(a)); model: \(t.run.url.appendingPathComponent("final").path)")
    }
}
