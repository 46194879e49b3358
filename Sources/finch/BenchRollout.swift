import ArgumentParser
import Foundation
import FinchKernels
import FinchModel
import FinchData
import FinchTrain

/// `finch bench rollout`: PPO-style rollouts — chat prompts through the model's template, sampled at a
/// temperature with one seed per row, stopping at end of turn or after `--max-new-tokens` — timed as new tokens/s.
struct BenchRollout: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollout",
        abstract: "PPO rollout speed: new tokens/s sampling replies to a batch of chat prompts (best of the repetitions).",
        discussion: """
        The prompts are the first --prompts of a fixed list of questions, rendered with the model's chat template; \
        row i samples with seed --seed + i·0x9E3779B97F4A7C15 as PPO does, so every repetition makes the same replies.

        Example: finch bench rollout --model SmolLM2-135M-Instruct.Q4_1.gguf --prompts 8 --max-new-tokens 64
        """)

    @Option(help: "Model folder or .gguf file (with a chat template, else chatml).") var model: String
    @Option(help: "Prompts sampled together (at most \(BenchRollout.questions.count)).") var prompts: Int = 8
    @Option(help: "New tokens per reply at most.") var maxNewTokens: Int = 64
    @Option(help: "Sampling temperature (0 = greedy).") var temperature: Double = 1
    @Option(help: "Base sampling seed.") var seed: UInt64 = 42
    @Option(help: "Timed repetitions (the best is reported).") var repetitions: Int = 3
    @Option(help: "Worker threads (default: the pool's).") var threads: Int?
    @Flag(help: "Print one JSON object instead of the table.") var json = false

    static let questions = [
        "What is the capital of France?",
        "Write a haiku about the sea.",
        "Explain in two sentences why the sky is blue.",
        "List three fruits that are red.",
        "How do I reverse a list in Python?",
        "Give me a short tip for sleeping better.",
        "What is 17 times 23? Show your working.",
        "Describe a cat to someone who has never seen one.",
        "Name the planets of the solar system in order from the sun.",
        "Translate 'good morning, how are you?' into French and German.",
        "Why do leaves change colour in autumn?",
        "Suggest a name for a small bakery by the harbour.",
        "What does a compiler do?",
        "Summarise the plot of Romeo and Juliet in one sentence.",
        "Write a limerick about a forgetful robot.",
        "What are the health benefits of walking every day?",
    ]

    func validate() throws {
        guard prompts >= 1, prompts <= Self.questions.count else { throw ValidationError("--prompts must be 1...\(Self.questions.count)") }
        guard maxNewTokens >= 1 else { throw ValidationError("--max-new-tokens must be >= 1") }
        guard repetitions >= 1 else { throw ValidationError("--repetitions must be >= 1") }
    }

    func run() throws {
        if let t = threads { ThreadPool.shared.setThreads(t) }
        let source = try LoadedModelFolder(URL(fileURLWithPath: model), causalLM: "finch bench rollout")
        let decoder = try source.decoder()
        let ids = try Self.questions.prefix(prompts).map { q in
            BatchGenerator.keepingRecent(try source.encoder.generationPrompt([Message(.user, q)]).map(Int.init),
                                         newTokens: maxNewTokens, positions: decoder.config.maxPositions)
        }
        let stop = Set(source.encoder.stopIDs)
        var runs: [(seconds: Double, tokens: Int, cpu: Double)] = []
        var replies: [[Int]] = []
        for _ in 0..<repetitions {
            let t0 = nowSeconds(), c0 = cpuSeconds()
            replies = rollout(decoder, prompts: ids, stop: stop)
            runs.append((nowSeconds() - t0, replies.reduce(0) { $0 + $1.count }, cpuSeconds() - c0))
        }
        let best = runs.max { Double($0.tokens) / $0.seconds < Double($1.tokens) / $1.seconds }!
        let rate = Double(best.tokens) / best.seconds
        let promptTokens = ids.reduce(0) { $0 + $1.count }
        if json {
            let obj: [String: Any] = [
                "model": model, "prompts": prompts, "prompt_tokens": promptTokens, "max_new_tokens": maxNewTokens,
                "temperature": temperature, "threads": ThreadPool.shared.threads, "new_tokens": best.tokens,
                "seconds": best.seconds, "new_tokens_per_s": rate, "new_tokens_per_cpu_s": Double(best.tokens) / best.cpu,
                "all_new_tokens_per_s": runs.map { Double($0.tokens) / $0.seconds }, "peak_rss_mib": peakRSSMiB(),
            ]
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("rollout \(URL(fileURLWithPath: model).lastPathComponent): \(prompts) prompts (\(promptTokens) tokens), "
              + "≤ \(maxNewTokens) new tokens each, temperature \(temperature), \(ThreadPool.shared.threads) threads, best of \(repetitions)")
        print(String(format: "  new tokens/s   %8.1f   (%d new tokens in %.2f s)", rate, best.tokens, best.seconds))
        print(String(format: "  per CPU-second %8.1f", Double(best.tokens) / best.cpu))
        print("  every run      " + runs.map { String(format: "%.1f", Double($0.tokens) / $0.seconds) }.joined(separator: ", "))
        print(String(format: "  peak RSS MiB   %8.0f", peakRSSMiB()))
    }

    /// One reply per prompt, as PPO's rollouts make them: every prompt through the batched generator at once.
    func rollout(_ decoder: Decoder, prompts: [[Int]], stop: Set<Int>) -> [[Int]] {
        let options = GenerationOptions(maxNewTokens: maxNewTokens, sampling: SamplingOptions(temperature: Float(temperature), seed: seed),
                                        stopTokenIds: stop)
        return BatchGenerator(decoder: decoder).generate(prompts, options: options).map(\.tokens)
    }
}
