import Foundation
import FinchGGUF
import FinchKernels

/// The `ARCH.*` hyper-parameter keys and tensor names llama.cpp uses, mapped to Finch's `DecoderConfig` and
/// Hugging Face parameter names (llama.cpp's `src/llama-arch.cpp` and gguf-py's `constants.py` spell them).
enum GGUFArchitecture {
    /// Architectures read from GGUF.
    static let supported = ["llama", "mistral", "qwen2", "qwen3", "gemma3", "gpt2"]

    static func flavour(_ arch: String) -> Flavour {
        switch arch {
        case "qwen2": return .qwen2
        case "qwen3": return .qwen3
        case "gemma3": return .gemma3
        case "gpt2": return .gpt2
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
        if flavour == .gpt2 {
            guard let eps = meta["\(arch).attention.layer_norm_epsilon"]?.double else {
                throw ModelFileError("\(path): missing key \(arch).attention.layer_norm_epsilon")
            }
            return DecoderConfig(flavour: .gpt2, vocabSize: vocab, hiddenSize: hidden, numLayers: layers, numHeads: heads,
                                 intermediateSize: try int("feed_forward_length"), maxPositions: try int("context_length"),
                                 normEps: Float(eps), tieWordEmbeddings: tied, bosTokenId: id("bos_token_id"),
                                 eosTokenId: eos.first, padTokenId: id("padding_token_id"), eosTokenIds: eos.count > 1 ? eos : nil)
        }
        if flavour == .gemma3 {
            // llama.cpp fixes what Gemma 3's GGUF does not store: every 6th layer is global (unless a pattern key is
            // given), sliding layers use RoPE base 10000 (unless freq_base_swa is given), and the query scale is
            // head_dim^-0.5 (query_pre_attn_scalar = head_dim, true of the published sizes but the 27B).
            slidingWindow = try optionalInt("attention.sliding_window")
            // The pattern is a period (every n-th layer global) or, as llama.cpp also reads it, one bool per layer (true: sliding).
            if let perLayer = meta["\(arch).attention.sliding_window_pattern"]?.array {
                guard perLayer.count == layers, perLayer.allSatisfy({ $0.bool != nil }) else {
                    throw ModelFileError("\(path): \(arch).attention.sliding_window_pattern must hold one bool per layer (\(layers))")
                }
                layerTypes = perLayer.map { $0.bool! ? "sliding_attention" : "full_attention" }
            } else {
                let pattern = meta["\(arch).attention.sliding_window_pattern"]?.int ?? 6
                layerTypes = (0..<layers).map { pattern > 0 && ($0 + 1) % pattern == 0 ? "full_attention" : "sliding_attention" }
            }
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
        case "transformer.wte.weight": return "token_embd.weight"
        case "transformer.wpe.weight": return "position_embd.weight"
        case "transformer.ln_f.weight": return "output_norm.weight"
        case "transformer.ln_f.bias": return "output_norm.bias"
        default: break
        }
        if config.flavour == .gpt2 { return gpt2Name(of: name) }
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

    // MARK: Export (GGUFModelExport)

    /// llama.cpp's architecture name for a flavour.
    static func name(of flavour: Flavour) -> String {
        switch flavour {
        case .gpt2: return "gpt2"
        case .llama: return "llama"
        case .qwen2: return "qwen2"
        case .qwen3: return "qwen3"
        case .gemma3: return "gemma3"
        }
    }

    /// GPT-2's llama.cpp names (`transformer.h.N.*` → `blk.N.*`).
    static func gpt2Name(of name: String) -> String? {
        let prefix = "transformer.h."
        guard name.hasPrefix(prefix) else { return nil }
        let rest = name.dropFirst(prefix.count)
        guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]) else { return nil }
        let local = String(rest[rest.index(after: dot)...])
        let map = ["ln_1": "attn_norm", "attn.c_attn": "attn_qkv", "attn.c_proj": "attn_output", "ln_2": "ffn_norm",
                   "mlp.c_fc": "ffn_up", "mlp.c_proj": "ffn_down"]
        guard let cut = local.lastIndex(of: "."), let g = map[String(local[..<cut])] else { return nil }
        return "blk.\(layer).\(g)\(local[cut...])"
    }

    /// What the export does to a Finch (HF) parameter before writing it, and the import undoes.
    enum Transform: Equatable {
        case none
        /// llama.cpp's `permute(w, heads)` of Llama-family q/k rows: HF row h·d + s·d/2 + j → GGUF row h·d + 2j + s.
        case permuteRows(heads: Int)
        /// Gemma's RMSNorm weights are stored as 1 + w.
        case plusOne
        /// GPT-2's Conv1D `[in, out]` weights are stored as `[out, in]`.
        case transpose
    }

    /// One tensor to write: GGUF name, Finch's parameter, the ggml shape and the transform.
    struct ExportItem {
        let ggufName: String
        let hfName: String?
        let shape: [Int]
        let transform: Transform
    }

    /// The transform llama.cpp's converter applies to parameter `name` of architecture `arch`.
    static func transform(of name: String, shape: [Int], config: DecoderConfig, arch: String) -> Transform {
        if arch == "llama" || arch == "mistral" {
            if name.hasSuffix("self_attn.q_proj.weight") || name.hasSuffix("self_attn.q_proj.bias") { return .permuteRows(heads: config.numHeads) }
            if name.hasSuffix("self_attn.k_proj.weight") || name.hasSuffix("self_attn.k_proj.bias") { return .permuteRows(heads: config.numKVHeads) }
        }
        if storesNormPlusOne(arch) && name.hasSuffix("norm.weight") { return .plusOne }
        if config.flavour == .gpt2 && shape.count == 2 && name.hasPrefix("transformer.h.") { return .transpose }
        return .none
    }

    static func exportPlan(_ config: DecoderConfig, arch: String) throws -> [ExportItem] {
        try config.parameterShapes().map { name, shape in
            guard let g = ggufName(of: name, config: config) else {
                throw ModelFileError("parameter '\(name)' has no llama.cpp tensor name")
            }
            let t = transform(of: name, shape: shape, config: config, arch: arch)
            let hfShape = t == .transpose ? [shape[1], shape[0]] : shape
            return ExportItem(ggufName: g, hfName: name, shape: Array(hfShape.reversed()), transform: t)
        }
    }

    /// `t` as it is stored in GGUF (a new tensor; `t` itself when nothing changes).
    static func apply(_ transform: Transform, to t: Tensor) -> Tensor {
        switch transform {
        case .none:
            return t
        case .plusOne:
            let out = t.copy()
            for i in 0..<out.count { out.ptr[i] += 1 }
            return out
        case .transpose:
            let rows = t.shape[0], cols = t.shape[1]
            let out = Tensor(shape: [cols, rows])
            for r in 0..<rows { for c in 0..<cols { out.ptr[c * rows + r] = t.ptr[r * cols + c] } }
            return out
        case .permuteRows(let heads):
            let rows = t.shape[0], cols = t.shape.count > 1 ? t.shape[1] : 1
            let d = rows / heads, half = d / 2
            guard heads > 0, d * heads == rows, half * 2 == d else { return t }
            let out = Tensor(shape: t.shape)
            for h in 0..<heads {
                for j in 0..<half {
                    for s in 0..<2 {
                        let to: Int = (h * d + 2 * j + s) * cols, from: Int = (h * d + s * half + j) * cols
                        (out.ptr + to).update(from: t.ptr + from, count: cols)
                    }
                }
            }
            return out
        }
    }

    /// The `ARCH.*` keys llama.cpp reads for `config` (as its converter writes them). Throws for what llama.cpp's
    /// architecture cannot express.
    static func hyperParameters(_ c: DecoderConfig, arch: String) throws -> [(String, GGUFValue)] {
        func u(_ v: Int) -> GGUFValue { .uint32(UInt32(v)) }
        func refuse(_ what: String) -> ModelFileError {
            ModelFileError("llama.cpp's \(arch) architecture cannot express \(what)")
        }
        var out: [(String, GGUFValue)] = [
            ("\(arch).context_length", u(c.maxPositions)),
            ("\(arch).embedding_length", u(c.hiddenSize)),
            ("\(arch).block_count", u(c.numLayers)),
            ("\(arch).feed_forward_length", u(c.intermediateSize)),
            ("\(arch).attention.head_count", u(c.numHeads)),
        ]
        if c.flavour == .gpt2 {
            out.append(("\(arch).attention.layer_norm_epsilon", .float32(c.normEps)))
            return out
        }
        out.append(("\(arch).attention.head_count_kv", u(c.numKVHeads)))
        out.append(("\(arch).rope.freq_base", .float32(c.ropeTheta)))
        out.append(("\(arch).attention.layer_norm_rms_epsilon", .float32(c.normEps)))
        if c.headDim * c.numHeads != c.hiddenSize || c.flavour == .qwen3 || c.flavour == .gemma3 {
            out.append(("\(arch).attention.key_length", u(c.headDim)))
            out.append(("\(arch).attention.value_length", u(c.headDim)))
        }
        if arch == "llama" || arch == "mistral" {
            out.append(("\(arch).vocab_size", u(c.vocabSize)))
            out.append(("\(arch).rope.dimension_count", u(c.headDim)))
        }
        if let s = c.ropeScaling {
            switch s.type {
            case "linear":
                out.append(("\(arch).rope.scaling.type", .string("linear")))
                out.append(("\(arch).rope.scaling.factor", .float32(Float(s.factor))))
            case "llama3", "factors":
                guard arch == "llama" || arch == "mistral" else { throw refuse("\(s.type) RoPE scaling") }
            default:
                throw refuse("RoPE scaling '\(s.type)'")
            }
        }
        let sliding = (0..<c.numLayers).map(c.isSlidingLayer)
        if c.flavour == .gemma3 {
            if let q = c.queryPreAttnScalar, q != Float(c.headDim) {
                throw refuse("query_pre_attn_scalar \(q) (its Gemma 3 scales queries by head_dim^-0.5)")
            }
            if let window = c.slidingWindow, sliding.contains(true) {
                out.append(("\(arch).attention.sliding_window", u(window)))
                // llama.cpp's default: every 6th layer global. Another arrangement is written as its per-layer array.
                let byDefault = (0..<c.numLayers).map { ($0 + 1) % 6 != 0 }
                if sliding != byDefault {
                    out.append(("\(arch).attention.sliding_window_pattern", .array(.bool, sliding.map { .bool($0) })))
                }
                if let local = c.localRopeTheta, local != 10000 { out.append(("\(arch).rope.freq_base_swa", .float32(local))) }
            }
        } else if sliding.contains(true) {
            throw refuse("sliding-window attention layers")
        }
        return out
    }

    /// The `rope_freqs` factors llama.cpp's converter writes for Llama 3 RoPE scaling (nil when there is none).
    static func ropeFactors(_ c: DecoderConfig) throws -> [Float]? {
        guard let s = c.ropeScaling else { return nil }
        if s.type == "factors" { return s.frequencyFactors }
        guard s.type == "llama3" else { return nil }
        let dim = c.headDim, base = c.ropeTheta
        let old = Double(s.originalMaxPositions ?? 8192), low = s.lowFreqFactor ?? 1, high = s.highFreqFactor ?? 4
        let lowWavelen = old / low, highWavelen = old / high
        return stride(from: 0, to: dim, by: 2).map { i -> Float in
            let freq = Double(1 / powf(base, Float(i) / Float(dim)))
            let wavelen = 2 * Double.pi / freq
            if wavelen < highWavelen { return 1 }
            if wavelen > lowWavelen { return Float(s.factor) }
            let smooth = (old / wavelen - low) / (high - low)
            return Float(1 / ((1 - smooth) / s.factor + smooth))
        }
    }
}
