import ArgumentParser
import Foundation
import FinchTrain
import FinchCLI
import FinchDistributed

@main
struct Finch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finch",
        abstract: "Instruction-tuning suite for GPT-style decoders on the CPU.",
        version: Finch.version,
        subcommands: [Tokenizer.self, DataCommand.self, ChatCommand.self, GenerateCommand.self, InspectCommand.self, ExportCommand.self, ConvertCommand.self, TemplateCommand.self, Bench.self, Merge.self, PretrainCommand.self, SFTCommand.self, EvalCommand.self, ClassifyCommand.self, RewardTrain.self, ScoreCommand.self, DPOCommand.self, KTOCommand.self, PPOCommand.self, GRPOCommand.self, SweepCommand.self, ReportCommand.self, CritiqueCommand.self, SynthesizeCommand.self])

    /// As ArgumentParser's own `main`, except that a training run stopped with Ctrl-C says how to resume and exits
    /// 130 (the shell's status for SIGINT), so scripts never take an interrupted run for a finished one.
    /// `finch --version`.
    static let version = "0.6.0"

    static func main() {
        // A file-size limit (`ulimit -f`) must make a write fail with an error naming the file (EFBIG), not kill the
        // process mid-write with SIGXFSZ and leave half a checkpoint behind.
        signal(SIGXFSZ, SIG_IGN)
        // Line-buffered stdout even into a file or pipe: header lines (stdout) and progress lines (stderr) of a
        // redirected run (`> log 2>&1`) then keep the order they happened in.
        setvbuf(stdout, nil, _IOLBF, 0)
        if let p = ProcessInfo.processInfo.environment[SweepRunner.parentVariable], let pid = pid_t(p) { StopSignal.followSweep(parent: pid) }
        // Started by mpirun: join the other ranks (data-parallel training); a plain `finch` never touches MPI.
        do { try World.joinIfLaunched() } catch { exit(withError: error) }
        // Rank 0 speaks for the job: the other ranks' reports and tables (stdout) would only repeat it.
        if !World.current.isWriter { _ = freopen("/dev/null", "w", stdout) }
        var parsed: ParsableCommand? = nil
        do {
            var command = try parseAsRoot()
            parsed = command
            if World.current.isDistributed {
                let parallel: [ParsableCommand.Type] = [SFTCommand.self, PretrainCommand.self, RewardTrain.self, DPOCommand.self, PPOCommand.self, GRPOCommand.self, BenchRanks.self]
                guard parallel.contains(where: { $0 == type(of: command) }) else {
                    throw ValidationError("under mpirun only finch sft, pretrain, reward, dpo, ppo and grpo train data-parallel; run \(type(of: command)._commandName) as one process")
                }
            }
            try command.run()
        } catch let invalid as ValidationError where parsed != nil {
            // A flag refused while running: show the subcommand's usage, not the top-level one.
            let sub = type(of: parsed!)
            FileHandle.standardError.write(Data("Error: \(invalid.message)\nUsage: \(Finch.usageString(for: sub))\n  See 'finch help \(sub._commandName)' for more information.\n".utf8))
            Foundation.exit(64)
        } catch let stop as TrainingInterrupted {
            // Every rank stopped at the same step; rank 0 says how to resume.
            guard World.current.isWriter else { Foundation.exit(130) }
            var args = Array(CommandLine.arguments.dropFirst())
            if !args.contains("--resume") { args.append("--resume") }
            let quoted = args.map { $0.contains(" ") || $0.isEmpty ? "'\($0)'" : $0 }.joined(separator: " ")
            FileHandle.standardError.write(Data("\n\(stop)\nresume with: finch \(quoted)\n".utf8))
            Foundation.exit(130)
        } catch {
            // One rank's error ends the whole job (MPI_Abort), so the others do not wait for it until their timeout.
            if World.current.isDistributed {
                let who = "finch (rank \(World.current.rank) of \(World.current.size))"
                FileHandle.standardError.write(Data("\(who): error: \(Finch.message(for: error))\n".utf8))
                MPICommunicator.abort(code: 1)
            }
            exit(withError: error)
        }
    }
}
