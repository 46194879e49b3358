import ArgumentParser
import Foundation
import FinchCLI
import FinchTrain

/// `finch grpo`: Group Relative Policy Optimisation from an SFT policy against reward functions.
struct GRPOCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grpo",
        abstract: "GRPO (TRL's loss): G completions per prompt, group-relative advantages, clipped surrogate; no value model.",
        discussion: """
        Reward functions: reward model folders (--reward) and programs (--reward-command: JSONL {prompt, response, ...}
        on stdin, one number per line out), weighted by --reward-weights (models first, then commands).
        Every option may also come from a YAML recipe (--config recipe.yaml); Ctrl-C checkpoints and exits 130; --resume
        continues exactly.
        Example: finch grpo --policy models/sft --prompts corpora/ppo_prompts.jsonl --reward-command "python3 tools/reward_check.py" \\
                   --group-size 8 --method lora --out runs/grpo
        """)

    static let d = GRPOOptions()
    @Option(help: "SFT policy model folder (or a LoRA adapter folder).") var policy: String?
    @Option(help: "Prompts JSONL ({prompt, ...}).") var prompts: String?
    @Option(help: "Run folder.") var out: String?
    @Option(help: "A reward model folder; repeatable.") var reward: [String] = []
    @Option(help: "A reward program (run once via /bin/sh -c); repeatable.") var rewardCommand: [String] = []
    @Option(parsing: .upToNextOption, help: "One weight per reward function, reward models first (default: all 1).") var rewardWeights: [Double] = []
    @Option(help: "Seconds to wait for a reward program's answer (default \(d.rewardTimeout)).") var rewardTimeout: Double?
    @Option(help: "Iterations (default \(d.iterations)); each samples --group-size completions for --batch-size prompts.") var iterations: Int?
    @Option(help: "Completions per prompt, G (default \(d.groupSize)).") var groupSize: Int?
    @Option(help: "Optimisation passes over each iteration's completions, mu (default \(d.innerIterations)).") var innerIterations: Int?
    @Option(help: "Optimizer steps per pass (default \(d.minibatches)).") var minibatches: Int?
    @Option(help: "Maximum new tokens per completion (default \(d.maxNewTokens)).") var maxNewTokens: Int?
    @Option(help: "Sampling temperature (default \(d.temperature)).") var temperature: Double?
    @Option(help: "Top-k, 0 = off.") var topK: Int?
    @Option(help: "Top-p (default \(d.topP)).") var topP: Double?
    @Option(help: "grpo (sample-level), dapo (token-level) or dr_grpo (default \(d.lossType.rawValue)).") var lossType: GRPOMath.LossType?
    @Option(help: "Clip range below 1, epsilon_low (default \(d.epsilon)).") var epsilon: Double?
    @Option(help: "Clip range above 1, epsilon_high (default: --epsilon; DAPO uses 0.28).") var epsilonHigh: Double?
    @Option(help: "k3 KL coefficient to the reference (default \(d.beta) = none).") var beta: Double?
    @Option(help: "Advantage scaling: group, batch or none (default \(d.scaleRewards.rawValue)).") var scaleRewards: GRPOMath.RewardScaling?
    @Option(help: "Soft over-long penalty: completions within N tokens of --max-new-tokens lose up to 1 reward (DAPO).") var overlongPenalty: Int?
    @Flag(help: "Leave completions cut at --max-new-tokens out of the loss.") var maskTruncated = false
    @Option(help: "Held-out prompts evaluated before/after (default \(d.evalPrompts)).") var evalPrompts: Int?
    @OptionGroup var common: RLHFCommonOptions
    @OptionGroup var options: ConfigOptions

    func run() throws {
        guard let (config, recipe) = try options.resolve(GRPOConfig.self, command: self) else { return }
        let progress = trainingProgress(logEvery: max(1, config.grpo.iterations / 25), threads: config.common.threads)
        try prepareRunFolder(config.grpo.out, resume: config.common.resume, overwrite: options.overwrite)
        try annotating(recipe) {
            let t = try GRPOTrainer(config: config, progress: progress)
            progress.receive(.message("grpo: \(t.train.count) training prompts, \(t.eval.count) held out, \(config.grpo.iterations) iterations of \(config.common.batchSize) × \(config.grpo.groupSize) completions"))
            let (b, a) = try t.fit()
            func f(_ x: Double?) -> String { x.map { String(format: "%.4f", $0) } ?? "-" }
            print("held-out mean reward: before \(f(b)) → after \(f(a)); model: \(t.run.url.appendingPathComponent("final").path)")
        }
    }
}

extension GRPOMath.LossType: ExpressibleByArgument {}
extension GRPOMath.RewardScaling: ExpressibleByArgument {}
