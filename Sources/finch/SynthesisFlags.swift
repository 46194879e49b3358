import ArgumentParser
import Foundation
import FinchChat
import FinchCLI
import FinchKernels
import FinchTrain

/// The flags `finch critique` and `finch synthesize` share: the model, the batched generator's batch and threads,
/// sampling (unset flags keep the model's generation_config defaults; the seed defaults to 0 so a run is repeatable),
/// and --overwrite.
struct SynthesisRunFlags: ParsableArguments {
    @Option(help: "Model folder or .gguf file (an instruct model with a chat template).") var model: String
    @Option(help: "PEFT adapter folder to apply to the model.") var adapter: String?
    @Option(help: "Prompts generated together by the batched generator.") var batchSize: Int = 4
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Flag(help: "Start again: remove what an earlier run wrote to --out (otherwise the run continues it).") var overwrite = false
    @OptionGroup var sampling: SamplingFlags

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be >= 1") }
        if let threads, threads < 1 { throw ValidationError("--threads must be >= 1") }
    }

    /// The model and sampling (the model's defaults under the flags), known before the model is loaded.
    func generation() throws -> SynthesisModel {
        var g = SynthesisModel(model: model)
        g.adapter = adapter
        g.settings = try sampling.settings(base: SamplingSettings.modelDefaults(folder: URL(fileURLWithPath: model)))
        g.seed = g.settings.seed ?? 0
        g.batchSize = batchSize
        return g
    }

    func engine() throws -> ChatEngine {
        if let threads { ThreadPool.shared.setThreads(threads) }
        return try makeChatEngine(modelDir: URL(fileURLWithPath: model), adapterDir: adapter.map { URL(fileURLWithPath: $0) })
    }
}

extension SynthesisRunFlags {
    /// Loads the model and runs `job` with the terminal's progress line and Ctrl-C; prints `summary` of the result on
    /// stderr. A stop request exits 130: what is done is on disk and the same command continues it.
    func run<Result>(status: @escaping (SynthesisProgress) -> String, _ job: (ChatEngine, SynthesisObserver) throws -> Result,
                     summary: (Result) -> String) throws -> Result {
        let engine = try engine()
        let terminal = TerminalProgress(catchCtrlC: true)
        do {
            let result = try job(engine, synthesisObserver(terminal, line: status))
            terminal.receive(.message(summary(result)))
            return result
        } catch let stop as SynthesisInterrupted {
            FileHandle.standardError.write(Data("\n\(stop)\n".utf8))
            Foundation.exit(130)
        }
    }
}

/// Renders a synthesis run: a status line in place on a terminal (nothing when stderr is not one), remarks on stderr,
/// Ctrl-C (or SIGTERM) as a stop request honoured after the current batch.
func synthesisObserver(_ terminal: TerminalProgress, line: @escaping (SynthesisProgress) -> String) -> SynthesisObserver {
    SynthesisObserver(progress: { terminal.status(line($0)) }, message: { terminal.receive(.message($0)) },
                      stopRequested: { terminal.stopRequested })
}

/// ` · 41.2 tok/s · ETA 1m20s`
func rateAndETA(_ p: SynthesisProgress) -> String {
    var s = " · \(String(format: "%.1f", p.tokensPerSecond)) tok/s"
    if let eta = p.etaSeconds { s += " · ETA \(ProgressReporter.duration(eta))" }
    return s
}
