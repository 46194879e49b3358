import Foundation

/// The chat REPL's state and commands, independent of any terminal: lines go in through `handle(line:)`,
/// everything shown goes out through a `ChatPresenter`.
public final class ChatSession {
    public let engine: ChatEngine
    public private(set) var conversation: Conversation
    public var settings: SamplingSettings
    /// Print the speed after every reply.
    public var verbose: Bool
    /// Where `/prefer` writes when it is not given a file (`--prefs FILE`).
    public var preferencesFile: URL?
    /// Where `/good` and `/bad` append KTO records (set by the first `/good FILE` or `/bad FILE`).
    public var feedbackFile: URL?
    public private(set) var lastStats: ReplyStats?
    /// Polled between streamed tokens; returning true stops the reply (Ctrl-C).
    public var interruptRequested: () -> Bool = { false }

    private let presenter: ChatPresenter
    /// Earlier answers to the current last prompt, oldest first (filled by `/retry`).
    public private(set) var alternatives: [String] = []
    /// 0 for the first answer to the current last prompt, n after n retries (varies the seed).
    private var attempt = 0

    public init(engine: ChatEngine, system: String? = nil, settings: SamplingSettings,
                presenter: ChatPresenter, verbose: Bool = false, preferencesFile: URL? = nil) {
        self.engine = engine
        self.conversation = Conversation(system: system)
        self.settings = settings
        self.presenter = presenter
        self.verbose = verbose
        self.preferencesFile = preferencesFile
        engine.reset(system: system)
    }

    /// Handles one typed line. Returns false when the user asked to quit.
    @discardableResult
    public func handle(line: String) -> Bool {
        let command: ReplCommand
        do { command = try ReplCommand.parse(line) } catch {
            presenter.error("\(error)")
            return true
        }
        switch command {
        case .message(let text):
            if text.trimmingCharacters(in: .whitespaces).isEmpty { return true }
            send(text)
        case .help:
            let width = ReplCommand.helpLines.map { $0.0.count }.max() ?? 0
            presenter.say(ReplCommand.helpLines.map { $0.0.padding(toLength: width + 2, withPad: " ", startingAt: 0) + $0.1 }
                .joined(separator: "\n") + "\nCtrl-C stops a reply; Ctrl-D on an empty line quits.")
        case .system(nil):
            presenter.say(conversation.system.map { "system: \($0)" } ?? "no system prompt")
        case .system(let text?):
            conversation.system = text
            forgetAlternatives()
            presenter.notice("system prompt set")
        case .reset:
            conversation.turns.removeAll()
            forgetAlternatives()
            engine.reset(system: conversation.system)
            presenter.notice("new conversation")
        case .undo:
            forgetAlternatives()
            if conversation.undo() == 0 { presenter.error("nothing to undo") } else {
                presenter.notice("removed the last exchange")
            }
        case .retry:
            retry()
        case .set(let text):
            do {
                let changed = try settings.apply(assignments: text)
                presenter.notice(changed.map { "\($0)=\(settings.value(of: $0))" }.joined(separator: " "))
            } catch { presenter.error("\(error)") }
        case .show:
            presenter.say(showText())
        case .save(let path):
            save(to: path)
        case .prefer(let choice, let path):
            prefer(choice: choice, path: path)
        case .feedback(let good, let path):
            feedback(good: good, path: path)
        case .quit:
            return false
        }
        return true
    }

    /// Sends a user message and streams the reply. Returns false when no reply could be made
    /// (the error was shown and the message removed again).
    @discardableResult
    public func send(_ text: String) -> Bool {
        forgetAlternatives()
        conversation.turns.append(Message(role: .user, content: text))
        return generateReply(attempt: 0)
    }

    /// `/show`: settings, context use, last reply speed.
    public func showText() -> String {
        var lines = ["model: \(engine.name)"]
        let used = (try? engine.tokenCount(of: conversation)) ?? engine.usedTokens
        let percent = engine.contextLength > 0 ? 100 * Double(used) / Double(engine.contextLength) : 0
        lines.append(String(format: "context: %d / %d tokens (%.0f%%), %d exchanges, %d cached",
                            used, engine.contextLength, percent, conversation.exchangeCount, engine.usedTokens))
        lines.append("system: " + (conversation.system ?? "(none)"))
        lines.append("settings: " + settings.summary.joined(separator: " "))
        lines.append("last reply: " + (lastStats?.summary ?? "(none yet)"))
        return lines.joined(separator: "\n")
    }

    // MARK: - Replies

    @discardableResult
    private func generateReply(attempt: Int) -> Bool {
        self.attempt = attempt
        do {
            let dropped = try ContextWindow.fit(&conversation, engine: engine, settings: settings)
            if dropped > 0 {
                presenter.notice("context full: dropped the \(dropped) oldest messages (the system prompt is kept)")
            }
        } catch {
            conversation.turns.removeLast()
            presenter.error("\(error)")
            return false
        }
        var text = ""
        presenter.beginReply()
        do {
            let stats = try engine.reply(to: conversation, settings: settings.forAttempt(attempt)) { piece in
                text += piece
                presenter.replyPiece(piece)
                return !interruptRequested()
            }
            lastStats = stats
            conversation.turns.append(Message(role: .assistant, content: text,
                                              interrupted: stats.stopReason == .interrupted))
            presenter.endReply(stats, verbose: verbose)
            return true
        } catch {
            conversation.turns.removeLast()
            presenter.error("generation failed: \(error)")
            return false
        }
    }

    private func retry() {
        guard let last = conversation.turns.last, last.role == .assistant else {
            presenter.error("nothing to retry: /retry regenerates the last reply")
            return
        }
        let earlier = alternatives + [last.content]
        let before = conversation
        let nextAttempt = attempt + 1
        conversation.turns.removeLast()
        if generateReply(attempt: nextAttempt) {
            alternatives = earlier
            presenter.notice("/prefer 1 keeps the previous answer, /prefer 2 this one")
        } else {
            conversation = before   // the error was shown; keep the answer we had
        }
    }

    private func forgetAlternatives() {
        alternatives.removeAll()
        attempt = 0
    }

    // MARK: - Records

    private func save(to path: String) {
        guard !conversation.turns.isEmpty else { presenter.error("nothing to save yet"); return }
        let url = Self.fileURL(path)
        do {
            try ChatRecords.append(line: ChatRecords.sft(conversation), to: url)
            let cut = conversation.turns.contains { $0.interrupted } ? " (includes an interrupted reply)" : ""
            presenter.notice("saved \(conversation.messages.count) messages to \(url.path)\(cut)")
        } catch { presenter.error("\(error)") }
    }

    private func prefer(choice: Int?, path: String?) {
        if let path { preferencesFile = Self.fileURL(path) }
        guard let choice else {
            presenter.notice("preferences go to \(preferencesFile!.path)")
            return
        }
        guard let previous = alternatives.last, let current = conversation.turns.last, current.role == .assistant else {
            presenter.error("nothing to compare: use /retry first, then /prefer 1 (previous answer) or /prefer 2 (new answer)")
            return
        }
        guard let url = preferencesFile else {
            presenter.error("no preference file: start with --prefs FILE or type /prefer \(choice) FILE")
            return
        }
        let prompt = Array(conversation.messages.dropLast())
        let (chosen, rejected) = choice == 1 ? (previous, current.content) : (current.content, previous)
        do {
            try ChatRecords.append(line: ChatRecords.preference(prompt: prompt, chosen: chosen, rejected: rejected), to: url)
        } catch { presenter.error("\(error)"); return }
        if choice == 1 {
            // Continue the conversation with the answer the user preferred.
            conversation.turns[conversation.turns.count - 1] = Message(role: .assistant, content: previous)
        }
        forgetAlternatives()
        presenter.notice("preference recorded in \(url.path) (kept answer \(choice))")
    }

    /// `/good` and `/bad`: the last answer with the messages before it, labelled, for `finch kto`. The file is
    /// remembered for the next `/good` or `/bad`.
    private func feedback(good: Bool, path: String?) {
        if let path { feedbackFile = Self.fileURL(path) }
        guard let url = feedbackFile else {
            presenter.error("no feedback file: type /\(good ? "good" : "bad") FILE (example: /\(good ? "good" : "bad") feedback.jsonl)")
            return
        }
        guard let current = conversation.turns.last, current.role == .assistant else {
            presenter.error("nothing to label: /good and /bad label the last answer")
            return
        }
        let prompt = Array(conversation.messages.dropLast())
        do {
            try ChatRecords.append(line: ChatRecords.feedback(prompt: prompt, completion: current.content, desirable: good), to: url)
        } catch { presenter.error("\(error)"); return }
        presenter.notice("\(good ? "thumbs-up" : "thumbs-down") recorded in \(url.path) (train with finch kto --data \(url.path))")
    }

    static func fileURL(_ path: String) -> URL {
        URL(fileURLWithPath: (path as NSString).expandingTildeInPath)
    }
}
