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
        case .llama:
            let p = "model.layers.\(l)."
            return BlockLayout(
                norm1: p + "input_layernorm", norm2: p + "post_attention_layernorm",
                qkv: [LinearSpec(module: p + "self_attn.q_proj", inFeatures: C, outFeatures: qDim, conv1D: false, hasBias: false, column: 0),
                      LinearSpec(module: p + "self_attn.k_proj", inFeatures: C, outFeatures: kvDim, conv1D: false, hasBias: false, column: qDim),
                      LinearSpec(module: p + "self_attn.v_proj", inFeatures: C, outFeatures: kvDim, conv1D: false, hasBias: false, column: qDim + kvDim)],
                out: LinearSpec(module: p + "self_attn.o_proj", inFeatures: qDim, outFeatures: C, conv1D: false, hasBias: false, column: 0),
                mlpIn: [LinearSpec(module: p + "mlp.gate_proj", inFeatures: C, outFeatures: F, conv1D: false, hasBias: false, column: 0),
                        LinearSpec(module: p + "mlp.up_proj", inFeatures: C, outFeatures: F, conv1D: false, hasBias: false, column: F)],
                mlpOut: LinearSpec(module: p + "mlp.down_proj", inFeatures: F, outFeatures: C, conv1D: false, hasBias: false, column: 0))
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
