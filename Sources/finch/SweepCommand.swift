import ArgumentParser
import FinchCLI
import FinchTrain
import Foundation

/// `finch sweep`: hyper-parameter search over a training command's recipe (see `SweepRunner`).
struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Search hyper-parameters: trials as child runs, random or TPE search, asynchronous successive halving.",
        discussion: """
        BASE.yaml is a recipe of the swept command (sft by default; model and data included). SPACE.yaml gives each
        searched key a distribution: `lr: {log-uniform: [1.0e-4, 1.0e-2]}`, `warmup: {int: [0, 100]}`,
        `lora-dropout: {uniform: [0, 0.2]}`, `lora-r: {choice: [4, 8, 16]}` (or a bare list). Trials run as
        `finch CMD --config OUT/trials/NNN.yaml --out OUT/trials/NNN`, --parallel at a time; successive halving stops a
        trial whose eval_loss at a rung (--grace-steps, then ×η) is not among the best 1/η there; with
        --rung-metric exact_match it ranks exact match instead: sft trials answer the first --rung-limit rows of EVAL
        at every evaluation, which matters when the loss rises while the answers still improve. With --metric
        exact_match each finished trial is scored by `finch eval --data EVAL` (greedy). OUT gets trials.jsonl, results.md,
        sweep.svg and best.yaml (the base recipe with the best values). Ctrl-C stops the trials at a checkpoint; the same
        command again resumes the sweep.
        Example: finch sweep --config recipes/demo-sft.yaml --space recipes/sweep-sft-space.yaml --trials 12 --metric exact_match --eval-data corpora/eval.jsonl --out runs/sweep
        """)

    @Option(name: .customLong("config"), help: "The base recipe (YAML) of the swept command.") var baseConfig: String
    @Option(help: "The search space (YAML).") var space: String
    @Option(help: "Number of trials.") var trials: Int = 12
    @Option(help: "eval_loss (lower is better) or exact_match (higher is better, needs --eval-data).") var metric: String = "eval_loss"
    @Option(help: "Sweep folder.") var out: String
    @Option(help: "The training command: sft, pretrain, dpo, kto or reward.") var command: String = "sft"
    @Option(help: "random or tpe.") var search: String = "tpe"
    @Option(help: "Trials at once (default: cores / --threads-per-trial).") var parallel: Int?
    @Option(help: "Compute threads of each trial.") var threadsPerTrial: Int = 1
    @Option(help: "Successive halving: about 1/η of the trials pass each rung.") var eta: Double = 3
    @Option(help: "Steps to the first rung (default: the base recipe's eval-every).") var graceSteps: Int?
    @Flag(help: "Run every trial to its end.") var noHalving = false
    @Option(help: "Evaluation rows for exact_match (JSONL with task and answer).") var evalData: String?
    @Option(help: "Evaluate only the first N rows.") var evalLimit: Int?
    @Option(help: "Longest reply in the exact-match evaluation.") var evalMaxTokens: Int = 32
    @Option(help: "What the halving ranks at its rungs: eval_loss, or exact_match (sft trials answer the first --rung-limit rows of --eval-data at each evaluation).")
    var rungMetric: String = "eval_loss"
    @Option(help: "Rows of --eval-data answered at each rung with --rung-metric exact_match.") var rungLimit: Int = 100
    @Option(help: "Seed of the search.") var seed: UInt64 = 0
    @Flag(help: "Replace a sweep in --out instead of resuming it.") var overwrite = false

    func run() throws {
        guard let method = TPESampler.Method(rawValue: search) else { throw ValidationError("--search \(search): choose random or tpe") }
        let halving = noHalving ? nil : SuccessiveHalving(eta: eta, graceSteps: graceSteps ?? 0)
        guard eta > 1 else { throw ValidationError("--eta must be greater than 1") }
        let settings = SweepRunner.Settings(command: command, baseConfig: baseConfig, space: space, metric: metric, trials: trials,
                                            search: method, seed: seed, halving: halving, evalData: evalData, evalLimit: evalLimit,
                                            evalMaxTokens: evalMaxTokens, rungMetric: rungMetric, rungLimit: rungLimit)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let runner = try SweepRunner(settings: settings, out: URL(fileURLWithPath: out), finch: try Self.finchExecutable(),
                                     parallel: parallel ?? max(1, cores / max(1, threadsPerTrial)), threadsPerTrial: threadsPerTrial,
                                     log: { line in print(line); fflush(stdout) })
        StopSignal.install()
        defer { StopSignal.uninstall() }
        do {
            try runner.run(overwrite: overwrite, stopRequested: { StopSignal.requested })
        } catch is TrainingInterrupted {
            // Not a training run's "resume with --resume": the same sweep command continues where this one stopped.
            let done = runner.trials.filter { $0.status != .running }.count
            FileHandle.standardError.write(Data("sweep stopped: \(done) of \(trials) trials finished, the running ones at a checkpoint; the same command resumes it\n".utf8))
            Foundation.exit(130)
        }
    }

    /// This process's own binary: the trials run the same finch.
    static func finchExecutable() throws -> String {
        try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
    }
}
