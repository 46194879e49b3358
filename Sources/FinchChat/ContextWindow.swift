/// Keeps a conversation inside the model's context window by dropping the oldest exchanges.
public enum ContextWindow {
    /// Tokens kept free for the reply: `max_tokens`, but at most a quarter of the window so that
    /// a large `max_tokens` does not wipe the whole history.
    public static func replyReserve(settings: SamplingSettings, contextLength: Int) -> Int {
        min(settings.maxTokens, max(1, contextLength / 4))
    }

    /// Drops the oldest user/assistant exchanges (never the system prompt, never the final user message)
    /// until the rendered conversation plus the reply reserve fits. Returns how many messages were dropped.
    /// Throws when even the system prompt and the final user message alone do not fit.
    public static func fit(_ conversation: inout Conversation, engine: ChatEngine,
                           settings: SamplingSettings) throws -> Int {
        let limit = engine.contextLength - replyReserve(settings: settings, contextLength: engine.contextLength)
        var trial = conversation   // left untouched when even the newest message cannot fit
        var dropped = 0
        var count = try engine.tokenCount(of: trial)
        while count > limit, trial.exchangeCount > 1 {
            dropped += trial.dropOldestExchange()
            count = try engine.tokenCount(of: trial)
        }
        if count > limit {
            throw ContextError(tokens: count, limit: limit, contextLength: engine.contextLength)
        }
        conversation = trial
        return dropped
    }
}

/// The system prompt and the newest message alone are longer than the context allows.
public struct ContextError: Error, CustomStringConvertible {
    public let tokens: Int, limit: Int, contextLength: Int
    public var description: String {
        "the message is too long: \(tokens) tokens with the system prompt, but only \(limit) of the "
            + "\(contextLength)-token context are free once room for the reply is kept (lower max_tokens or shorten it)"
    }
}
