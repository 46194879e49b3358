import ArgumentParser
import Foundation
import FinchChat
import FinchCLI
import FinchTrain

/// `finch critique`: self-critique and revision under a constitution (Constitutional AI's supervised stage).
struct CritiqueCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "critique",
        abstract: "Self-critique data: response, critique under a principle, revision (Constitutional AI, SL-CAI).",
        discussion: """
        For each prompt the model answers, critiques its answer under a principle drawn (seeded) from --principles, \
        and rewrites the answer, all as one conversation in the model's chat template. --principles is JSONL, one \
        {"name":…,"critique":…,"revision":…} a line (revision optional; see prompts/constitution.jsonl). \
        --prompts is read as finch generate reads it ({"prompt":…}, {"instruction":…}, {"messages":[…]}).

        --out DIR receives sft.jsonl (prompt → revision, for finch sft), preferences.jsonl (chosen = revision, \
        rejected = response, for finch dpo / reward / kto), transcripts.jsonl (every step, per prompt) and \
        critique.json (model, inputs, sampling). Each prompt is written when done: run the same command again \
        after an interruption to continue (other settings are refused; --overwrite starts again).

        Example: finch critique --model SmolLM2-135M-Instruct.Q4_1.gguf --principles prompts/constitution.jsonl \
        --prompts prompts/critique_prompts.jsonl --out runs/cai --max-new-tokens 96 --temperature 0.7 --seed 1
        """)

    @Option(help: "Principles JSONL: {\"name\", \"critique\", \"revision\"} a line.") var principles: String
    @Option(help: "JSONL file of prompts.") var prompts: String
    @Option(help: "Output folder.") var out: String
    @Option(help: "System prompt for prompts that have none.") var system: String?
    @Option(help: "Only the first N prompts (the same command without it continues with the rest).") var limit: Int?
    @OptionGroup var common: SynthesisRunFlags

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be >= 1") }
    }

    func run() throws {
        var o = SelfCritique.Options(model: common.model, prompts: URL(fileURLWithPath: prompts),
                                     principles: URL(fileURLWithPath: principles), out: URL(fileURLWithPath: out))
        o.generation = try common.generation()
        o.limit = limit; o.system = system; o.overwrite = common.overwrite
        let job = try SelfCritique(o)   // every input error before the model loads
        _ = try common.run(status: { p in
            "critique \(p.done)/\(p.total) prompts · \(p.accepted) kept · \(p.rejected) skipped" + rateAndETA(p)
        }, { try job.run(engine: $0, observer: $1) }, summary: { s in
            String(format: "critique: %d prompts (%d from an earlier run); %d revisions kept, %d skipped; %d tokens in %.1f s (%.1f tokens/s); wrote %@",
                   s.prompts, s.resumed, s.kept, s.skipped, s.generatedTokens, s.seconds,
                   s.seconds > 0 ? Double(s.generatedTokens) / s.seconds : 0, out)
        })
    }
}
