import FinchKernels

/// Settings of `Decoder.generate`.
public struct GenerationOptions: Sendable {
    public var maxNewTokens: Int
    public var sampling: SamplingOptions
    /// Generation stops after producing any of these (the stop token is included in the output).
    public var stopTokenIds: Set<Int>

    public init(maxNewTokens: Int = 128, sampling: SamplingOptions = SamplingOptions(), stopTokenIds: Set<Int> = []) {
        self.maxNewTokens = maxNewTokens; self.sampling = sampling; self.stopTokenIds = stopTokenIds
    }
}

/// Why generation ended.
public enum GenerationStop: Sendable, Equatable {
    case maxNewTokens, stopToken(Int), callback, contextFull
}

/// The outcome of `Decoder.generate`.
public struct GenerationResult: Sendable {
    /// The new tokens (not the prompt).
    public var tokens: [Int]
    public var stop: GenerationStop
}

extension Decoder {
    /// Batch-1 generation with the KV cache: prefills `prompt` (after whatever `cache` already holds,
    /// e.g. a prefix or earlier turns; a fresh cache of `config.maxPositions` when nil), then decodes.
    /// `onToken` is called with each new token as soon as it is chosen; return false to stop.
    public func generate(prompt: [Int], options: GenerationOptions, cache: KVCache? = nil,
                         onToken: (Int) -> Bool = { _ in true }) -> GenerationResult {
        precondition(!prompt.isEmpty, "Decoder.generate: empty prompt")
        let cache = cache ?? KVCache(config: config, batch: 1, maxLength: config.maxPositions)
        precondition(cache.batch == 1, "Decoder.generate: batch-1 cache expected, got batch \(cache.batch)")
        var sampler = Sampler(options.sampling)
        var history = prompt, out: [Int] = []
        guard cache.remaining >= prompt.count else { return GenerationResult(tokens: [], stop: .contextFull) }
        var logits = prefill(prompt, cache: cache)
        while true {
            let token = sampler.next(logits: logits.ptr, vocab: config.vocabSize, history: history)
            out.append(token); history.append(token)
            if !onToken(token) { return GenerationResult(tokens: out, stop: .callback) }
            if options.stopTokenIds.contains(token) { return GenerationResult(tokens: out, stop: .stopToken(token)) }
            if out.count >= options.maxNewTokens { return GenerationResult(tokens: out, stop: .maxNewTokens) }
            if cache.remaining < 1 { return GenerationResult(tokens: out, stop: .contextFull) }
            logits = step([token], cache: cache)
        }
    }
}
