import Foundation
import FinchModel

/// `finch critique`: Constitutional AI's supervised stage (Bai et al. 2022, SL-CAI). For every prompt the model answers;
/// is asked, under one principle drawn (seeded) from the constitution, to critique its answer; and is asked to rewrite
/// the answer in the light of the critique. The three turns are one conversation in the model's own chat template.
///
/// Output folder:
/// - `transcripts.jsonl`: one line a prompt (its index, the response, principle, critique and revision, stop reasons,
///   token counts): the log a resumed run continues from.
/// - `sft.jsonl`: `{"messages":[prompt…, {"role":"assistant","content":revision}]}` (`finch sft`).
/// - `preferences.jsonl`: `{"prompt":[…],"chosen":revision,"rejected":response}` (`finch dpo`, `reward`, `kto`).
/// - `critique.json`: the model, inputs and sampling settings; a resumed run must match them.
///
/// A prompt whose revision is empty or equal to its response goes to the transcript only (the readers refuse such
/// pairs, and they teach nothing).
public struct SelfCritique {
    public struct Options {
        public var generation: SynthesisModel
        public var prompts: URL
        public var principles: URL
        public var out: URL
        /// Only the first N prompts (a trial run; the same command without it continues with the rest).
        public var limit: Int?
        /// System prompt for prompts that have none.
        public var system: String?
        /// Start again: remove what an earlier run wrote to `out`.
        public var overwrite = false
        public init(model: String, prompts: URL, principles: URL, out: URL) {
            self.generation = SynthesisModel(model: model); self.prompts = prompts; self.principles = principles; self.out = out
        }
    }

    /// One message of a transcript's prompt.
    public struct Turn: Codable, Equatable, Sendable {
        public var role: String
        public var content: String
    }

    /// One prompt's line in `transcripts.jsonl`.
    public struct Transcript: Codable, Equatable, Sendable {
        public var index: Int
        /// Its line in the prompts file.
        public var line: Int
        public var prompt: [Turn]
        public var principle: String
        public var critiqueRequest: String
        public var revisionRequest: String
        public var response: String
        public var critique: String
        public var revision: String
        /// Why each of the three replies ended ("end of turn", "max tokens", …).
        public var stops: [String]
        /// Tokens generated for each of the three replies.
        public var tokens: [Int]
        /// Written to sft.jsonl and preferences.jsonl (false: the note says why not).
        public var kept: Bool
        public var note: String?

        enum CodingKeys: String, CodingKey {
            case index, line, prompt, principle, response, critique, revision, stops, tokens, kept, note
            case critiqueRequest = "critique_request", revisionRequest = "revision_request"
        }

        var conversation: Conversation {
            var c = Conversation()
            for t in prompt {
                if t.role == Role.system.rawValue { c.system = t.content } else { c.turns.append(Message(role: Role(rawValue: t.role) ?? .user, content: t.content)) }
            }
            return c
        }

        /// The SFT line (prompt → revision), nil when the revision is not kept.
        public var sftLine: String? {
            guard kept else { return nil }
            var c = conversation
            c.turns.append(Message(role: .assistant, content: revision))
            return ChatRecords.sft(c)
        }

        /// The preference line (revision ≻ response), nil when the revision is not kept.
        public var preferenceLine: String? {
            kept ? ChatRecords.preference(prompt: conversation.messages, chosen: revision, rejected: response) : nil
        }
    }

    public struct Summary: Equatable {
        public var prompts: Int
        /// Prompts an earlier run had finished.
        public var resumed: Int
        public var kept: Int
        public var skipped: Int
        public var generatedTokens: Int
        public var seconds: Double
    }

    public let options: Options
    public let prompts: [GenerationPrompt]
    public let principles: [Principle]
    public var transcriptsURL: URL { options.out.appendingPathComponent("transcripts.jsonl") }
    public var sftURL: URL { options.out.appendingPathComponent("sft.jsonl") }
    public var preferencesURL: URL { options.out.appendingPathComponent("preferences.jsonl") }
    public var settingsURL: URL { options.out.appendingPathComponent("critique.json") }

    /// Reads and checks the prompts and principles, and the output folder against the settings an earlier run left
    /// there: every input error comes before the model is loaded or anything is generated.
    public init(_ options: Options) throws {
        self.options = options
        principles = try Principles.read(options.principles)
        prompts = try PromptFile.read(options.prompts, system: options.system)
        guard !prompts.isEmpty else { throw ChatFileError("\(options.prompts.path): no prompts") }
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: options.out.path, isDirectory: &isDir), !isDir.boolValue {
            throw ChatFileError("--out \(options.out.path) is a file; critique writes a folder")
        }
        try SynthesisSettingsFile.prepare(recordedSettings(), at: settingsURL, informational: Self.informational,
                                          outputs: [transcriptsURL, sftURL, preferencesURL], overwrite: options.overwrite, command: "critique")
    }

    /// Recorded settings that may change between runs (they do not change what is generated).
    static let informational: Set<String> = ["prompts", "principles", "batch_size"]

    func recordedSettings() throws -> [String: JSONValue] {
        options.generation.recorded.merging([
            "kind": .string("critique"),
            "prompts": .string(options.prompts.path),
            "prompts_sha256": .string(try SynthesisSettingsFile.sha256(options.prompts)),
            "principles": .string(options.principles.path),
            "principles_sha256": .string(try SynthesisSettingsFile.sha256(options.principles)),
            "constitution": .array(principles.map { .object(["name": .string($0.name), "critique": .string($0.critique), "revision": .string($0.revision)]) }),
            "system": options.system.map { .string($0) } ?? .null,
        ]) { a, _ in a }
    }

    /// Prompt `index`'s principle and the seeds of its three replies: a function of the run's seed and the index alone.
    public static func draw(seed: UInt64, index: Int, principles: Int) -> (principle: Int, seeds: [UInt64]) {
        var rng = SynthesisLog.rng(seed: seed, item: index)
        let p = rng.int(below: principles)
        return (p, [rng.next(), rng.next(), rng.next()])
    }

    /// The finished transcripts (an earlier run's), after rebuilding sft.jsonl and preferences.jsonl from them.
    func resume() throws -> [Transcript] {
        var seen = Set<Int>()
        let done = try SynthesisLog.read(transcriptsURL).enumerated().map { i, o in
            try SynthesisLog.decode(Transcript.self, o, file: transcriptsURL, item: i)
        }.filter { seen.insert($0.index).inserted }
        try SynthesisLog.write(lines: done.compactMap(\.sftLine), to: sftURL)
        try SynthesisLog.write(lines: done.compactMap(\.preferenceLine), to: preferencesURL)
        return done
    }

    /// Generates every prompt not yet in the transcripts, `batchSize` at a time through the batched generator.
    /// Checks the observer's stop request after each batch (throws `SynthesisInterrupted`).
    public func run(engine: ChatEngine, observer: SynthesisObserver = SynthesisObserver()) throws -> Summary {
        try SynthesisSettingsFile.write(recordedSettings(), at: settingsURL)
        let done = try resume()
        let doneIndices = Set(done.map(\.index))
        let total = min(prompts.count, options.limit ?? prompts.count)
        let todo = (0..<total).filter { !doneIndices.contains($0) }
        var summary = Summary(prompts: total, resumed: done.filter { $0.index < total }.count,
                              kept: done.filter { $0.index < total && $0.kept }.count,
                              skipped: done.filter { $0.index < total && !$0.kept }.count, generatedTokens: 0, seconds: 0)
        if summary.resumed > 0 { observer.message("critique: \(summary.resumed) of \(total) prompts already done in \(options.out.path); continuing") }
        let transcripts = try JSONLAppender(transcriptsURL), sft = try JSONLAppender(sftURL), preferences = try JSONLAppender(preferencesURL)
        let start = Date()
        for chunkStart in stride(from: 0, to: todo.count, by: max(1, options.generation.batchSize)) {
            let chunk = Array(todo[chunkStart..<min(todo.count, chunkStart + max(1, options.generation.batchSize))])
            let results = try critique(chunk, engine: engine)
            for t in results {
                try transcripts.append(try SynthesisLog.json(t))
                if let line = t.sftLine { try sft.append(line) }
                if let line = t.preferenceLine { try preferences.append(line) }
                if t.kept { summary.kept += 1 } else { summary.skipped += 1 }
                summary.generatedTokens += t.tokens.reduce(0, +)
            }
            summary.seconds = Date().timeIntervalSince(start)
            let finished = summary.resumed + chunkStart + chunk.count
            observer.progress(SynthesisProgress(done: finished, total: total, accepted: summary.kept, rejected: summary.skipped,
                                                generatedTokens: summary.generatedTokens, seconds: summary.seconds,
                                                doneThisRun: chunkStart + chunk.count))
            if finished < total, observer.stopRequested() { throw SynthesisInterrupted(done: finished, total: total) }
        }
        return summary
    }

    /// The three replies for a batch of prompts: all responses together, then all critiques, then all revisions.
    func critique(_ indices: [Int], engine: ChatEngine) throws -> [Transcript] {
        let draws = indices.map { Self.draw(seed: options.generation.seed, index: $0, principles: principles.count) }
        var conversations = indices.map { prompts[$0].conversation }
        var replies: [[(text: String, stats: ReplyStats)]] = []
        for stage in 0..<3 {
            if stage > 0 {
                for b in conversations.indices {
                    let p = principles[draws[b].principle]
                    conversations[b].turns.append(Message(role: .assistant, content: replies[stage - 1][b].text.trimmingCharacters(in: .whitespacesAndNewlines)))
                    conversations[b].turns.append(Message(role: .user, content: stage == 1 ? p.critique : p.revision))
                }
            }
            replies.append(try engine.replies(to: conversations, settings: options.generation.settings, seeds: draws.map { $0.seeds[stage] }))
        }
        return indices.enumerated().map { b, index in
            let p = principles[draws[b].principle]
            let text = replies.map { $0[b].text.trimmingCharacters(in: .whitespacesAndNewlines) }
            let note: String? = text[0].isEmpty ? "empty response" : text[2].isEmpty ? "empty revision"
                : text[2] == text[0] ? "revision equals the response" : nil
            let prompt = prompts[index].conversation.messages.map { Turn(role: $0.role.rawValue, content: $0.content) }
            return Transcript(index: index, line: prompts[index].line, prompt: prompt, principle: p.name,
                              critiqueRequest: p.critique, revisionRequest: p.revision,
                              response: text[0], critique: text[1], revision: text[2],
                              stops: replies.map { $0[b].stats.stopReason.description },
                              tokens: replies.map { $0[b].stats.generatedTokens }, kept: note == nil, note: note)
        }
    }
}
