import ArgumentParser
import Foundation
import FinchCLI
import FinchTrain

/// `finch dpo`: Direct Preference Optimisation against a frozen reference (the initial model).
struct DPOCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dpo",
        abstract: "Direct Preference Optimisation (TRL sigmoid loss; reference log-probs computed once up front).",
        discussion: "Example: finch dpo --model models/sft --data prefs.jsonl --beta 0.1 --out runs/dpo --method lora")

    static let d = DPOOptions()
    @Option(help: "Policy model folder (the SFT model; also the reference).") var model: String?
    @Option(help: "Preference JSONL; repeatable.") var data: [String] = []
    @Option(help: "Run folder.") var out: String?
    @Option(help: "DPO beta (default \(d.beta)).") var beta: Double?
    @Option(help: "sigmoid, ipo, hinge, robust (noisy labels; uses --label-smoothing), apo_zero or simpo (reference-free, length-normalised; default \(d.lossType.rawValue)).") var lossType: DPOLoss.Variant?
    @Option(help: "SimPO target margin gamma (default \(d.simpoGamma)).") var simpoGamma: Double?
    @Option(help: "Label smoothing, conservative DPO (default \(d.labelSmoothing)).") var labelSmoothing: Double?
    @Option(help: "Read at most N pairs.") var limit: Int?
    @OptionGroup var common: RLHFCommonOptions
    @OptionGroup var options: ConfigOptions

    func run() throws {
        guard let (config, recipe) = try options.resolve(DPOConfig.self, command: self) else { return }
        let progress = trainingProgress(logEvery: 10, threads: config.common.threads)
        try prepareRunFolder(config.dpo.out, resume: config.common.resume, overwrite: options.overwrite)
        try annotating(recipe) {
            let t = try DPOTrainer(config: config, progress: progress)
            progress.receive(.message("dpo: \(t.train.count) training pairs, \(t.eval.count) held out, \(t.totalSteps) steps, beta \(config.dpo.beta)"))
            let (b, a) = try t.fit()
            func f(_ e: DPOEvaluation?) -> String { e.map { String(format: "loss %.4f, reward accuracy %.3f, margin %.3f", $0.loss, $0.rewardAccuracy, $0.meanMargin) } ?? "-" }
            print("held-out: before \(f(b)) → after \(f(a)); model: \(t.run.url.appendingPathComponent("final").path)")
        }
    }
}

extension DPOLoss.Variant: ExpressibleByArgument {}
