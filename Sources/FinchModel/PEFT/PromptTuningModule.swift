import Foundation
import FinchKernels

/// Prompt tuning (PEFT's `PromptEmbedding`): `n` trainable virtual token embeddings [n, hidden] placed before
/// the tokens of every row. Virtual token j sits at position j, real token i at `n + i`; the attention mask
/// gets n ones and the labels n × -100 in front (so the last virtual position predicts real token 0);
/// `forwardHidden` and `logits` return the real positions only.
///
///     let prompt = PromptTuningModule(virtualTokens: 20, decoder: decoder, seed: 1)              // random
///     let prompt = PromptTuningModule(virtualTokens: 20, decoder: decoder, initTokenIds: ids)   // from text
public final class PromptTuningModule: PEFTModule {
    public private(set) var config: PromptLearningConfig
    /// `prompt_embeddings` [n, hidden].
    public let embeddings: Tensor
    public let gradient: Tensor
    public var enabled = true
    public var peftType: String { "PROMPT_TUNING" }
    public var parameters: [String: Tensor] { ["prompt_embeddings": embeddings] }
    public var gradients: [String: Tensor] { ["prompt_embeddings": gradient] }
    public var virtualTokens: Int { embeddings.shape[0] }
    /// Real-token length and batch of the last forward.
    private var batch = 0, length = 0, prepended = 0
    /// Whether the decoder's logits buffer holds the LM head of the last forward (set by `causalLMLoss`).
    private var headFresh = false

    /// An adapter over an existing table (e.g. read from a PEFT folder).
    public init(config: PromptLearningConfig, embeddings: Tensor, decoder: Decoder) throws {
        guard embeddings.shape.count == 2, embeddings.shape[1] == decoder.config.hiddenSize else {
            throw ModelFileError("prompt tuning: prompt_embeddings has shape \(embeddings.shape), the model needs [n, \(decoder.config.hiddenSize)]")
        }
        self.config = config
        self.embeddings = embeddings
        self.gradient = Tensor(shape: embeddings.shape)
    }

    /// Random initialisation as PEFT's (`torch.nn.Embedding`: normal(0, 1)).
    public convenience init(virtualTokens n: Int, decoder: Decoder, seed: UInt64) {
        let c = decoder.config
        let e = Tensor(shape: [n, c.hiddenSize])
        var rng = SeededRNG(seed: seed)
        for i in 0..<e.count { e[i] = rng.weightNormal() }
        try! self.init(config: Self.makeConfig(n, c, initText: nil), embeddings: e, decoder: decoder)
    }

    /// Initialisation from text (PEFT's `prompt_tuning_init = TEXT`): the embeddings of `initTokenIds`
    /// (the tokenized init text), repeated or truncated to `n` tokens.
    public convenience init(virtualTokens n: Int, decoder: Decoder, initTokenIds ids: [Int], initText: String? = nil,
                            tokenizer: String? = nil) throws {
        guard !ids.isEmpty else { throw ModelFileError("prompt tuning: the init text has no tokens") }
        let c = decoder.config
        guard let table = decoder.parameters[c.embeddingName] else { throw ModelFileError("prompt tuning: no embedding table") }
        let e = Tensor(shape: [n, c.hiddenSize])
        for j in 0..<n {
            let id = ids[j % ids.count]
            guard id >= 0 && id < c.vocabSize else { throw ModelFileError("prompt tuning: init token id \(id) outside 0..<\(c.vocabSize)") }
            (e.ptr + j * c.hiddenSize).update(from: table.ptr + id * c.hiddenSize, count: c.hiddenSize)
            // PEFT calls the model's embedding module: Gemma's scales by √hidden.
            if let sc = c.embeddingScale { for i in 0..<c.hiddenSize { e[j * c.hiddenSize + i] *= sc } }
        }
        var config = Self.makeConfig(n, c, initText: initText)
        config.tokenizerNameOrPath = tokenizer
        try self.init(config: config, embeddings: e, decoder: decoder)
    }

    /// Reads a PEFT prompt-tuning folder.
    public convenience init(folder: URL, decoder: Decoder) throws {
        guard case .promptTuning(let config, let e) = try PEFTAdapterFolder.load(folder) else {
            throw ModelFileError("\(folder.path): not a prompt-tuning adapter")
        }
        try self.init(config: config, embeddings: e, decoder: decoder)
    }

    static func makeConfig(_ n: Int, _ c: DecoderConfig, initText: String?) -> PromptLearningConfig {
        PromptLearningConfig(kind: .promptTuning, numVirtualTokens: n, tokenDim: c.hiddenSize, numLayers: c.numLayers,
                             numAttentionHeads: c.numHeads, promptTuningInit: initText == nil ? "RANDOM" : "TEXT",
                             promptTuningInitText: initText)
    }

    public func zeroGradients() { gradient.zero() }

    /// Freezes every base weight (`decoder.trainable = []`); the table is used by `forwardHidden`.
    public func attach(to decoder: Decoder) {
        decoder.trainable = []
        decoder.hooks = reachHooks
    }

    /// Makes the backward run through every layer down to the embeddings even when the whole base is
    /// frozen (the decoder's backward would otherwise stop above layer 0 and never reach the prompt).
    private final class ReachEveryLayer: DecoderHooks { var lowestTrainableLayer: Int? { 0 } }
    private let reachHooks = ReachEveryLayer()

    public func forwardHidden(_ decoder: Decoder, ids: [Int], batch: Int, length: Int,
                              attentionMask: [Int]?, positionIds: [Int]?, documentIds: [Int]?) -> Tensor {
        let n = enabled ? virtualTokens : 0
        self.batch = batch; self.length = length; prepended = n; headFresh = false
        if n > 0 && decoder.hooks == nil { decoder.hooks = reachHooks }
        var positions: [Int]? = nil
        if let p = positionIds, n > 0 {   // real positions shift by n, virtual ones are 0..<n
            positions = []
            for b in 0..<batch { positions! += Array(0..<n) + p[(b * length)..<((b + 1) * length)].map { $0 + n } }
        } else {
            positions = positionIds
        }
        let hidden = decoder.forwardHidden(ids: ids, batch: batch, length: length, attentionMask: attentionMask,
                                           positionIds: positions, prependEmbeddings: n > 0 ? embeddings : nil,
                                           documentIds: documentIds)
        return n > 0 ? realRows(hidden, width: decoder.config.hiddenSize) : hidden
    }

    /// [B, n+T, W] → [B, T, W] (the real positions).
    private func realRows(_ t: Tensor, width: Int) -> Tensor {
        let n = prepended, T = length
        let out = Tensor(shape: [batch, T, width])
        for b in 0..<batch { (out.ptr + b * T * width).update(from: t.ptr + (b * (n + T) + n) * width, count: T * width) }
        return out
    }

    public func logits(_ decoder: Decoder) -> Tensor {
        let full = headFresh ? (decoder.buffers?.logits ?? decoder.lmHead()) : decoder.lmHead()
        headFresh = true
        return prepended > 0 ? realRows(full, width: decoder.config.vocabSize) : full
    }

    public func causalLMLoss(_ decoder: Decoder, labels: [Int], gradientScale: Float?, computeGradients: Bool) -> CausalLMLoss {
        let n = prepended
        var all = labels
        if n > 0 {   // the virtual positions are never trained
            all = []; all.reserveCapacity(batch * (n + length))
            for b in 0..<batch { all += [Int](repeating: -100, count: n) + labels[(b * length)..<((b + 1) * length)] }
        }
        return decoder.trainedTokenLoss(labels: all, gradientScale: gradientScale, computeGradients: computeGradients)
    }

    public func backward(_ decoder: Decoder) {
        decoder.backward()
        collect(decoder)
    }

    public func backwardHidden(_ decoder: Decoder, _ dHidden: Tensor) {
        let n = prepended, T = length, C = decoder.config.hiddenSize
        guard n > 0 else { decoder.backwardHidden(dHidden); return }
        let full = Tensor(shape: [batch, n + T, C])
        for b in 0..<batch { (full.ptr + (b * (n + T) + n) * C).update(from: dHidden.ptr + b * T * C, count: T * C) }
        decoder.backwardHidden(full)
        collect(decoder)
    }

    /// Moves the decoder's prompt-embedding gradient into `gradient` (accumulating).
    private func collect(_ decoder: Decoder) {
        guard prepended > 0, let g = decoder.promptEmbeddingGradient, g.count == gradient.count else { return }
        VectorMath.add(g.ptr, into: gradient.ptr, g.count)
        g.zero()
    }

    /// Runs the virtual tokens through the decoder (one dummy real token, which they cannot see) and puts
    /// their keys/values at positions 0..<n of `cache`. Uses the decoder's training buffers.
    public func primeCache(_ decoder: Decoder, cache: KVCache) {
        guard enabled else { return }
        let n = virtualTokens, c = decoder.config, B = cache.batch, M = cache.maxLength, kv = c.kvDim
        precondition(cache.length == 0 && n < M, "PromptTuningModule.primeCache: needs an empty cache with room for \(n) virtual tokens")
        decoder.forwardHidden(ids: [0], batch: 1, length: 1, prependEmbeddings: embeddings)
        headFresh = false
        guard let bf = decoder.buffers else { return }
        let W = c.qkvWidth
        for l in 0..<c.numLayers {
            let qkv = bf.qkv[l].ptr
            for b in 0..<B {
                for j in 0..<n {
                    (cache.keys[l].ptr + (b * M + j) * kv).update(from: qkv + j * W + c.qDim, count: kv)
                    (cache.values[l].ptr + (b * M + j) * kv).update(from: qkv + j * W + c.qDim + kv, count: kv)
                }
            }
        }
        for b in 0..<B { (cache.keyMask.ptr + b * M).update(repeating: 1, count: n) }
        cache.length = n
    }

    public func save(to folder: URL, baseModel: String) throws {
        var c = config
        c.baseModelNameOrPath = baseModel
        try PEFTAdapterFolder.save(.promptTuning(c, promptEmbeddings: embeddings), to: folder)
    }
}
