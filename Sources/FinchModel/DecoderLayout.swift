import FinchKernels

/// One projection of the decoder under its Hugging Face names. `conv1D` (GPT-2) weights are stored
/// [in, out] and applied as `x·W`; Linear (Llama) weights are [out, in] and applied as `x·Wᵀ`.
struct LinearSpec {
    let module: String          // HF module path, e.g. model.layers.0.self_attn.q_proj
    let inFeatures: Int
    let outFeatures: Int
    let conv1D: Bool
    let hasBias: Bool
    /// Column where this projection's output starts inside the fused output buffer.
    let column: Int
    var weight: String { module + ".weight" }
    var bias: String { module + ".bias" }
}

/// The names and fused-buffer layout of one decoder block.
struct BlockLayout {
    let norm1: String            // module path of the pre-attention norm
    let norm2: String
    let qkv: [LinearSpec]        // write columns of the fused [q | k | v] buffer
    let out: LinearSpec          // attention output projection
    let mlpIn: [LinearSpec]      // gpt2: c_fc; llama: gate | up (fused [gate | up] buffer)
    let mlpOut: LinearSpec
    /// Per-head q/k norms (Qwen3, Gemma 3), module paths.
    var qNorm: String? = nil
    var kNorm: String? = nil
    /// Gemma 3: norms applied to the attention and MLP outputs before the residual add.
    var postAttentionNorm: String? = nil
    var postMLPNorm: String? = nil
}

extension DecoderConfig {
    var qkvWidth: Int { qDim + 2 * kvDim }
    var mlpInWidth: Int { flavour == .gpt2 ? intermediateSize : 2 * intermediateSize }

    func blockLayout(_ l: Int) -> BlockLayout {
        let C = hiddenSize, F = intermediateSize
        switch flavour {
        case .gpt2:
            let p = "transformer.h.\(l)."
            return BlockLayout(
                norm1: p + "ln_1", norm2: p + "ln_2",
                qkv: [LinearSpec(module: p + "attn.c_attn", inFeatures: C, outFeatures: 3 * C, conv1D: true, hasBias: true, column: 0)],
                out: LinearSpec(module: p + "attn.c_proj", inFeatures: C, outFeatures: C, conv1D: true, hasBias: true, column: 0),
                mlpIn: [LinearSpec(module: p + "mlp.c_fc", inFeatures: C, outFeatures: F, conv1D: true, hasBias: true, column: 0)],
                mlpOut: LinearSpec(module: p + "mlp.c_proj", inFeatures: F, outFeatures: C, conv1D: true, hasBias: true, column: 0))
        case .llama, .qwen2, .qwen3, .gemma3:
            let p = "model.layers.\(l)."
            let qb = qkvBias, ob = outputBias, mb = gatedMLPBias
            return BlockLayout(
                norm1: p + "input_layernorm", norm2: p + (gemmaStyle ? "pre_feedforward_layernorm" : "post_attention_layernorm"),
                qkv: [LinearSpec(module: p + "self_attn.q_proj", inFeatures: C, outFeatures: qDim, conv1D: false, hasBias: qb, column: 0),
                      LinearSpec(module: p + "self_attn.k_proj", inFeatures: C, outFeatures: kvDim, conv1D: false, hasBias: qb, column: qDim),
                      LinearSpec(module: p + "self_attn.v_proj", inFeatures: C, outFeatures: kvDim, conv1D: false, hasBias: qb, column: qDim + kvDim)],
                out: LinearSpec(module: p + "self_attn.o_proj", inFeatures: qDim, outFeatures: C, conv1D: false, hasBias: ob, column: 0),
                mlpIn: [LinearSpec(module: p + "mlp.gate_proj", inFeatures: C, outFeatures: F, conv1D: false, hasBias: mb, column: 0),
                        LinearSpec(module: p + "mlp.up_proj", inFeatures: C, outFeatures: F, conv1D: false, hasBias: mb, column: F)],
                mlpOut: LinearSpec(module: p + "mlp.down_proj", inFeatures: F, outFeatures: C, conv1D: false, hasBias: mb, column: 0),
                qNorm: qkNorm ? p + "self_attn.q_norm" : nil, kNorm: qkNorm ? p + "self_attn.k_norm" : nil,
                postAttentionNorm: gemmaStyle ? p + "post_attention_layernorm" : nil,
                postMLPNorm: gemmaStyle ? p + "post_feedforward_layernorm" : nil)
        }
    }

    /// Names of the block projection weights (the candidates for quantised storage), layer by layer.
    public var projectionWeightNames: [String] {
        (0..<numLayers).flatMap { l -> [String] in
            let lay = blockLayout(l)
            return (lay.qkv + [lay.out] + lay.mlpIn + [lay.mlpOut]).map(\.weight)
        }
    }

    var embeddingName: String { flavour == .gpt2 ? "transformer.wte.weight" : "model.embed_tokens.weight" }
    var positionEmbeddingName: String? { flavour == .gpt2 ? "transformer.wpe.weight" : nil }
    var finalNorm: String { flavour == .gpt2 ? "transformer.ln_f" : "model.norm" }
    var headWeightName: String { tieWordEmbeddings ? embeddingName : "lm_head.weight" }
    /// The layer a parameter belongs to (nil for embeddings, final norm, head).
    func layerIndex(of name: String) -> Int? {
        let prefix = flavour == .gpt2 ? "transformer.h." : "model.layers."
        guard name.hasPrefix(prefix) else { return nil }
        return Int(name.dropFirst(prefix.count).prefix { $0 != "." })
    }
}
