import Foundation

/// `finch generate`: replies to every prompt of a prompts file and writes one JSONL record per prompt:
/// `{"line":N,"messages":[…,{"role":"assistant","content":reply}],"response":reply,"reference":…,"stop":…,"tokens":n}`.
/// `messages` is chat format (ready for SFT); `reference` is present when the prompt record had an answer.
public enum BatchGeneration {
    public struct Summary: Equatable {
        public var prompts: Int
        public var generatedTokens: Int
        public var seconds: Double
        public var tokensPerSecond: Double { seconds > 0 ? Double(generatedTokens) / seconds : 0 }
    }

    /// Generates `batch` prompts at a time through `engine.replies(to:settings:)`. Each prompt uses the
    /// same seed, so the output does not depend on the batch size. The output file is written atomically
    /// when everything is done; `progress` receives (done, total) after each batch.
    /// `raw`: each prompt's text as it is (its messages' contents joined by blank lines), no chat template.
    public static func run(engine: ChatEngine, prompts: [GenerationPrompt], settings: SamplingSettings, batch: Int,
                           out: URL, raw: Bool = false, progress: (Int, Int) -> Void = { _, _ in }) throws -> Summary {
        if raw, !(engine is DecoderChatEngine) { throw EngineError("--raw needs a model (--model)") }
        let start = Date()
        var lines: [String] = []
        var tokens = 0
        for chunkStart in stride(from: 0, to: prompts.count, by: max(1, batch)) {
            let chunk = Array(prompts[chunkStart..<min(prompts.count, chunkStart + max(1, batch))])
            let results = raw
                ? try (engine as! DecoderChatEngine).rawReplies(to: chunk.map { rawText($0.conversation) }, settings: settings)
                : try engine.replies(to: chunk.map(\.conversation), settings: settings)
            for (prompt, result) in zip(chunk, results) {
                tokens += result.stats.generatedTokens
                lines.append(record(prompt: prompt, reply: result.text, stats: result.stats))
            }
            progress(min(prompts.count, chunkStart + chunk.count), prompts.count)
        }
        let data = Data(lines.map { $0 + "\n" }.joined().utf8)
        do { try AtomicFileWriter.write(data, to: out) } catch {
            throw ChatFileError("\(out.path): cannot write (\(error))")
        }
        return Summary(prompts: prompts.count, generatedTokens: tokens, seconds: Date().timeIntervalSince(start))
    }

    static func record(prompt: GenerationPrompt, reply: String, stats: ReplyStats) -> String {
        var done = prompt.conversation
        done.turns.append(Message(role: .assistant, content: reply))
        var fields = ["\"line\":\(prompt.line)", "\"messages\":\(JSONText.messages(done.messages))",
                      "\"response\":\(JSONText.quote(reply))"]
        if let reference = prompt.reference { fields.append("\"reference\":\(JSONText.quote(reference))") }
        fields.append("\"stop\":\(JSONText.quote(stats.stopReason.description))")
        fields.append("\"tokens\":\(stats.generatedTokens)")
        if !stats.tokenIDs.isEmpty { fields.append("\"ids\":[\(stats.tokenIDs.map(String.init).joined(separator: ","))]") }
        return "{" + fields.joined(separator: ",") + "}"
    }

    /// The plain text of a prompt for `--raw`: its messages' contents, blank-line separated.
    static func rawText(_ c: Conversation) -> String { c.messages.map(\.content).joined(separator: "\n\n") }
}
