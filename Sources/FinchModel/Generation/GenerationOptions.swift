/// Settings of a generation (`BatchGenerator`, `Decoder.generate`).
public struct GenerationOptions: Sendable {
    /// New tokens per row at most (a final stop token counts); 0 generates nothing.
    public var maxNewTokens: Int
    /// How tokens are chosen; `sampling.seed` is the base of the per-row seeds (see `BatchGenerator.rowSeed`).
    public var sampling: SamplingOptions
    /// A row stops after producing any of these (the stop token is included in its tokens).
    public var stopTokenIds: Set<Int>

    public init(maxNewTokens: Int = 128, sampling: SamplingOptions = SamplingOptions(), stopTokenIds: Set<Int> = []) {
        self.maxNewTokens = maxNewTokens; self.sampling = sampling; self.stopTokenIds = stopTokenIds
    }
}
