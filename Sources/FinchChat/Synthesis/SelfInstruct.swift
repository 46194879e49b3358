import Foundation
import FinchData
import FinchModel

/// `finch synthesize`: grows an instruction set as Self-Instruct does (Wang et al. 2022). Each attempt shows the model
/// k tasks drawn from the pool (seed tasks and tasks accepted so far) and asks it, through its chat template, for one
/// new task; the task is filtered (empty, fewer than 3 or more than 150 words, asks for non-text input or output,
/// starts with punctuation or a non-ASCII character, reads as a chat reply rather than a task (starts "I'm", "Here",
/// "Sure"…, or ends with a colon: small chat models often answer the request instead of writing a task), ROUGE-L F ≥ 0.7
/// against any task in the pool) and, if kept, the
/// model answers it. Attempts run in rounds of `batchSize` generated together from the pool as it stood at the round's
/// start, until `n` tasks are accepted or `maxAttempts` are spent.
///
/// Files: `FILE` holds the accepted tasks as Alpaca SFT records `{"instruction","input","output"}` (`finch sft`);
/// `FILE.attempts.jsonl` every attempt with its verdict (the log a resumed run continues from);
/// `FILE.meta.json` the model, seed tasks and sampling settings (a resumed run must match them).
public struct SelfInstruct {
    public struct Options {
        public var generation: SynthesisModel
        public var seedTasks: URL
        public var out: URL
        public var n: Int
        /// In-context example tasks per attempt (at most half of them generated ones, as the paper mixes 6 + 2).
        public var examples = 4
        /// Attempts before giving up (default 10 × n).
        public var maxAttempts: Int?
        /// A task this similar (ROUGE-L F) to one in the pool is a near-duplicate.
        public var similarity = 0.7
        public var minWords = 3
        public var maxWords = 150
        public var overwrite = false
        public init(model: String, seedTasks: URL, out: URL, n: Int) {
            self.generation = SynthesisModel(model: model); self.seedTasks = seedTasks; self.out = out; self.n = n
        }
        public var attemptBudget: Int { maxAttempts ?? 10 * n }
    }

    /// One attempt's line in `FILE.attempts.jsonl`.
    public struct Attempt: Codable, Equatable, Sendable {
        public var attempt: Int
        public var round: Int
        public var roundSize: Int
        /// The in-context example tasks shown.
        public var examples: [String]
        /// The model's reply to the task request, and the task read from it.
        public var raw: String
        public var instruction: String
        public var output: String?
        /// "accepted", "rejected" or "unused" (the target was reached earlier in the round).
        public var status: String
        public var reason: String?
        /// The highest ROUGE-L F against the pool, and that task.
        public var rougeL: Double?
        public var mostSimilar: String?
        public var tokens: Int

        enum CodingKeys: String, CodingKey {
            case attempt, round, examples, raw, instruction, output, status, reason, tokens
            case roundSize = "round_size", rougeL = "rouge_l", mostSimilar = "most_similar"
        }

        /// The SFT record of an accepted task.
        public var sftLine: String? {
            guard status == "accepted", let output else { return nil }
            return "{\"instruction\":\(JSONText.quote(instruction)),\"input\":\"\",\"output\":\(JSONText.quote(output))}"
        }
    }

    public struct Summary: Equatable {
        public var accepted: Int
        public var rejected: Int
        public var attempts: Int
        public var resumedAccepted: Int
        public var generatedTokens: Int
        public var seconds: Double
        /// Rejections by reason (near-duplicate, too short, …), this run and earlier ones.
        public var reasons: [String: Int]
    }

    public let options: Options
    public let seeds: [String]
    public var logURL: URL { URL(fileURLWithPath: options.out.path + ".attempts.jsonl") }
    public var settingsURL: URL { URL(fileURLWithPath: options.out.path + ".meta.json") }

    /// Reads the seed tasks and checks the output against an earlier run's settings, before any model is loaded.
    public init(_ options: Options) throws {
        guard options.n >= 1 else { throw ChatFileError("--n must be at least 1") }
        self.options = options
        seeds = try PromptFile.read(options.seedTasks).map { $0.conversation.pendingUserMessage ?? "" }
        guard !seeds.isEmpty else { throw ChatFileError("\(options.seedTasks.path): no seed tasks") }
        try SynthesisSettingsFile.prepare(recordedSettings(), at: settingsURL, informational: Self.informational,
                                          outputs: [options.out, logURL], overwrite: options.overwrite, command: "synthesize")
    }

    /// Recorded settings that may change between runs (they do not change what is generated). Not the batch size:
    /// a round draws its examples from the pool as it stood at the round's start.
    static let informational: Set<String> = ["seed_tasks", "n", "max_attempts"]

    func recordedSettings() throws -> [String: JSONValue] {
        options.generation.recorded.merging([
            "kind": .string("self-instruct"),
            "seed_tasks": .string(options.seedTasks.path),
            "seed_tasks_sha256": .string(try SynthesisSettingsFile.sha256(options.seedTasks)),
            "n": .int(options.n), "max_attempts": .int(options.attemptBudget),
            "examples": .int(options.examples), "similarity": .number(options.similarity),
            "min_words": .int(options.minWords), "max_words": .int(options.maxWords),
        ]) { a, _ in a }
    }

    // MARK: the prompt and the filters

    /// The user message asking for a new task.
    public static func taskRequest(_ examples: [String]) -> String {
        let list = examples.enumerated().map { "\($0 + 1). \($1)" }.joined(separator: "\n")
        return "Here are some tasks that people ask an AI assistant to do:\n\n\(list)\n\n"
            + "Write one new task of your own that is different from all of these. Reply with the task only."
    }

    /// The task in a reply: its first paragraph, or the first quoted span of 3 words or more in it (a chat model
    /// often wraps the task: `Here's one: "Explain how tides work."`), without a leading "Task 5:", "New task:", "5.".
    public static func parseTask(_ reply: String) -> String {
        var text = reply.trimmingCharacters(in: .whitespacesAndNewlines)
        if let blank = text.range(of: "\n\n") { text = String(text[..<blank.lowerBound]) }
        if let quoted = text.range(of: #"["“][^"“”]+["”]"#, options: .regularExpression),
           text[quoted].split(separator: " ").count >= 3 {
            text = String(text[quoted].dropFirst().dropLast())
        }
        let prefixes = [#"^\s*(\*\*)?(new\s+)?task(\s*\d+)?\s*[:.)-]\s*(\*\*)?\s*"#, #"^\s*\d+\s*[.):]\s+"#]
        for p in prefixes { text = text.replacingOccurrences(of: p, with: "", options: [.regularExpression, .caseInsensitive]) }
        text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        for q in ["\"", "“", "'"] where text.hasPrefix(q) && text.count > 2 {
            let close: Character = q == "“" ? "”" : Character(q)
            if text.last == close { text = String(text.dropFirst().dropLast()) }
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Words the paper's filter takes for tasks a text model cannot do (images, files, drawing…).
    static let blocked = ["image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps",
                          "draw", "plot", "go to", "video", "audio", "music", "flowchart", "diagram"]

    /// First words of a reply rather than an instruction.
    static let replyOpenings: Set<String> = ["i", "i'm", "i'd", "i'll", "i've", "sure", "certainly", "absolutely", "okay", "ok",
                                             "here", "here's", "great", "hello", "hi", "thanks", "thank", "sorry", "yes", "no"]

    /// Why a task is refused before the similarity check, or nil.
    public func shapeProblem(_ task: String) -> String? {
        let words = task.split(whereSeparator: { $0.isWhitespace }).count
        if task.isEmpty { return "empty" }
        if words < options.minWords { return "too short (\(words) words)" }
        if words > options.maxWords { return "too long (\(words) words)" }
        let lower = " " + RougeL.tokens(task).joined(separator: " ") + " "
        if let word = Self.blocked.first(where: { lower.contains(" \($0) ") }) { return "needs non-text input or output (\(word))" }
        // A chat model asked for a task often chats instead ("I'm ready to help!", "Here is a task for you:").
        let firstWord = task.split(whereSeparator: { $0.isWhitespace || $0 == "," || $0 == "!" }).first.map { $0.lowercased() } ?? ""
        if Self.replyOpenings.contains(firstWord.replacingOccurrences(of: "’", with: "'")) { return "a reply, not a task (\(firstWord))" }
        if task.hasSuffix(":") { return "a reply, not a task (ends with a colon)" }
        guard let first = task.unicodeScalars.first else { return "empty" }
        if CharacterSet.punctuationCharacters.union(.symbols).contains(first) { return "starts with punctuation" }
        if !first.isASCII { return "starts with a non-ASCII character" }
        return nil
    }

    /// The pool: every task so far with its ROUGE tokens, tokenised once.
    struct Pool {
        var texts: [String] = []
        var tokens: [[String]] = []
        var generated: [Int] = []   // indices of accepted (not seed) tasks
        mutating func add(_ t: String, generated g: Bool) {
            if g { generated.append(texts.count) }
            texts.append(t); tokens.append(RougeL.tokens(t))
        }
        /// The highest ROUGE-L F of `task` against the pool, and that task.
        func nearest(_ task: String) -> (score: Double, text: String?) {
            let t = RougeL.tokens(task)
            var best = (0.0, nil as String?)
            for (i, other) in tokens.enumerated() {
                let f = RougeL.score(predictionTokens: t, referenceTokens: other).fmeasure
                if f > best.0 { best = (f, Optional(texts[i])) }
            }
            return best
        }
    }

    /// k example tasks for attempt `attempt`: at most half generated (when there are any), the rest seeds, drawn
    /// without replacement from the attempt's own random stream.
    static func examples(_ k: Int, pool: Pool, seeds: Int, rng: inout SeededRNG) -> [String] {
        func draw(_ from: [Int], _ count: Int) -> [Int] {
            var left = from, out: [Int] = []
            while out.count < count, !left.isEmpty { out.append(left.remove(at: rng.int(below: left.count))) }
            return out
        }
        let fromGenerated = draw(pool.generated, min(k / 2, pool.generated.count))
        var chosen = fromGenerated + draw(Array(0..<seeds), k - fromGenerated.count)
        if chosen.count < k { chosen += draw(pool.generated.filter { !chosen.contains($0) }, k - chosen.count) }
        return chosen.map { pool.texts[$0] }
    }

    // MARK: running

    /// Runs rounds until `n` tasks are accepted or the attempt budget is spent, continuing an earlier run's log.
    public func run(engine: ChatEngine, observer: SynthesisObserver = SynthesisObserver()) throws -> Summary {
        try SynthesisSettingsFile.write(recordedSettings(), at: settingsURL)
        var pool = Pool()
        for s in seeds { pool.add(s, generated: false) }
        let log = try resume()
        var summary = Summary(accepted: 0, rejected: 0, attempts: log.count, resumedAccepted: 0, generatedTokens: 0, seconds: 0, reasons: [:])
        for a in log {
            if a.status == "accepted" { pool.add(a.instruction, generated: true); summary.accepted += 1 }
            if a.status == "rejected" { summary.rejected += 1; summary.reasons[Self.reasonKind(a.reason), default: 0] += 1 }
        }
        summary.resumedAccepted = summary.accepted
        if !log.isEmpty { observer.message("synthesize: \(summary.accepted) tasks accepted in \(log.count) attempts by an earlier run; continuing") }
        let logFile = try JSONLAppender(logURL), out = try JSONLAppender(options.out)
        let start = Date()
        var round = (log.map(\.round).max() ?? -1) + 1
        while summary.accepted < options.n, summary.attempts < options.attemptBudget {
            let size = min(options.generation.batchSize, options.attemptBudget - summary.attempts)
            let attempts = try self.round(round, first: summary.attempts, size: size, pool: &pool, wanted: options.n - summary.accepted, engine: engine)
            for a in attempts {
                try logFile.append(try SynthesisLog.json(a))
                if let line = a.sftLine { try out.append(line) }
                if a.status == "accepted" { summary.accepted += 1 }
                if a.status == "rejected" { summary.rejected += 1; summary.reasons[Self.reasonKind(a.reason), default: 0] += 1 }
                summary.generatedTokens += a.tokens
            }
            summary.attempts += size
            summary.seconds = Date().timeIntervalSince(start)
            round += 1
            observer.progress(SynthesisProgress(done: summary.accepted, total: options.n, accepted: summary.accepted, rejected: summary.rejected,
                                                attempts: summary.attempts, attemptBudget: options.attemptBudget,
                                                generatedTokens: summary.generatedTokens, seconds: summary.seconds,
                                                doneThisRun: summary.accepted - summary.resumedAccepted))
            if summary.accepted < options.n, summary.attempts < options.attemptBudget, observer.stopRequested() {
                throw SynthesisInterrupted(done: summary.accepted, total: options.n)
            }
        }
        return summary
    }

    /// "near-duplicate (ROUGE-L 0.82)" → "near-duplicate": the kind of a rejection, for the summary.
    static func reasonKind(_ reason: String?) -> String {
        guard let reason else { return "?" }
        return reason.range(of: " (").map { String(reason[..<$0.lowerBound]) } ?? reason
    }

    /// The finished attempts of an earlier run: a round cut short is dropped (it is generated again, identically),
    /// and FILE is rebuilt from the log.
    func resume() throws -> [Attempt] {
        var log = try SynthesisLog.read(logURL).enumerated().map { i, o in try SynthesisLog.decode(Attempt.self, o, file: logURL, item: i) }
        if let last = log.last, log.filter({ $0.round == last.round }).count < last.roundSize {
            log.removeAll { $0.round == last.round }
            try SynthesisLog.write(lines: try log.map { try SynthesisLog.json($0) }, to: logURL)
        }
        try SynthesisLog.write(lines: log.compactMap(\.sftLine), to: options.out)
        return log
    }

    /// One round: `size` task requests generated together, filtered in attempt order, then the kept tasks answered together.
    func round(_ round: Int, first: Int, size: Int, pool: inout Pool, wanted: Int, engine: ChatEngine) throws -> [Attempt] {
        var rngs = (first..<(first + size)).map { SynthesisLog.rng(seed: options.generation.seed, item: $0) }
        let shown = rngs.indices.map { Self.examples(options.examples, pool: pool, seeds: seeds.count, rng: &rngs[$0]) }
        let requests = shown.map { Conversation(turns: [Message(role: .user, content: Self.taskRequest($0))]) }
        let replies = try engine.replies(to: requests, settings: options.generation.settings, seeds: rngs.indices.map { rngs[$0].next() })
        var attempts: [Attempt] = []
        var keep = 0
        for (i, reply) in replies.enumerated() {
            let task = Self.parseTask(reply.text)
            var a = Attempt(attempt: first + i, round: round, roundSize: size, examples: shown[i], raw: reply.text, instruction: task,
                            output: nil, status: "rejected", reason: shapeProblem(task), rougeL: nil, mostSimilar: nil,
                            tokens: reply.stats.generatedTokens)
            if a.reason == nil {
                let near = pool.nearest(task)
                a.rougeL = (near.score * 1000).rounded() / 1000
                a.mostSimilar = near.text
                if near.score >= options.similarity { a.reason = String(format: "near-duplicate (ROUGE-L %.2f)", near.score) }
            }
            if a.reason == nil {
                if keep < wanted { a.status = "accepted"; keep += 1; pool.add(task, generated: true) } else { a.status = "unused"; a.reason = "target reached" }
            }
            attempts.append(a)
        }
        // The kept tasks' answers, each from its attempt's own stream.
        let kept = attempts.indices.filter { attempts[$0].status == "accepted" }
        let answers = try engine.replies(to: kept.map { Conversation(turns: [Message(role: .user, content: attempts[$0].instruction)]) },
                                         settings: options.generation.settings, seeds: kept.map { rngs[$0].next() })
        for (i, answer) in zip(kept, answers) {
            let text = answer.text.trimmingCharacters(in: .whitespacesAndNewlines)
            attempts[i].tokens += answer.stats.generatedTokens
            if text.isEmpty {
                attempts[i].status = "rejected"; attempts[i].reason = "empty answer"
            } else {
                attempts[i].output = text
            }
        }
        // A task refused for an empty answer leaves the pool again.
        for i in kept where attempts[i].status == "rejected" {
            if let at = pool.texts.lastIndex(of: attempts[i].instruction) {
                pool.texts.remove(at: at); pool.tokens.remove(at: at); pool.generated.removeAll { $0 == at }
                pool.generated = pool.generated.map { $0 > at ? $0 - 1 : $0 }
            }
        }
        return attempts
    }
}
