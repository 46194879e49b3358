import ArgumentParser
import Foundation
import FinchTrain

/// `finch dpo`: Direct Preference Optimisation against a frozen reference (the initial model).
struct DPOCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dpo",
        abstract: "Direct Preference Optimisation (TRL sigmoid loss; reference log-probs computed once up front).",
        discussion: "Example: finch dpo --model models/sft --data prefs.jsonl --beta 0.1 --out runs/dpo --method lora")

    @Option(help: "Policy model folder (the SFT model; also the reference).") var model: String
    @Option(help: "Preference JSONL; repeatable.") var data: [String]
    @Option(help: "Run folder.") var out: String
    @Option(help: "DPO beta.") var beta = 0.1
    @Option(help: "sigmoid, ipo or hinge.") var lossType = "sigmoid"
    @Option(help: "Label smoothing (conservative DPO).") var labelSmoothing = 0.0
    @Option(help: "Read at most N pairs.") var limit: Int?
    @OptionGroup var common: RLHFCommonOptions

    func run() throws {
        var o = DPOTrainer.Options()
        common.apply(to: &o.common)
        o.beta = beta
        guard let v = DPOLoss.Variant(rawValue: lossType) else { throw ValidationError("unknown --loss-type \(lossType) (choose sigmoid, ipo or hinge)") }
        o.variant = v
        o.labelSmoothing = labelSmoothing
        o.limit = limit
        try prepareRunFolder(out, resume: common.resume, overwrite: common.overwrite)
        let t = try DPOTrainer(model: URL(fileURLWithPath: model), data: data.map { URL(fileURLWithPath: $0) },
                               out: URL(fileURLWithPath: out), options: o)
        t.progress.message("dpo: \(t.train.count) training pairs, \(t.eval.count) held out, \(t.totalSteps) steps, beta \(beta)")
        let (b, a) = try t.run(resume: common.resume)
        func f(_ e: DPOEvaluation?) -> String { e.map { String(format: "loss %.4f, reward accuracy %.3f, margin %.3f", $0.loss, $0.rewardAccuracy, $0.meanMargin) } ?? "-" }
        print("held-out: before \(f(b)) → after \(f(a)); model: \(t.run.url.appendingPathComponent("final").path)")
    }
}
