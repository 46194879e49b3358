import ArgumentParser
import Foundation
import FinchChat
import FinchCLI
import FinchTrain

/// `finch synthesize`: Self-Instruct — grow an instruction set from seed tasks with the model itself.
struct SynthesizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synthesize",
        abstract: "Grow an instruction set from seed tasks, Self-Instruct style (ROUGE-L near-duplicate filter).",
        discussion: """
        Each attempt shows the model --examples tasks from the pool (seed tasks and accepted ones) and asks for a \
        new task; a task that is empty, shorter than --min-words or longer than --max-words, asks for images or \
        files, starts with punctuation, reads as a chat reply ("I'm ready to help!"), or has ROUGE-L F >= --similarity with any task in the pool is rejected; \
        the model answers the others. It stops when --n tasks are accepted or --max-attempts are spent.

        --out FILE receives Alpaca SFT records {"instruction","input","output"} (for finch sft); FILE.attempts.jsonl \
        every attempt with its verdict; FILE.meta.json the model, seed tasks and sampling. Run the same command \
        again after an interruption to continue (other settings are refused; --overwrite starts again).

        Example: finch synthesize --model SmolLM2-135M-Instruct.Q4_1.gguf --seed-tasks corpora/open_ended.jsonl \
        --n 50 --out runs/self-instruct.jsonl --temperature 0.9 --max-new-tokens 128
        """)

    @Option(help: "Seed tasks (JSONL: instruction, prompt or messages records).") var seedTasks: String
    @Option(help: "New tasks to accept.") var n: Int
    @Option(help: "Output JSONL (Alpaca records).") var out: String
    @Option(help: "In-context example tasks per attempt.") var examples: Int = 4
    @Option(help: "Attempts before giving up (default 10 × --n).") var maxAttempts: Int?
    @Option(help: "Reject a task whose ROUGE-L F with one in the pool is at least this.") var similarity: Double = 0.7
    @Option(help: "Reject tasks of fewer words.") var minWords: Int = 3
    @Option(help: "Reject tasks of more words.") var maxWords: Int = 150
    @OptionGroup var common: SynthesisRunFlags

    func validate() throws {
        guard n >= 1 else { throw ValidationError("--n must be >= 1") }
        guard examples >= 1 else { throw ValidationError("--examples must be >= 1") }
        if let maxAttempts, maxAttempts < 1 { throw ValidationError("--max-attempts must be >= 1") }
        guard similarity > 0, similarity <= 1 else { throw ValidationError("--similarity must be in (0, 1]") }
        guard minWords >= 1, maxWords >= minWords else { throw ValidationError("--min-words must be >= 1 and <= --max-words") }
    }

    func run() throws {
        var o = SelfInstruct.Options(model: common.model, seedTasks: URL(fileURLWithPath: seedTasks), out: URL(fileURLWithPath: out), n: n)
        o.generation = try common.generation()
        o.examples = examples; o.maxAttempts = maxAttempts; o.similarity = similarity
        o.minWords = minWords; o.maxWords = maxWords; o.overwrite = common.overwrite
        let job = try SelfInstruct(o)   // every input error before the model loads
        let s = try common.run(status: { p in
            "synthesize \(p.done)/\(p.total) tasks · \(p.rejected) rejected · attempt \(p.attempts ?? 0)/\(p.attemptBudget ?? 0)" + rateAndETA(p)
        }, { try job.run(engine: $0, observer: $1) }, summary: { s in
            let reasons = s.reasons.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            return String(format: "synthesize: %d of %d tasks accepted in %d attempts (%d rejected%@); %d tokens in %.1f s (%.1f tokens/s); wrote %@",
                          s.accepted, n, s.attempts, s.rejected, reasons.isEmpty ? "" : ": " + reasons, s.generatedTokens, s.seconds,
                          s.seconds > 0 ? Double(s.generatedTokens) / s.seconds : 0, out)
        })
        if s.accepted < n {
            throw EngineError("only \(s.accepted) of \(n) tasks were accepted within \(s.attempts) attempts (see \(out).attempts.jsonl); raise --max-attempts")
        }
    }
}
