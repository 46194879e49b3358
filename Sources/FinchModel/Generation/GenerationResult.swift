/// One row's outcome of a generation.
public struct GenerationResult: Sendable, Equatable {
    /// The new tokens (not the prompt), a final stop token included.
    public var tokens: [Int]
    public var stop: GenerationStop

    public init(tokens: [Int], stop: GenerationStop) { self.tokens = tokens; self.stop = stop }

    /// `tokens` without the stop token that ended them (the reply as text sees it).
    public var tokensBeforeStop: [Int] {
        if case .stopToken = stop { return Array(tokens.dropLast()) }
        return tokens
    }
}
