import Foundation

/// The decoder flavours Finch implements.
public enum Flavour: String, Codable, Sendable {
    /// LayerNorm, GELU (tanh) MLP, learned positions, biases, tied embeddings; HF `GPT2LMHeadModel`.
    case gpt2
    /// RMSNorm, RoPE, SwiGLU, no biases, grouped-query attention; HF `LlamaForCausalLM`.
    case llama
    /// Llama + biases on q/k/v (not o_proj); HF `Qwen2ForCausalLM`.
    case qwen2
    /// Llama + per-head RMSNorm on q and k before RoPE, explicit head_dim; HF `Qwen3ForCausalLM`.
    case qwen3
    /// Gemma 3 text: embeddings ×√hidden, (1+w) RMSNorms (four per layer, "sandwich"), GELU-tanh gated MLP,
    /// (1+w) q/k norms, sliding-window layers with their own RoPE base; HF `Gemma3ForCausalLM` (`gemma3_text`).
    case gemma3

    /// A rotary-position decoder (every flavour but GPT-2).
    public var usesRoPE: Bool { self != .gpt2 }
}

/// RoPE frequency scaling (HF `rope_scaling` / `rope_parameters` with a `rope_type` other than "default").
public struct RopeScaling: Codable, Equatable, Sendable {
    /// "linear" or "llama3".
    public var type: String
    public var factor: Double
    public var lowFreqFactor: Double?
    public var highFreqFactor: Double?
    public var originalMaxPositions: Int?
    /// type "factors": llama.cpp's per-frequency divisors (the `rope_freqs` tensor its converter writes for Llama 3.1+
    /// instead of the llama3 parameters): inverse frequency i is divided by factor i.
    public var frequencyFactors: [Float]?

    public init(type: String, factor: Double, lowFreqFactor: Double? = nil, highFreqFactor: Double? = nil,
                originalMaxPositions: Int? = nil, frequencyFactors: [Float]? = nil) {
        self.type = type; self.factor = factor; self.lowFreqFactor = lowFreqFactor
        self.highFreqFactor = highFreqFactor; self.originalMaxPositions = originalMaxPositions
        self.frequencyFactors = frequencyFactors
    }

    /// Scales default inverse frequencies `inv` (float32, HF `_compute_default_rope_parameters`) exactly as
    /// transformers' `_compute_linear_scaling_rope_parameters` / `_compute_llama3_parameters` do (float32 torch ops).
    public func apply(_ inv: [Float]) -> [Float] {
        let f = Float(factor)
        switch type {
        case "llama3":
            let old = Double(originalMaxPositions ?? 8192)
            let low = lowFreqFactor ?? 1, high = highFreqFactor ?? 4
            let lowWavelen = Float(old / low), highWavelen = Float(old / high)
            let twoPi = Float(2 * Double.pi), oldF = Float(old), lowF = Float(low), span = Float(high - low)
            return inv.map { x in
                // torch evaluates `scalar / tensor` as `tensor.reciprocal() * scalar`.
                let wavelen = (1 / x) * twoPi
                let scaled = wavelen > lowWavelen ? x / f : x
                let smooth = ((1 / wavelen) * oldF - lowF) / span
                let smoothed = (1 - smooth) * scaled / f + smooth * scaled
                let medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen)
                return medium ? smoothed : scaled
            }
        case "factors":
            let factors = frequencyFactors ?? []
            return inv.enumerated().map { i, x in i < factors.count ? x / factors[i] : x }
        default:   // linear
            return inv.map { $0 / f }
        }
    }
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

    // Architecture details of the newer flavours (nil = the flavour's default; gpt2/llama leave them nil).
    /// Llama / Qwen3 / Gemma3 `attention_bias`: biases on q, k, v and o_proj. (Qwen2 always has q/k/v biases.)
    public var attentionBias: Bool?
    /// Llama `mlp_bias`: biases on gate/up/down.
    public var mlpBias: Bool?
    /// RoPE frequency scaling of the (global) rotary embedding.
    public var ropeScaling: RopeScaling?
    /// Sliding-window size of the `sliding_attention` layers: key j is visible to query i iff i − j < window.
    public var slidingWindow: Int?
    /// HF `layer_types`: "full_attention" or "sliding_attention" per layer (nil = all full).
    public var layerTypes: [String]?
    /// RoPE base of the sliding layers (Gemma 3 `rope_local_base_freq`); nil = `ropeTheta`.
    public var localRopeTheta: Float?
    /// Gemma 3 `query_pre_attn_scalar`: attention scale = scalar^-0.5 instead of head_dim^-0.5.
    public var queryPreAttnScalar: Float?

    public init(flavour: Flavour, vocabSize: Int, hiddenSize: Int, numLayers: Int, numHeads: Int,
                numKVHeads: Int? = nil, headDim: Int? = nil, intermediateSize: Int? = nil,
                maxPositions: Int = 1024, normEps: Float = 1e-5, ropeTheta: Float = 10000,
                tieWordEmbeddings: Bool? = nil, bosTokenId: Int? = nil, eosTokenId: Int? = nil, padTokenId: Int? = nil,
                eosTokenIds: [Int]? = nil, numLabels: Int? = nil,
                attentionBias: Bool? = nil, mlpBias: Bool? = nil, ropeScaling: RopeScaling? = nil,
                slidingWindow: Int? = nil, layerTypes: [String]? = nil, localRopeTheta: Float? = nil,
                queryPreAttnScalar: Float? = nil) {
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
        if flavour == .gemma3 { self.tieWordEmbeddings = tieWordEmbeddings ?? true }
        self.attentionBias = attentionBias; self.mlpBias = mlpBias; self.ropeScaling = ropeScaling
        self.slidingWindow = slidingWindow; self.layerTypes = layerTypes; self.localRopeTheta = localRopeTheta
        self.queryPreAttnScalar = queryPreAttnScalar
    }

    public var qDim: Int { numHeads * headDim }
    public var kvDim: Int { numKVHeads * headDim }

    /// Biases on the q/k/v projections.
    public var qkvBias: Bool { flavour == .qwen2 || (flavour != .gpt2 && attentionBias == true) }
    /// A bias on the attention output projection (Llama-family `attention_bias`; never for Qwen2).
    public var outputBias: Bool { flavour != .gpt2 && flavour != .qwen2 && attentionBias == true }
    /// Biases on gate/up/down.
    public var gatedMLPBias: Bool { flavour != .gpt2 && mlpBias == true }
    /// Per-head RMSNorm on q and k (Qwen3, Gemma 3).
    public var qkNorm: Bool { flavour == .qwen3 || flavour == .gemma3 }
    /// Gemma-style blocks: (1+w) RMSNorms, norms after the attention and MLP outputs too, GELU-tanh gate.
    public var gemmaStyle: Bool { flavour == .gemma3 }
    /// The factor token embeddings are multiplied by (Gemma: √hidden as a float32), nil = none.
    public var embeddingScale: Float? { flavour == .gemma3 ? Float(Double(hiddenSize).squareRoot()) : nil }
    /// The attention score scale when it is not 1/√head_dim (Gemma: query_pre_attn_scalar^-0.5, as HF's Python float).
    public var attentionScale: Float? { queryPreAttnScalar.map { Float(pow(Double($0), -0.5)) } }
    /// Whether layer `l` uses sliding-window attention.
    public func isSlidingLayer(_ l: Int) -> Bool {
        guard slidingWindow != nil, let types = layerTypes, l < types.count else { return false }
        return types[l] == "sliding_attention"
    }
    /// The attention window of layer `l` (nil = full causal attention).
    public func attentionWindow(_ l: Int) -> Int? { isSlidingLayer(l) ? slidingWindow : nil }

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
        case .llama, .qwen2, .qwen3, .gemma3:
            out.append(("model.embed_tokens.weight", [V, C]))
            let hd = headDim
            for l in 0..<numLayers {
                let p = "model.layers.\(l)."
                out.append((p + "input_layernorm.weight", [C]))
                out.append((p + "self_attn.q_proj.weight", [qDim, C]))
                if qkvBias { out.append((p + "self_attn.q_proj.bias", [qDim])) }
                out.append((p + "self_attn.k_proj.weight", [kvDim, C]))
                if qkvBias { out.append((p + "self_attn.k_proj.bias", [kvDim])) }
                out.append((p + "self_attn.v_proj.weight", [kvDim, C]))
                if qkvBias { out.append((p + "self_attn.v_proj.bias", [kvDim])) }
                out.append((p + "self_attn.o_proj.weight", [C, qDim]))
                if outputBias { out.append((p + "self_attn.o_proj.bias", [C])) }
                if qkNorm {
                    out.append((p + "self_attn.q_norm.weight", [hd]))
                    out.append((p + "self_attn.k_norm.weight", [hd]))
                }
                out.append((p + "post_attention_layernorm.weight", [C]))
                if gemmaStyle {
                    out.append((p + "pre_feedforward_layernorm.weight", [C]))
                    out.append((p + "post_feedforward_layernorm.weight", [C]))
                }
                out.append((p + "mlp.gate_proj.weight", [F, C]))
                if gatedMLPBias { out.append((p + "mlp.gate_proj.bias", [F])) }
                out.append((p + "mlp.up_proj.weight", [F, C]))
                if gatedMLPBias { out.append((p + "mlp.up_proj.bias", [F])) }
                out.append((p + "mlp.down_proj.weight", [C, F]))
                if gatedMLPBias { out.append((p + "mlp.down_proj.bias", [C])) }
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
