import ArgumentParser
import Foundation
import FinchTrain

@main
struct Finch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finch",
        abstract: "Instruction-tuning suite for GPT-style decoders on the CPU.",
        subcommands: [Tokenizer.self, DataCommand.self, ChatCommand.self, GenerateCommand.self, InspectCommand.self, ExportCommand.self, ConvertCommand.self, TemplateCommand.self, Bench.self, Merge.self, PretrainCommand.self, SFTCommand.self, EvalCommand.self, ClassifyCommand.self, RewardTrain.self, ScoreCommand.self, DPOCommand.self, PPOCommand.self])

    /// As ArgumentParser's own `main`, except that a training run stopped with Ctrl-C says how to resume and exits
    /// 130 (the shell's status for SIGINT), so scripts never take an interrupted run for a finished one.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let stop as TrainingInterrupted {
            var args = Array(CommandLine.arguments.dropFirst())
            if !args.contains("--resume") { args.append("--resume") }
            let quoted = args.map { $0.contains(" ") || $0.isEmpty ? "'\($0)'" : $0 }.joined(separator: " ")
            FileHandle.standardError.write(Data("\n\(stop)\nresume with: finch \(quoted)\n".utf8))
            Foundation.exit(130)
        } catch {
            exit(withError: error)
        }
    }
}
