import ArgumentParser
import Foundation
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

    @Option(help: "SFT policy model folder.") var policy: String
    @Option(help: "Reward model folder.") var reward: String?
    @Option(help: "Reward program (run once via /bin/sh -c; JSONL in, one number per line out).") var rewardCommand: String?
    @Option(help: "Seconds to wait for the reward program's answer.") var rewardTimeout = 60.0
    @Option(help: "Prompts JSONL ({prompt, ...}).") var prompts: String
    @Option(help: "Run folder.") var out: String
    @Option(help: "PPO iterations (rollout batches).") var iterations = 20
    @Option(help: "Responses sampled per prompt (divides --batch-size; the batch holds batch-size / N prompts).") var samplesPerPrompt = 1
    @Flag(help: "RLOO baseline: subtract from each score the mean score of the other replies to its prompt (needs --samples-per-prompt ≥ 2).") var groupBaseline = false
    @Option(help: "Dynamic sampling: draw up to N batches' worth of prompts and keep only groups whose replies score differently (needs --samples-per-prompt ≥ 2; 1 = off).") var oversample = 1
    @Option(help: "Advantage estimate: gae (PPO with a value head, as TRL's PPOTrainer) or rloo (no critic: each reply's KL-penalised reward minus the mean of the other replies to its prompt, as TRL's RLOOTrainer; needs --samples-per-prompt ≥ 2).") var estimator = "gae"
    @Flag(help: "rloo: whiten the advantages over each batch.") var normalizeAdvantage = false
    @Option(help: "PPO epochs per rollout batch.") var ppoEpochs = 4
    @Option(help: "Minibatches per rollout batch.") var minibatches = 1
    @Option(help: "Maximum new tokens per response.") var maxNewTokens = 32
    @Option(help: "Sampling temperature.") var temperature = 1.0
    @Option(help: "Top-k (0 = off).") var topK = 0
    @Option(help: "Top-p.") var topP = 1.0
    @Option(help: "KL coefficient (initial value when adaptive).") var klCoef = 0.05
    @Option(help: "Adaptive KL: target KL per response (off when absent).") var klTarget: Double?
    @Option(help: "Adaptive KL horizon (samples).") var klHorizon = 10000.0
    @Option(help: "k1 or k3.") var klEstimator = "k1"
    @Option(help: "GAE gamma.") var gamma = 1.0
    @Option(help: "GAE lambda.") var lam = 0.95
    @Option(help: "Policy clip range.") var cliprange = 0.2
    @Option(help: "Value clip range.") var cliprangeValue = 0.2
    @Option(help: "Value-loss coefficient.") var vfCoef = 0.1
    @Flag(help: "Whiten the KL-penalised rewards before GAE.") var whitenRewards = false
    @Option(help: "Penalty for responses without end-of-turn.") var missingEosPenalty: Double?
    @Flag(help: "Whiten scores over each batch.") var normalizeRewards = false
    @Option(help: "Clip scores to ±C.") var rewardClip: Double?
    @Option(help: "Pretraining-loss coefficient.") var ptxCoef = 0.0
    @Option(help: "Data for --ptx-coef: a text file (every token trained) or instruction/chat JSONL (rendered with the chat template, replies trained, as in SFT).") var ptxData: String?
    @Option(help: "Stop when the rollout KL exceeds this (nats per response).") var maxKl = 50.0
    @Option(help: "Held-out prompts evaluated before/after.") var evalPrompts = 64
    @OptionGroup var common: RLHFCommonOptions

    func run() throws {
        var o = PPOTrainer.Options()
        common.apply(to: &o.common)
        if common.loraDropout == nil { o.common.peft.loraDropout = 0 }
        o.iterations = iterations; o.samplesPerPrompt = samplesPerPrompt; o.groupBaseline = groupBaseline; o.oversample = oversample; o.ppoEpochs = ppoEpochs; o.minibatches = minibatches
        o.maxNewTokens = maxNewTokens; o.temperature = temperature; o.topK = topK; o.topP = topP
        guard let adv = AdvantageEstimator(rawValue: estimator) else { throw ValidationError("--estimator must be gae or rloo") }
        o.estimator = adv; o.normalizeAdvantage = normalizeAdvantage
        guard let est = PPOMath.KLEstimator(rawValue: klEstimator) else { throw ValidationError("--kl-estimator must be k1 or k3") }
        o.hyper = PPOMath.Hyperparameters(klCoef: klCoef, gamma: gamma, lam: lam, cliprange: cliprange, cliprangeValue: cliprangeValue,
                                          vfCoef: vfCoef, klEstimator: est, whitenRewards: whitenRewards)
        o.klTarget = klTarget; o.klHorizon = klHorizon
        o.missingEOSPenalty = missingEosPenalty; o.normalizeRewards = normalizeRewards; o.rewardClip = rewardClip
        o.ptxCoef = ptxCoef; o.ptxData = ptxData; o.maxKL = maxKl; o.rewardTimeout = rewardTimeout; o.evalPrompts = evalPrompts
        let source: RewardSource
        switch (reward, rewardCommand) {
        case (let r?, nil): source = try RewardSource(rewardModel: URL(fileURLWithPath: r))
        case (nil, let c?): source = try RewardSource(command: c, timeout: rewardTimeout)
        default: throw ValidationError("give exactly one of --reward RM_DIR or --reward-command CMD")
        }
        defer { source.close() }
        try prepareRunFolder(out, resume: common.resume, overwrite: common.overwrite)
        let t = try PPOTrainer(policy: URL(fileURLWithPath: policy), rewards: source, prompts: URL(fileURLWithPath: prompts),
                               out: URL(fileURLWithPath: out), options: o)
        t.progress.message("ppo: \(t.train.count) training prompts, \(t.eval.count) held out, \(iterations) iterations")
        let (b, a) = try t.run(resume: common.resume)
        func f(_ x: Double?) -> String { x.map { String(format: "%.4f", $0) } ?? "-" }
        print("held-out mean reward: before \(f(b)) → after \(f(a)); model: \(t.run.url.appendingPathComponent("final").path)")
    }
}
