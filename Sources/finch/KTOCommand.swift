import ArgumentParser
import Foundation
import FinchCLI
import FinchTrain

/// `finch kto`: Kahneman–Tversky Optimisation on thumbs-up / thumbs-down completions.
struct KTOCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kto",
        abstract: "KTO (TRL's loss): learn from unpaired desirable / undesirable completions, e.g. /good and /bad from finch chat.",
        discussion: """
        DATA is JSONL of {"prompt": ..., "completion": ..., "label": true|false} (TRL's unpaired form; `finch chat` writes it
        with /good and /bad), or preference pairs, each unpaired into a desirable and an undesirable example.
        Every option may also come from a YAML recipe (--config recipe.yaml); Ctrl-C checkpoints and exits 130; --resume
        continues exactly.
        Example: finch kto --model models/sft --data feedback.jsonl --method lora --out runs/kto
        """)

    static let d = KTOOptions()
    @Option(help: "Policy model folder (the SFT model; also the reference).") var model: String?
    @Option(help: "KTO JSONL (unpaired records or preference pairs); repeatable.") var data: [String] = []
    @Option(help: "Run folder.") var out: String?
    @Option(help: "KTO beta (default \(d.beta)).") var beta: Double?
    @Option(help: "Weight of desirable examples' losses, lambda_D (default \(d.desirableWeight)).") var desirableWeight: Double?
    @Option(help: "Weight of undesirable examples' losses, lambda_U (default \(d.undesirableWeight)).") var undesirableWeight: Double?
    @Option(help: "kto (with the batch KL reference point) or apo_zero_unpaired (default \(d.lossType.rawValue)).") var lossType: KTOLoss.Variant?
    @Option(help: "Read at most N examples.") var limit: Int?
    @OptionGroup var common: RLHFCommonOptions
    @OptionGroup var options: ConfigOptions

    func run() throws {
        guard let (config, recipe) = try options.resolve(KTOConfig.self, command: self) else { return }
        let progress = trainingProgress(logEvery: 10, threads: config.common.threads)
        try prepareRunFolder(config.kto.out, resume: config.common.resume, overwrite: options.overwrite)
        try annotating(recipe) {
            let t = try KTOTrainer(config: config, progress: progress)
            let up = t.train.filter(\.desirable).count
            progress.receive(.message("kto: \(t.train.count) training examples (\(up) desirable, \(t.train.count - up) undesirable), \(t.eval.count) held out, \(t.totalSteps) steps"))
            let (b, a) = try t.fit()
            func f(_ e: KTOEvaluation?) -> String { e.map { String(format: "loss %.4f, kl %.3f", $0.loss, $0.kl) } ?? "-" }
            print("held-out: before \(f(b)) → after \(f(a)); model: \(t.run.url.appendingPathComponent("final").path)")
        }
    }
}

extension KTOLoss.Variant: ExpressibleByArgument {}
