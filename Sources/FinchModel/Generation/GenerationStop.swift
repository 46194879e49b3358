/// Why a row's generation ended.
public enum GenerationStop: Sendable, Equatable {
    /// `GenerationOptions.maxNewTokens` tokens were produced.
    case maxNewTokens
    /// This stop token was produced (it is the last of the tokens).
    case stopToken(Int)
    /// The per-token callback returned false.
    case callback
    /// The `stopWhen` predicate held for the row's tokens.
    case stopWhen
    /// The model's positions (or the given cache) are full: no further token can be fed. A prompt that does
    /// not fit at all gets this with no tokens.
    case contextFull
}
