import Foundation
import FinchGGUF

/// The `ARCH.*` hyper-parameter keys and tensor names llama.cpp uses, mapped to Finch's `DecoderConfig` and
/// Hugging Face parameter names (llama.cpp's `src/llama-arch.cpp` and gguf-py's `constants.py` spell them).
enum GGUFArchitecture {
    /// Architectures read from GGUF.
    static let supported = ["llama", "mistral", "qwen2", "qwen3", "gemma3"]

    static func flavour(_ arch: String) -> Flavour {
        switch arch {
        case "qwen2": return .qwen2
        case "qwen3": return .qwen3
        case "gemma3": return .gemma3
        default: return .llama
        }
    }

    static func config(_ file: GGUFFile) throws -> DecoderConfig {
        let path = file.url.path
        let meta = file.metadata
        guard let arch = meta["general.architecture"]?.string else {
            throw ModelFileError("\(path): no general.architecture key")
        }
        guard supported.contains(arch) else {
            throw ModelFileError("\(path): architecture '\(arch)' is not supported (supported: \(supported.joined(separator: ", ")))")
        }
        func int(_ key: String) throws -> Int {
            guard let v = meta["\(arch).\(key)"]?.int else { throw ModelFileError("\(path): missing or non-integer key \(arch).\(key)") }
            guard v > 0 && v < 1 << 31 else { throw ModelFileError("\(path): \(arch).\(key) = \(v) is out of range") }
            return v
        }
        func optionalInt(_ key: String) throws -> Int? { meta["\(arch).\(key)"] == nil ? nil : try int(key) }
        let hidden = try int("embedding_length"), heads = try int("attention.head_count")
        // head_count_kv may be per layer (an array) in some files; Finch needs one value.
        var kvHeads = heads
        if let v = meta["\(arch).attention.head_count_kv"] {
            if let n = v.int { kvHeads = n } else if let a = v.ints, let first = a.first, a.allSatisfy({ $0 == first }) { kvHeads = first }
            else { throw ModelFileError("\(path): \(arch).attention.head_count_kv varies by layer, which Finch does not support") }
        }
        let headDim = try optionalInt("attention.key_length") ?? hidden / heads
        if let vl = try optionalInt("attention.value_length"), vl != headDim {
            throw ModelFileError("\(path): value_length \(vl) differs from key_length \(headDim)")
        }
        if let rd = try optionalInt("rope.dimension_count"), rd != headDim {
            throw ModelFileError("\(path): partial RoPE (\(rd) of \(headDim) dimensions) is not supported")
        }
        var scaling: RopeScaling? = nil
        if let type = meta["\(arch).rope.scaling.type"]?.string, type != "none" {
            guard type == "linear", let factor = meta["\(arch).rope.scaling.factor"]?.double else {
                throw ModelFileError("\(path): \(arch).rope.scaling.type '\(type)' is not supported (linear is)")
            }
            if factor != 1 { scaling = RopeScaling(type: "linear", factor: factor) }
        }
        if let t = file.tensor(named: "rope_freqs.weight") {   // Llama 3.1+: llama.cpp stores the scaled frequencies' divisors
            guard t.elementCount == headDim / 2, scaling == nil else {
                throw ModelFileError("\(path): rope_freqs has \(t.elementCount) factors for head size \(headDim)\(scaling == nil ? "" : " and rope.scaling is also set")")
            }
            scaling = RopeScaling(type: "factors", factor: 1, frequencyFactors: try file.dequantize(t))
        }
        let vocab = meta["\(arch).vocab_size"]?.int ?? meta["tokenizer.ggml.tokens"]?.array?.count
        guard let vocab, vocab > 0 else { throw ModelFileError("\(path): neither \(arch).vocab_size nor tokenizer.ggml.tokens gives the vocabulary size") }
        let tied = file.tensor(named: "output.weight") == nil
        func id(_ key: String) -> Int? { meta["tokenizer.ggml.\(key)"]?.int }
        var eos: [Int] = []
        for k in ["eos_token_id", "eot_token_id", "eom_token_id"] { if let v = id(k), v >= 0, !eos.contains(v) { eos.append(v) } }
        let flavour = self.flavour(arch)
        var slidingWindow: Int? = nil, layerTypes: [String]? = nil, localTheta: Float? = nil, queryScalar: Float? = nil
        let layers = try int("block_count")
        // Every layer has its own tensors (blk.N.*): a count the file cannot hold is refused before anything is
        // sized by it (tools/fuzz: a block_count of 2^31-1 made the per-layer lists exhaust memory).
        guard layers <= file.tensors.count else {
            throw ModelFileError("\(path): \(arch).block_count = \(layers), but the file holds only \(file.tensors.count) tensors")
        }
        if flavour == .gemma3 {
            // llama.cpp fixes what Gemma 3's GGUF does not store: every 6th layer is global (unless a pattern key is
            // given), sliding layers use RoPE base 10000 (unless freq_base_swa is given), and the query scale is
            // head_dim^-0.5 (query_pre_attn_scalar = head_dim, true of the published sizes but the 27B).
            slidingWindow = try optionalInt("attention.sliding_window")
            let pattern = meta["\(arch).attention.sliding_window_pattern"]?.int ?? 6
            layerTypes = (0..<layers).map { pattern > 0 && ($0 + 1) % pattern == 0 ? "full_attention" : "sliding_attention" }
            localTheta = Float(meta["\(arch).rope.freq_base_swa"]?.double ?? 10000)
            queryScalar = Float(headDim)
            if meta["\(arch).final_logit_softcapping"] != nil || meta["\(arch).attn_logit_softcapping"] != nil {
                throw ModelFileError("\(path): logit soft-capping (Gemma 2) is not supported")
            }
        } else if let w = try optionalInt("attention.sliding_window"), flavour != .qwen2 && flavour != .qwen3 {
            throw ModelFileError("\(path): sliding-window attention (\(w)) is not supported for \(arch)")
        }
        // Llama with attention / MLP biases (attention_bias, mlp_bias): the converter writes the bias tensors.
        let attentionBias: Bool? = flavour == .llama && file.tensor(named: "blk.0.attn_q.bias") != nil ? true : nil
        let mlpBias: Bool? = flavour == .llama && file.tensor(named: "blk.0.ffn_gate.bias") != nil ? true : nil
        return DecoderConfig(
            flavour: flavour, vocabSize: vocab, hiddenSize: hidden, numLayers: layers,
            numHeads: heads, numKVHeads: kvHeads, headDim: headDim, intermediateSize: try int("feed_forward_length"),
            maxPositions: try optionalInt("context_length") ?? 2048,
            normEps: Float(meta["\(arch).attention.layer_norm_rms_epsilon"]?.double ?? 1e-5),
            ropeTheta: Float(meta["\(arch).rope.freq_base"]?.double ?? 10000),
            tieWordEmbeddings: tied, bosTokenId: id("bos_token_id"), eosTokenId: eos.first, padTokenId: id("padding_token_id"),
            eosTokenIds: eos.count > 1 ? eos : nil, attentionBias: attentionBias, mlpBias: mlpBias, ropeScaling: scaling,
            slidingWindow: slidingWindow, layerTypes: layerTypes, localRopeTheta: localTheta, queryPreAttnScalar: queryScalar)
    }

    /// llama.cpp's name of a Finch (HF) parameter.
    static func ggufName(of name: String, config: DecoderConfig) -> String? {
        switch name {
        case "model.embed_tokens.weight": return "token_embd.weight"
        case "model.norm.weight": return "output_norm.weight"
        case "lm_head.weight": return "output.weight"
        default: break
        }
        let prefix = "model.layers."
        guard name.hasPrefix(prefix) else { return nil }
        let rest = name.dropFirst(prefix.count)
        guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]) else { return nil }
        let local = String(rest[rest.index(after: dot)...])
        let map: [String: String] = [
            "input_layernorm.weight": "attn_norm.weight",
            "self_attn.q_proj.weight": "attn_q.weight", "self_attn.q_proj.bias": "attn_q.bias",
            "self_attn.k_proj.weight": "attn_k.weight", "self_attn.k_proj.bias": "attn_k.bias",
            "self_attn.v_proj.weight": "attn_v.weight", "self_attn.v_proj.bias": "attn_v.bias",
            "self_attn.o_proj.weight": "attn_output.weight",
            "self_attn.q_norm.weight": "attn_q_norm.weight", "self_attn.k_norm.weight": "attn_k_norm.weight",
            "post_attention_layernorm.weight": config.flavour == .gemma3 ? "post_attention_norm.weight" : "ffn_norm.weight",
            "pre_feedforward_layernorm.weight": "ffn_norm.weight",
            "post_feedforward_layernorm.weight": "post_ffw_norm.weight",
            "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight",
            "self_attn.o_proj.bias": "attn_output.bias",
            "mlp.gate_proj.bias": "ffn_gate.bias", "mlp.up_proj.bias": "ffn_up.bias", "mlp.down_proj.bias": "ffn_down.bias",
        ]
        guard let g = map[local] else { return nil }
        return "blk.\(layer).\(g)"
    }

    /// GGUF tensors a Finch decoder does not read: a tied model's duplicate head, cached RoPE tables.
    static func ignorable(_ name: String, config: DecoderConfig) -> Bool {
        name == "rope_freqs.weight" || name.hasSuffix(".attn_rot_embd") || (config.tieWordEmbeddings && name == "output.weight")
    }

    /// llama.cpp's Gemma converters store RMSNorm weights as 1 + w.
    static func storesNormPlusOne(_ arch: String) -> Bool { arch.hasPrefix("gemma") }
}
