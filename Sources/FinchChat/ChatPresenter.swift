/// Where a chat session shows things: a terminal, a pipe, or a test recorder.
public protocol ChatPresenter: AnyObject {
    /// Output of a command (one or more lines, without the final newline).
    func say(_ text: String)
    /// Something the user should notice that is not an answer (old turns dropped, file written).
    func notice(_ text: String)
    /// A problem with what the user asked; the session goes on.
    func error(_ text: String)
    /// A reply starts streaming.
    func beginReply()
    /// A piece of reply text, to be shown at once.
    func replyPiece(_ text: String)
    /// The reply ended; `verbose` asks for the speed to be shown.
    func endReply(_ stats: ReplyStats, verbose: Bool)
}

extension ReplyStats {
    /// `12 tokens, 34.5 tokens/s, first token 120 ms, 0.45 s`
    public var summary: String {
        var parts = ["\(generatedTokens) tokens", String(format: "%.1f tokens/s", tokensPerSecond)]
        if let first = firstTokenSeconds { parts.append(String(format: "first token %.0f ms", first * 1000)) }
        parts.append(String(format: "%.2f s", seconds))
        if promptTokens > 0 { parts.append("\(promptTokens) prompt tokens processed") }
        parts.append("stopped: \(stopReason)")
        return parts.joined(separator: ", ")
    }
}
