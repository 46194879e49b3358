import ArgumentParser
import Foundation
import FinchChat

/// Sampling flags shared by `finch chat` and `finch generate`; unset flags keep the model folder's defaults.
struct SamplingFlags: ParsableArguments {
    @Option(help: "Softmax temperature; 0 = greedy.") var temperature: Float?
    @Option(name: .customLong("top-k"), help: "Keep the k most likely tokens (0 = off).") var topK: Int?
    @Option(name: .customLong("top-p"), help: "Nucleus sampling threshold (1 = off).") var topP: Float?
    @Option(name: .customLong("min-p"), help: "Drop tokens below min-p × the top probability (0 = off).") var minP: Float?
    @Option(name: .customLong("repetition-penalty"), help: "Penalty for tokens already present (1 = off).")
    var repetitionPenalty: Float?
    @Option(name: [.customLong("max-tokens"), .customLong("max-new-tokens")], help: "Maximum new tokens per reply.") var maxTokens: Int?
    @Option(help: "Random seed: the same seed gives the same reply.") var seed: UInt64?
    @Option(help: "Stop when this text appears (repeatable).") var stop: [String] = []

    /// The model folder's defaults with these flags on top; errors name the flag.
    func settings(base: SamplingSettings) throws -> SamplingSettings {
        var s = base
        let values: [(String, String?)] = [
            ("temperature", temperature.map { "\($0)" }), ("top_k", topK.map { "\($0)" }),
            ("top_p", topP.map { "\($0)" }), ("min_p", minP.map { "\($0)" }),
            ("repetition_penalty", repetitionPenalty.map { "\($0)" }), ("max_tokens", maxTokens.map { "\($0)" }),
            ("seed", seed.map { "\($0)" }),
        ]
        for case let (key, value?) in values {
            do { try s.apply(key: key, value: value) } catch {
                throw ValidationError("--\(key.replacingOccurrences(of: "_", with: "-")): \(error)")
            }
        }
        if !stop.isEmpty { s.stop = stop }
        return s
    }
}

/// Hidden test hook: `--engine echo` replaces the model by `EchoEngine` so the REPL mechanics can be
/// tested through a pseudo-terminal without a model. Not a model; not shown in `--help`.
struct TestEngineOptions: ParsableArguments {
    @Option(help: .hidden) var engine: String?
    @Option(name: .customLong("echo-delay-ms"), help: .hidden) var echoDelayMs: Int = 0
    @Option(name: .customLong("echo-context"), help: .hidden) var echoContext: Int = 4096

    func makeEngine(model: String?, adapter: String?, raw: Bool = false) throws -> ChatEngine {
        switch engine {
        case nil:
            guard let model else { throw ValidationError("--model DIR is required") }
            return try makeChatEngine(modelDir: URL(fileURLWithPath: model),
                                      adapterDir: adapter.map { URL(fileURLWithPath: $0) }, raw: raw)
        case "echo"?:
            return EchoEngine(contextLength: echoContext, tokenDelay: Double(echoDelayMs) / 1000)
        case let other?:
            throw ValidationError("--engine \(other): only 'echo' (a test hook) exists")
        }
    }
}

struct ChatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Talk to a model in the terminal.",
        discussion: """
        Replies stream token by token. Commands at the prompt: /help /system /reset /undo /retry /set /show \
        /save /prefer /quit. Ctrl-C stops a reply, Ctrl-D quits; input history is kept in ~/.finch_history \
        ($FINCH_HISTORY overrides, empty = none).
        When standard input is not a terminal, every input line is one user message and every reply is one \
        output line (newlines escaped as \\n, backslashes as \\\\), with nothing else on standard output.

        Example: finch chat --model runs/sft/best --temperature 0.7 --prefs prefs.jsonl
        """)

    @Option(help: "Model folder (config.json, model.safetensors, tokenizer.model).") var model: String?
    @Option(help: "PEFT adapter folder to apply to the model.") var adapter: String?
    @Option(help: "System prompt.") var system: String?
    @Option(help: "Preference file that /prefer appends to.") var prefs: String?
    @Flag(help: "Print tokens/s after each reply.") var verbose = false
    @OptionGroup var sampling: SamplingFlags
    @OptionGroup var test: TestEngineOptions

    func run() throws {
        let engine = try test.makeEngine(model: model, adapter: adapter)
        let settings = try sampling.settings(base: engine.defaultSettings)
        ChatREPL.run(engine: engine, system: system, settings: settings, verbose: verbose,
                     preferencesFile: prefs.map { URL(fileURLWithPath: $0) })
    }
}
