import ArgumentParser
import Foundation
import FinchCLI
import FinchTrain

/// `finch ppo`: PPO from an SFT policy against a reward model or a reward program.
struct PPOCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ppo",
        abstract: "PPO (TRL-style): KV-cached rollouts, KL penalty to a frozen reference, value head, GAE, clipped losses.",
        discussion: """
        Examples:
          finch ppo --policy models/sft --reward runs/rm/final --prompts prompts.jsonl --out runs/ppo
          finch ppo --policy models/sft --reward-command "python3 tools/reward_check.py" --prompts corpora/ppo_prompts.jsonl --out runs/ppo
        A reward command reads JSONL {prompt, response, ...} on stdin and writes one number per line.
        """)

    static let d = PPOOptions(), h = PPOMath.Hyperparameters()
    @Option(help: "SFT policy model folder.") var policy: String?
    @Option(help: "Reward model folder.") var reward: String?
    @Option(help: "Reward program (run once via /bin/sh -c; JSONL in, one number per line out).") var rewardCommand: String?
    @Option(help: "Seconds to wait for the reward program's answer (default \(d.rewardTimeout)).") var rewardTimeout: Double?
    @Option(help: "Prompts JSONL ({prompt, ...}).") var prompts: String?
    @Option(help: "Run folder.") var out: String?
    @Option(help: "PPO iterations, rollout batches (default \(d.iterations)).") var iterations: Int?
    @Option(help: "Responses sampled per prompt (divides --batch-size; the batch holds batch-size / N prompts; default \(d.samplesPerPrompt)).") var samplesPerPrompt: Int?
    @Flag(help: "RLOO baseline: subtract from each score the mean score of the other replies to its prompt (needs --samples-per-prompt ≥ 2).") var groupBaseline = false
    @Option(help: "Dynamic sampling: draw up to N batches' worth of prompts and keep only groups whose replies score differently (needs --samples-per-prompt ≥ 2; 1 = off).") var oversample: Int?
    @Option(help: "Advantage estimate: gae (PPO with a value head, as TRL's PPOTrainer) or rloo (no critic: each reply's KL-penalised reward minus the mean of the other replies to its prompt, as TRL's RLOOTrainer; needs --samples-per-prompt ≥ 2; default \(d.estimator.rawValue)).") var estimator: AdvantageEstimator?
    @Flag(help: "rloo: whiten the advantages over each batch.") var normalizeAdvantage = false
    @Option(help: "PPO epochs per rollout batch (default \(d.ppoEpochs)).") var ppoEpochs: Int?
    @Option(help: "Minibatches per rollout batch (default \(d.minibatches)).") var minibatches: Int?
    @Option(help: "Maximum new tokens per response (default \(d.maxNewTokens)).") var maxNewTokens: Int?
    @Option(help: "Sampling temperature (default \(d.temperature)).") var temperature: Double?
    @Option(help: "Top-k, 0 = off (default \(d.topK)).") var topK: Int?
    @Option(help: "Top-p (default \(d.topP)).") var topP: Double?
    @Option(help: "KL coefficient, the initial value when adaptive (default \(h.klCoef)).") var klCoef: Double?
    @Option(help: "Adaptive KL: target KL per response (off when absent).") var klTarget: Double?
    @Option(help: "Adaptive KL horizon in samples (default \(d.klHorizon)).") var klHorizon: Double?
    @Option(help: "k1 or k3 (default \(h.klEstimator.rawValue)).") var klEstimator: PPOMath.KLEstimator?
    @Option(help: "GAE gamma (default \(h.gamma)).") var gamma: Double?
    @Option(help: "GAE lambda (default \(h.lam)).") var lam: Double?
    @Option(help: "Policy clip range (default \(h.cliprange)).") var cliprange: Double?
    @Option(help: "Value clip range (default \(h.cliprangeValue)).") var cliprangeValue: Double?
    @Option(help: "Value-loss coefficient (default \(h.vfCoef)).") var vfCoef: Double?
    @Flag(help: "Whiten the KL-penalised rewards before GAE.") var whitenRewards = false
    @Option(help: "Penalty for responses without end-of-turn.") var missingEosPenalty: Double?
    @Flag(help: "Whiten scores over each batch.") var normalizeRewards = false
    @Option(help: "Clip scores to ±C.") var rewardClip: Double?
    @Option(help: "Pretraining-loss coefficient (default \(d.ptxCoef)).") var ptxCoef: Double?
    @Option(help: "Data for --ptx-coef: a text file (every token trained) or instruction/chat JSONL (rendered with the chat template, replies trained, as in SFT).") var ptxData: String?
    @Option(help: "Stop when the rollout KL exceeds this, in nats per response (default \(d.maxKl)).") var maxKl: Double?
    @Option(help: "Held-out prompts evaluated before/after (default \(d.evalPrompts)).") var evalPrompts: Int?
    @OptionGroup var common: RLHFCommonOptions
    @OptionGroup var options: ConfigOptions

    func run() throws {
        guard let (config, recipe) = try options.resolve(PPOConfig.self, command: self) else { return }
        let progress = trainingProgress(logEvery: max(1, config.ppo.iterations / 25), threads: config.common.threads)
        try prepareRunFolder(config.ppo.out, resume: config.common.resume, overwrite: options.overwrite)
        try annotating(recipe) {
            let t = try PPOTrainer(config: config, progress: progress)
            progress.receive(.message("ppo: \(t.train.count) training prompts, \(t.eval.count) held out, \(config.ppo.iterations) iterations"))
            let (b, a) = try t.fit()
            func f(_ x: Double?) -> String { x.map { String(format: "%.4f", $0) } ?? "-" }
            print("held-out mean reward: before \(f(b)) → after \(f(a)); model: \(t.run.url.appendingPathComponent("final").path)")
        }
    }
}

extension AdvantageEstimator: ExpressibleByArgument {}
extension PPOMath.KLEstimator: ExpressibleByArgument {}
