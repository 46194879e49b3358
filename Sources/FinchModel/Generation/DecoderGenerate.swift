extension Decoder {
    /// One prompt through `BatchGenerator` (a batch of one): prefills `prompt` after whatever `cache` already
    /// holds (e.g. a prefix or earlier turns; a fresh cache when nil), then decodes with `options.sampling`
    /// (its seed used as it is). `onToken` is called with each new token as soon as it is chosen; return false to stop.
    public func generate(prompt: [Int], options: GenerationOptions, cache: KVCache? = nil,
                         onToken: (Int) -> Bool = { _ in true }) -> GenerationResult {
        let generator = BatchGenerator(decoder: self)
        if let cache { return generator.generate(prompt, after: cache, options: options, onToken: onToken) }
        return generator.generate([prompt], options: options, seeds: [options.sampling.seed],
                                  onToken: { _, token in onToken(token) })[0]
    }
}
