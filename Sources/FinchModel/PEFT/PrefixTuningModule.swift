import Foundation
import FinchKernels

/// Prefix tuning (PEFT's `PrefixEncoder`): per-layer key/value prefixes for `n` virtual tokens, from a table
/// `prompt_embeddings [n, layers·2·kvDim]` whose entry `[j, ((2l+s)·kv_heads + h)·head_dim + d]` is virtual
/// token j, layer l, key (s=0) or value (s=1), kv head h. Prefixes get no RoPE; real tokens sit at positions
/// `n + i` and see the whole prefix. Logits and labels cover the real tokens only.
///
/// With `prefixProjection` the table is the output of PEFT's reparametrisation MLP
/// `embedding [n, tokenDim] → Linear(tokenDim → encoderHidden) → tanh → Linear(→ layers·2·kvDim)`, whose
/// tensors (`embedding.weight`, `transform.0.weight/bias`, `transform.2.weight/bias`) are the trainable
/// parameters; the saved `prompt_embeddings` is the MLP's output, as PEFT saves it.
public final class PrefixTuningModule: PEFTModule {
    public private(set) var config: PromptLearningConfig
    /// The table the decoder uses [n, layers·2·kvDim] (the MLP's output with a projection).
    public let table: Tensor
    public let tableGradient: Tensor
    /// The reparametrisation MLP (nil without `prefixProjection`).
    public let projection: PrefixProjection?
    public var enabled = true
    public var peftType: String { "PREFIX_TUNING" }
    public let prefix: PrefixKeyValues
    public var virtualTokens: Int { table.shape[0] }

    public var parameters: [String: Tensor] { projection?.parameters ?? ["prompt_embeddings": table] }
    public var gradients: [String: Tensor] { projection?.gradients ?? ["prompt_embeddings": tableGradient] }

    /// An adapter over an existing table (projection-free, e.g. read from a PEFT folder).
    public init(config: PromptLearningConfig, table: Tensor, projection: PrefixProjection? = nil, decoder: Decoder) throws {
        let c = decoder.config, width = c.numLayers * 2 * c.kvDim
        guard table.shape.count == 2, table.shape[1] == width else {
            throw ModelFileError("prefix tuning: prompt_embeddings has shape \(table.shape), this model needs [n, \(width)] (layers·2·kv_heads·head_dim)")
        }
        self.config = config; self.table = table; self.projection = projection
        tableGradient = Tensor(shape: table.shape)
        let n = table.shape[0]
        prefix = PrefixKeyValues(keys: (0..<c.numLayers).map { _ in Tensor(shape: [n, c.kvDim]) },
                                 values: (0..<c.numLayers).map { _ in Tensor(shape: [n, c.kvDim]) })
        refresh()
    }

    /// A new adapter as PEFT initialises it: the table (or the MLP's embedding) normal(0, 1) like
    /// `torch.nn.Embedding`, the MLP's Linear layers as torch's default (uniform ±1/√fan_in).
    /// `encoderHiddenSize` defaults to the token dim (kv_heads·head_dim), as PEFT for GQA models.
    public convenience init(virtualTokens n: Int, decoder: Decoder, prefixProjection: Bool = false,
                            encoderHiddenSize: Int? = nil, seed: UInt64) {
        let c = decoder.config, width = c.numLayers * 2 * c.kvDim
        var rng = SeededRNG(seed: seed)
        let hidden = encoderHiddenSize ?? c.kvDim
        let config = PromptLearningConfig(kind: .prefixTuning, numVirtualTokens: n, tokenDim: c.kvDim, numLayers: c.numLayers,
                                          numAttentionHeads: c.numKVHeads, encoderHiddenSize: hidden,
                                          prefixProjection: prefixProjection)
        let table = Tensor(shape: [n, width])
        var projection: PrefixProjection? = nil
        if prefixProjection {
            projection = PrefixProjection(virtualTokens: n, tokenDim: c.kvDim, hidden: hidden, out: width, rng: &rng)
        } else {
            for i in 0..<table.count { table[i] = rng.weightNormal() }
        }
        try! self.init(config: config, table: table, projection: projection, decoder: decoder)
    }

    /// Reads a PEFT prefix-tuning folder (the saved table; a projection MLP is not stored by PEFT).
    public convenience init(folder: URL, decoder: Decoder) throws {
        guard case .prefixTuning(var config, let t) = try PEFTAdapterFolder.load(folder) else {
            throw ModelFileError("\(folder.path): not a prefix-tuning adapter")
        }
        let c = decoder.config
        guard config.numLayers == c.numLayers, config.tokenDim == c.kvDim else {
            throw ModelFileError("\(folder.path): prefix for \(config.numLayers) layers × token_dim \(config.tokenDim), the model has \(c.numLayers) layers × kv dim \(c.kvDim)")
        }
        config.prefixProjection = false   // the stored table is already the MLP's output
        try self.init(config: config, table: t, decoder: decoder)
    }

    /// Recomputes the table (through the MLP) and scatters it into the per-layer keys/values.
    public func refresh() {
        projection?.forward(into: table)
        let n = virtualTokens, kv = prefix.keys[0].shape[1], width = table.shape[1]
        for l in 0..<prefix.keys.count {
            for j in 0..<n {
                (prefix.keys[l].ptr + j * kv).update(from: table.ptr + j * width + 2 * l * kv, count: kv)
                (prefix.values[l].ptr + j * kv).update(from: table.ptr + j * width + (2 * l + 1) * kv, count: kv)
            }
        }
    }

    public func zeroGradients() { tableGradient.zero(); projection?.zeroGradients(); prefix.zeroGradients() }

    /// Freezes every base weight and installs the prefix.
    public func attach(to decoder: Decoder) {
        decoder.trainable = []
        decoder.prefix = enabled ? prefix : nil
    }

    public func forwardHidden(_ decoder: Decoder, ids: [Int], batch: Int, length: Int,
                              attentionMask: [Int]?, positionIds: [Int]?, documentIds: [Int]?) -> Tensor {
        refresh()
        decoder.prefix = enabled ? prefix : nil
        let n = enabled ? virtualTokens : 0
        return decoder.forwardHidden(ids: ids, batch: batch, length: length, attentionMask: attentionMask,
                                     positionIds: positionIds.map { $0.map { $0 + n } }, documentIds: documentIds)
    }

    public func causalLMLoss(_ decoder: Decoder, labels: [Int], gradientScale: Float?, computeGradients: Bool) -> CausalLMLoss {
        // Labels cover the real tokens only: the decoder's loss as it is.
        decoder.trainedTokenLoss(labels: labels, gradientScale: gradientScale, computeGradients: computeGradients)
    }

    public func backward(_ decoder: Decoder) { decoder.backward(); collect(decoder) }
    public func backwardHidden(_ decoder: Decoder, _ dHidden: Tensor) { decoder.backwardHidden(dHidden); collect(decoder) }

    /// Gathers the per-layer key/value gradients into the table's gradient (and through the MLP).
    private func collect(_ decoder: Decoder) {
        guard enabled else { return }
        let n = virtualTokens, kv = prefix.keys[0].shape[1], width = table.shape[1]
        let dTable = projection == nil ? tableGradient : Tensor(shape: table.shape)
        for l in 0..<prefix.keys.count {
            for j in 0..<n {
                VectorMath.add(prefix.keyGradients[l].ptr + j * kv, into: dTable.ptr + j * width + 2 * l * kv, kv)
                VectorMath.add(prefix.valueGradients[l].ptr + j * kv, into: dTable.ptr + j * width + (2 * l + 1) * kv, kv)
            }
        }
        prefix.zeroGradients()
        projection?.backward(dOut: dTable)
    }

    /// Places the prefix at positions 0..<n of an empty `cache`; `prefill`/`generate` then continue at n.
    public func primeCache(_ decoder: Decoder, cache: KVCache) {
        guard enabled else { return }
        refresh()
        cache.loadPrefix(prefix)
    }

    public func save(to folder: URL, baseModel: String) throws {
        refresh()
        var c = config
        c.baseModelNameOrPath = baseModel
        try PEFTAdapterFolder.save(.prefixTuning(c, promptEmbeddings: table), to: folder)
    }
}
