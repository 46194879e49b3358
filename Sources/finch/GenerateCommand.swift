import ArgumentParser
import Foundation
import FinchChat

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate replies for a JSONL file of prompts (for evaluation and for building data).",
        discussion: """
        Each prompts line is {"messages":[…]}, {"prompt":"…"}, {"instruction":"…","input":"…"} or a JSON string. \
        Each output line is {"line":N,"messages":[…with the reply],"response":"…","reference":"…","stop":"…","tokens":N,"ids":[…]} \
        (ids: the generated token ids, the stop token included). --raw feeds each prompt's text as it is, without the chat \
        template (for base models); a BOS token goes first exactly when the model's tokenizer adds one.

        Example: finch generate --model runs/sft/best --prompts eval.jsonl --out replies.jsonl --temperature 0 --batch 8
        """)

    @Option(help: "Model folder or .gguf file.") var model: String?
    @Option(help: "PEFT adapter folder to apply to the model.") var adapter: String?
    @Option(help: "JSONL file of prompts.") var prompts: String
    @Option(help: "JSONL file to write (replaced atomically when done).") var out: String
    @Option(help: "System prompt for records that have none.") var system: String?
    @Option(help: "Prompts generated together.") var batch: Int = 8
    @Flag(help: "Plain-text prompts: no chat template (base models).") var raw = false
    @OptionGroup var sampling: SamplingFlags
    @OptionGroup var test: TestEngineOptions

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be >= 1") }
    }

    func run() throws {
        let list = try PromptFile.read(URL(fileURLWithPath: prompts), system: system)
        let engine = try test.makeEngine(model: model, adapter: adapter, raw: raw)
        let settings = try sampling.settings(base: engine.defaultSettings)
        let summary = try BatchGeneration.run(engine: engine, prompts: list, settings: settings, batch: batch,
                                              out: URL(fileURLWithPath: out), raw: raw) { done, total in
            FileHandle.standardError.write(Data("\rgenerated \(done)/\(total)".utf8))
        }
        FileHandle.standardError.write(Data(String(
            format: "\nwrote %d replies to %@ (%d tokens, %.1f tokens/s)\n",
            summary.prompts, out, summary.generatedTokens, summary.tokensPerSecond).utf8))
    }
}
