import ArgumentParser
import Foundation
import FinchTrain

/// `finch score`: scores prompt/response pairs (or both replies of preference rows) with a reward model.
struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Score {prompt, response} or {prompt, chosen, rejected} JSONL rows with a reward model; JSONL out.",
        discussion: "Example: finch score --reward runs/rm/final --data answers.jsonl > scores.jsonl")

    @Option(help: "Reward model folder.") var reward: String
    @Option(help: "JSONL input.") var data: String
    @Option(help: "Output file (default: stdout).") var out: String?
    @Option(help: "Rows per forward.") var batchSize = 16
    @Option(help: "Chat template (default: the model's).") var template: String?
    @Option(help: "Maximum tokens per sequence, cut as in training (default: the model's max positions; give finch reward's --max-length to score as trained).") var maxLength: Int?

    @Flag(help: "Also write the token ids each score was computed on (for tools/hf_reward_check.py).") var withIds = false
    @Option(help: "With preference pairs: write a report folder (accuracy with a 95% interval, calibration and a reliability diagram, length bias, score distribution).") var report: String?

    func run() throws {
        let scorer = try RewardScorer(rewardModel: URL(fileURLWithPath: reward), templateName: template)
        let result = try scorer.scoreFile(URL(fileURLWithPath: data), batchSize: batchSize, maxLength: maxLength, withIDs: withIds)
        let text = result.lines.joined(separator: "\n") + (result.lines.isEmpty ? "" : "\n")
        if let o = out { try text.write(to: URL(fileURLWithPath: o), atomically: true, encoding: .utf8) }
        else { FileHandle.standardOutput.write(Data(text.utf8)) }
        var summary = "scored \(result.lines.count) rows"
        if let acc = result.pairwiseAccuracy, let se = result.accuracyStandardError {
            summary += String(format: "; pairwise accuracy %.3f ± %.3f (standard error, %d pairs), mean margin %.3f",
                              acc, se, result.pairs, result.meanMargin ?? 0)
        }
        FileHandle.standardError.write(Data((summary + "\n").utf8))
        if let dir = report {
            let r = try RewardReport(chosen: result.chosenScores, rejected: result.rejectedScores,
                                     chosenLengths: result.chosenLengths, rejectedLengths: result.rejectedLengths)
            try r.write(to: URL(fileURLWithPath: dir))
            FileHandle.standardError.write(Data(String(format: "report: accuracy %.3f (95%% %.3f–%.3f), ECE %.3f, length correlation %@ → %@\n",
                                                       r.accuracy, r.accuracyInterval95.lower, r.accuracyInterval95.upper, r.ece,
                                                       r.lengthBias.scoreLengthCorrelation.map { String(format: "%+.3f", $0) } ?? "–", dir).utf8))
        }
    }
}
