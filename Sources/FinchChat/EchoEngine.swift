import Foundation

/// A deterministic stand-in used ONLY to test the REPL mechanics (streaming, Ctrl-C, commands, context
/// trimming). It is not a model: it answers `echo: <last user message>`, one word per token, optionally
/// sleeping between tokens so an interrupt can arrive mid-reply. Reached from the CLI only through the
/// hidden test hook `finch chat --engine echo`.
public final class EchoEngine: ChatEngine {
    public let contextLength: Int
    public private(set) var usedTokens = 0
    public var defaultSettings: SamplingSettings { SamplingSettings() }
    public var name: String { "echo (test engine)" }
    /// Pause after each streamed token.
    public var tokenDelay: TimeInterval
    /// How many replies have been generated for each conversation text, so `/retry` answers differently.
    private var attempts: [String: Int] = [:]
    private var cached: Conversation?

    public init(contextLength: Int = 4096, tokenDelay: TimeInterval = 0) {
        self.contextLength = contextLength
        self.tokenDelay = tokenDelay
    }

    public func reset(system: String?) {
        usedTokens = 0
        cached = nil
    }

    /// One token per whitespace-separated word, plus 4 per message for the role markers, plus 2 for the
    /// generation prompt.
    public func tokenCount(of conversation: Conversation) throws -> Int {
        conversation.messages.reduce(2) { $0 + 4 + Self.words($1.content).count }
    }

    public func reply(to conversation: Conversation, settings: SamplingSettings,
                      onToken: (String) -> Bool) throws -> ReplyStats {
        let start = Date()
        let question = conversation.pendingUserMessage ?? ""
        let key = conversation.messages.map { "\($0.role.rawValue):\($0.content)" }.joined(separator: "\u{1}")
        let attempt = attempts[key, default: 0]
        attempts[key] = attempt + 1
        let answer = attempt == 0 ? "echo: \(question)" : "echo (\(attempt + 1)): \(question)"

        let promptTokens = try tokenCount(of: conversation)
        let reused = try cached.map { try tokenCount(of: $0) } ?? 0
        usedTokens = promptTokens
        var pieces = Self.words(answer)
        for i in pieces.indices.dropLast() { pieces[i] += " " }
        var generated = 0, text = ""
        var firstToken: Double?
        var reason = StopReason.endOfTurn
        var filter = StopStringFilter(stops: settings.stop)
        for piece in pieces {
            if generated >= settings.maxTokens { reason = .maxTokens; break }
            if usedTokens >= contextLength { reason = .contextFull; break }
            generated += 1
            usedTokens += 1
            if firstToken == nil { firstToken = Date().timeIntervalSince(start) }
            let (shown, stop) = filter.feed(piece)
            text += shown
            if !shown.isEmpty, !onToken(shown) { reason = .interrupted; break }
            if let stop { reason = .stopString(stop); break }
            if tokenDelay > 0 { Thread.sleep(forTimeInterval: tokenDelay) }
        }
        switch reason {
        case .interrupted, .stopString: break
        default:
            let rest = filter.flush()   // text held back in case it began a stop string
            if !rest.isEmpty { text += rest; _ = onToken(rest) }
        }
        var done = conversation
        done.turns.append(Message(role: .assistant, content: text))
        cached = done
        return ReplyStats(promptTokens: max(0, promptTokens - min(reused, promptTokens)), generatedTokens: generated,
                          seconds: Date().timeIntervalSince(start), firstTokenSeconds: firstToken, stopReason: reason)
    }

    private static func words(_ text: String) -> [String] {
        text.split(whereSeparator: { $0.isWhitespace }).map(String.init)
    }
}
