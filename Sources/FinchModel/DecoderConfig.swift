import Foundation

/// The two decoder flavours Finch implements.
public enum Flavour: String, Codable, Sendable {
    /// LayerNorm, GELU (tanh) MLP, learned positions, biases, tied embeddings; HF `GPT2LMHeadModel`.
    case gpt2
    /// RMSNorm, RoPE, SwiGLU, no biases, grouped-query attention; HF `LlamaForCausalLM`.
    case llama
}

/// Everything that fixes a decoder's shapes and arithmetic. Read from / written to a Hugging Face
/// `config.json` (see `HFConfig`), so names follow the Llama spelling.
public struct DecoderConfig: Codable, Equatable, Sendable {
    public var flavour: Flavour
    public var vocabSize: Int
    public var hiddenSize: Int
    public var numLayers: Int
    public var numHeads: Int
    public var numKVHeads: Int
    public var headDim: Int
    public var intermediateSize: Int
    public var maxPositions: Int
    public var normEps: Float
    public var ropeTheta: Float
    public var tieWordEmbeddings: Bool
    public var bosTokenId: Int?
    public var eosTokenId: Int?
    public var padTokenId: Int?
    /// Every end-of-sequence id when config.json lists several (`eosTokenId` is the first); nil = just `eosTokenId`.
    public var eosTokenIds: [Int]?
    /// Set for a sequence-classification / reward model (HF `LlamaForSequenceClassification`): the head is
    /// `score.weight [numLabels, hidden]` instead of the LM head.
    public var numLabels: Int?

    public init(flavour: Flavour, vocabSize: Int, hiddenSize: Int, numLayers: Int, numHeads: Int,
                numKVHeads: Int? = nil, headDim: Int? = nil, intermediateSize: Int? = nil,
                maxPositions: Int = 1024, normEps: Float = 1e-5, ropeTheta: Float = 10000,
                tieWordEmbeddings: Bool? = nil, bosTokenId: Int? = nil, eosTokenId: Int? = nil, padTokenId: Int? = nil,
                eosTokenIds: [Int]? = nil, numLabels: Int? = nil) {
        self.flavour = flavour
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.numHeads = numHeads
        self.numKVHeads = numKVHeads ?? numHeads
        self.headDim = headDim ?? hiddenSize / numHeads
        self.intermediateSize = intermediateSize ?? 4 * hiddenSize
        self.maxPositions = maxPositions
        self.normEps = normEps
        self.ropeTheta = ropeTheta
        self.tieWordEmbeddings = tieWordEmbeddings ?? (flavour == .gpt2)
        self.bosTokenId = bosTokenId
        self.eosTokenId = eosTokenId
        self.padTokenId = padTokenId
        self.eosTokenIds = eosTokenIds
        self.numLabels = numLabels
    }

    public var qDim: Int { numHeads * headDim }
    public var kvDim: Int { numKVHeads * headDim }

    /// Every parameter the decoder holds, under its Hugging Face name, with its stored shape
    /// (GPT-2 Conv1D weights are `[in, out]`; Llama Linear weights are `[out, in]`).
    public func parameterShapes() -> [(name: String, shape: [Int])] {
        var out: [(String, [Int])] = []
        let C = hiddenSize, F = intermediateSize, V = vocabSize
        switch flavour {
        case .gpt2:
            out.append(("transformer.wte.weight", [V, C]))
            out.append(("transformer.wpe.weight", [maxPositions, C]))
            for l in 0..<numLayers {
                let p = "transformer.h.\(l)."
                out.append((p + "ln_1.weight", [C])); out.append((p + "ln_1.bias", [C]))
                out.append((p + "attn.c_attn.weight", [C, 3 * C])); out.append((p + "attn.c_attn.bias", [3 * C]))
                out.append((p + "attn.c_proj.weight", [C, C])); out.append((p + "attn.c_proj.bias", [C]))
                out.append((p + "ln_2.weight", [C])); out.append((p + "ln_2.bias", [C]))
                out.append((p + "mlp.c_fc.weight", [C, F])); out.append((p + "mlp.c_fc.bias", [F]))
                out.append((p + "mlp.c_proj.weight", [F, C])); out.append((p + "mlp.c_proj.bias", [C]))
            }
            out.append(("transformer.ln_f.weight", [C])); out.append(("transformer.ln_f.bias", [C]))
            if !tieWordEmbeddings { out.append(("lm_head.weight", [V, C])) }
        case .llama:
            out.append(("model.embed_tokens.weight", [V, C]))
            for l in 0..<numLayers {
                let p = "model.layers.\(l)."
                out.append((p + "input_layernorm.weight", [C]))
                out.append((p + "self_attn.q_proj.weight", [qDim, C]))
                out.append((p + "self_attn.k_proj.weight", [kvDim, C]))
                out.append((p + "self_attn.v_proj.weight", [kvDim, C]))
                out.append((p + "self_attn.o_proj.weight", [C, qDim]))
                out.append((p + "post_attention_layernorm.weight", [C]))
                out.append((p + "mlp.gate_proj.weight", [F, C]))
                out.append((p + "mlp.up_proj.weight", [F, C]))
                out.append((p + "mlp.down_proj.weight", [C, F]))
            }
            out.append(("model.norm.weight", [C]))
            if let labels = numLabels { out.append(("score.weight", [labels, C])) }
            else if !tieWordEmbeddings { out.append(("lm_head.weight", [V, C])) }
        }
        return out
    }

    /// Total parameter count (tied head counted once).
    public var parameterCount: Int { parameterShapes().reduce(0) { $0 + $1.shape.reduce(1, *) } }
}
