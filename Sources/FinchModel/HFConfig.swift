import Foundation

/// Hugging Face `config.json` ⇄ `DecoderConfig`, for the architectures Finch computes exactly:
/// `LlamaForCausalLM`, `LlamaForSequenceClassification` (reward / classifier head), `GPT2LMHeadModel`,
/// `Qwen2ForCausalLM`, `Qwen3ForCausalLM` (and their `…ForSequenceClassification`) and `Gemma3ForCausalLM`
/// (`gemma3_text`).
public enum HFConfig {
    /// The `architectures` values Finch reads and writes, with their model_type and flavour.
    static let architectures: [(arch: String, modelType: String, flavour: Flavour)] = [
        ("LlamaForCausalLM", "llama", .llama), ("LlamaForSequenceClassification", "llama", .llama),
        ("GPT2LMHeadModel", "gpt2", .gpt2),
        ("Qwen2ForCausalLM", "qwen2", .qwen2), ("Qwen2ForSequenceClassification", "qwen2", .qwen2),
        ("Qwen3ForCausalLM", "qwen3", .qwen3), ("Qwen3ForSequenceClassification", "qwen3", .qwen3),
        ("Gemma3ForCausalLM", "gemma3_text", .gemma3),
    ]
    /// The `architectures` values Finch reads and writes.
    public static let supportedArchitectures = architectures.map { $0.arch }
    /// The `model_type` values Finch reads.
    public static let supportedModelTypes = ["llama", "gpt2", "qwen2", "qwen3", "gemma3_text"]

    /// Reads `config.json` at `url`.
    public static func load(_ url: URL) throws -> DecoderConfig {
        try decode(try JSONValue.read(url), file: url.path)
    }

    /// Builds a `DecoderConfig` from a parsed config.json; `file` names the source in errors.
    public static func decode(_ json: JSONValue, file: String) throws -> DecoderConfig {
        guard let o = json.object else { throw ModelFileError("\(file): config.json is not a JSON object") }
        let supported = "supported: \(supportedArchitectures.joined(separator: ", "))"
        let modelType = o["model_type"]?.string
        var arch: String
        if let archs = o["architectures"]?.array, let first = archs.first?.string {
            arch = first
        } else if let mt = modelType {
            guard let a = architectures.first(where: { $0.modelType == mt })?.arch else {
                throw ModelFileError("\(file): model_type '\(mt)' is not supported (supported model types: \(supportedModelTypes.joined(separator: ", ")); \(supported))")
            }
            arch = a
        } else {
            throw ModelFileError("\(file): neither 'architectures' nor 'model_type' is given; \(supported)")
        }
        guard let entry = architectures.first(where: { $0.arch == arch }) else {
            throw ModelFileError("\(file): architecture '\(arch)' is not supported (\(supported))")
        }
        let expectedType = entry.modelType
        if let mt = modelType, mt != expectedType {
            throw ModelFileError("\(file): model_type '\(mt)' does not match architecture '\(arch)' (expects '\(expectedType)'); \(supported)")
        }
        let r = Reader(o: o, file: file)
        let c = entry.flavour == .gpt2 ? try gpt2(r) : try llama(r, arch: arch, flavour: entry.flavour)
        try checkConsistency(c, r)
        return c
    }

    /// Sizes and token ids that each field allows alone but not together: heads that do not divide the hidden size
    /// (when no head_dim is given), key/value heads that do not divide the query heads, special token ids past the
    /// vocabulary. Without these checks the weights would be split wrongly or an id read out of bounds.
    private static func checkConsistency(_ c: DecoderConfig, _ r: Reader) throws {
        let headsKey = c.flavour == .gpt2 ? "n_head" : "num_attention_heads"
        let hiddenKey = c.flavour == .gpt2 ? "n_embd" : "hidden_size"
        if (c.flavour == .gpt2 || r.o["head_dim"] == nil || r.o["head_dim"]?.isNull == true), c.flavour != .gemma3, c.flavour != .qwen3,
           c.hiddenSize % c.numHeads != 0 {
            throw ModelFileError("\(r.file): \(headsKey) \(c.numHeads) does not divide \(hiddenKey) \(c.hiddenSize) (and no head_dim is given)")
        }
        if c.numHeads % c.numKVHeads != 0 {
            throw ModelFileError("\(r.file): num_key_value_heads \(c.numKVHeads) does not divide \(headsKey) \(c.numHeads)")
        }
        for (key, ids) in [("bos_token_id", try r.ids("bos_token_id")), ("eos_token_id", try r.ids("eos_token_id")),
                           ("pad_token_id", try r.ids("pad_token_id"))] {
            for id in ids where id >= c.vocabSize || (id < 0 && key != "pad_token_id") {
                throw ModelFileError("\(r.file): \(key) \(id) is outside the vocabulary (vocab_size \(c.vocabSize))")
            }
        }
    }

    /// The RoPE settings of one `rope_parameters` entry (or the legacy top-level fields): theta and scaling.
    private static func rope(_ r: Reader, _ params: [String: JSONValue]?, legacyTheta: String, defaultTheta: Double,
                             legacyScaling: Bool) throws -> (Double, RopeScaling?) {
        var theta = r.o[legacyTheta]?.double ?? defaultTheta
        var scaling: [String: JSONValue]? = nil
        if legacyScaling, let rs = r.o["rope_scaling"]?.object { scaling = rs }
        if let p = params {
            if let t = p["rope_theta"]?.double { theta = t }
            scaling = p
        }
        guard let sc = scaling else { return (theta, nil) }
        let type = sc["rope_type"]?.string ?? sc["type"]?.string ?? "default"
        switch type {
        case "default":
            return (theta, nil)
        case "linear":
            guard let f = sc["factor"]?.double else { throw ModelFileError("\(r.file): linear rope scaling without 'factor'") }
            return (theta, RopeScaling(type: "linear", factor: f))
        case "llama3":
            guard let f = sc["factor"]?.double, let low = sc["low_freq_factor"]?.double, let high = sc["high_freq_factor"]?.double else {
                throw ModelFileError("\(r.file): llama3 rope scaling needs factor, low_freq_factor and high_freq_factor")
            }
            let old = sc["original_max_position_embeddings"]?.int ?? r.o["max_position_embeddings"]?.int ?? 8192
            return (theta, RopeScaling(type: "llama3", factor: f, lowFreqFactor: low, highFreqFactor: high, originalMaxPositions: old))
        default:
            throw ModelFileError("\(r.file): rope type '\(type)' is not supported (only 'default', 'linear' and 'llama3')")
        }
    }

    private static func llama(_ r: Reader, arch: String, flavour: Flavour) throws -> DecoderConfig {
        let hidden = try r.int("hidden_size"), heads = try r.int("num_attention_heads")
        let layers = try r.int("num_hidden_layers")
        if flavour == .gemma3 {
            let act = r.o["hidden_activation"]?.string ?? r.o["hidden_act"]?.string ?? "gelu_pytorch_tanh"
            guard act == "gelu_pytorch_tanh" || act == "gelu_tanh" else {
                throw ModelFileError("\(r.file): hidden_activation '\(act)' is not supported (Finch's Gemma 3 MLP is gelu_pytorch_tanh-gated)")
            }
            try r.expect("attn_logit_softcapping", .null, "Finch's attention has no logit softcapping")
            try r.expect("final_logit_softcapping", .null, "Finch does not softcap the final logits")
            try r.expect("use_bidirectional_attention", .bool(false), "Finch's Gemma 3 is causal")
        } else {
            try r.expect("hidden_act", .string("silu"), "Finch's \(flavour.rawValue) MLP is SwiGLU with SiLU")
        }
        if let tp = r.o["pretraining_tp"]?.int, tp != 1 {
            throw ModelFileError("\(r.file): pretraining_tp \(tp) is not supported (only 1)")
        }
        // transformers 5 writes rope_parameters {rope_theta, rope_type, ...} (Gemma 3: one per layer type);
        // older versions a top-level rope_theta (Gemma 3: + rope_local_base_freq) and an optional rope_scaling.
        let rp = r.o["rope_parameters"]?.object
        let theta: Double, scaling: RopeScaling?
        var localTheta: Double? = nil
        var slidingWindow: Int? = nil, layerTypes: [String]? = nil
        if flavour == .gemma3 {
            (theta, scaling) = try rope(r, rp?["full_attention"]?.object, legacyTheta: "rope_theta", defaultTheta: 1_000_000, legacyScaling: true)
            let (local, localScaling) = try rope(r, rp?["sliding_attention"]?.object, legacyTheta: "rope_local_base_freq",
                                                 defaultTheta: 10000, legacyScaling: false)
            if localScaling != nil { throw ModelFileError("\(r.file): scaled RoPE on sliding layers is not supported") }
            localTheta = local
            slidingWindow = try r.optionalInt("sliding_window") ?? 4096
            let pattern = try r.optionalInt("sliding_window_pattern") ?? r.o["_sliding_window_pattern"]?.int ?? 6
            layerTypes = (0..<layers).map { ($0 + 1) % pattern != 0 ? "sliding_attention" : "full_attention" }
        } else {
            (theta, scaling) = try rope(r, rp, legacyTheta: "rope_theta", defaultTheta: 10000,
                                        legacyScaling: true)
            if flavour != .llama, r.o["use_sliding_window"]?.bool == true, let w = try r.optionalInt("sliding_window") {
                slidingWindow = w
                let maxWindowLayers = r.o["max_window_layers"]?.int ?? 28
                layerTypes = (0..<layers).map { $0 >= maxWindowLayers ? "sliding_attention" : "full_attention" }
            }
        }
        if let types = r.o["layer_types"]?.array {
            let t = types.compactMap { $0.string }
            guard t.count == layers, t.allSatisfy({ $0 == "full_attention" || $0 == "sliding_attention" }) else {
                throw ModelFileError("\(r.file): layer_types must list 'full_attention' / 'sliding_attention' for each of the \(layers) layers")
            }
            layerTypes = t
        }
        if layerTypes?.contains("sliding_attention") == true, slidingWindow == nil {
            throw ModelFileError("\(r.file): layer_types has sliding_attention layers but no sliding_window")
        }
        if layerTypes?.contains("sliding_attention") != true { layerTypes = nil; slidingWindow = nil }
        var numLabels: Int? = nil
        if arch.hasSuffix("ForSequenceClassification") {
            // transformers derives num_labels from id2label (default 2).
            numLabels = r.o["num_labels"]?.int ?? r.o["id2label"]?.object?.count ?? 2
        }
        let eos = try r.ids("eos_token_id")
        let defaultHeadDim = flavour == .gemma3 ? 256 : (flavour == .qwen3 ? 128 : hidden / max(heads, 1))
        let defaultPositions = [Flavour.llama: 2048, .qwen2: 32768, .qwen3: 32768, .gemma3: 131_072][flavour] ?? 2048
        var c = DecoderConfig(
            flavour: flavour, vocabSize: try r.int("vocab_size"), hiddenSize: hidden,
            numLayers: layers, numHeads: heads,
            numKVHeads: try r.optionalInt("num_key_value_heads") ?? heads,
            headDim: try r.optionalInt("head_dim") ?? defaultHeadDim,
            intermediateSize: try r.int("intermediate_size"),
            maxPositions: try r.optionalInt("max_position_embeddings") ?? defaultPositions,
            normEps: Float(r.o["rms_norm_eps"]?.double ?? 1e-6), ropeTheta: Float(theta),
            tieWordEmbeddings: r.o["tie_word_embeddings"]?.bool ?? (flavour == .gemma3),
            bosTokenId: try r.ids("bos_token_id").first, eosTokenId: eos.first, padTokenId: try r.ids("pad_token_id").first,
            eosTokenIds: eos.count > 1 ? eos : nil, numLabels: numLabels)
        if flavour != .qwen2, r.o["attention_bias"]?.bool == true { c.attentionBias = true }
        if flavour == .llama, r.o["mlp_bias"]?.bool == true { c.mlpBias = true }
        c.ropeScaling = scaling
        c.slidingWindow = slidingWindow
        c.layerTypes = layerTypes
        if flavour == .gemma3 {
            c.localRopeTheta = localTheta.map { Float($0) }
            c.queryPreAttnScalar = Float(r.o["query_pre_attn_scalar"]?.double ?? 256)
        }
        return c
    }

    private static func gpt2(_ r: Reader) throws -> DecoderConfig {
        let act = r.o["activation_function"]?.string ?? "gelu_new"
        guard act == "gelu_new" else {
            throw ModelFileError("\(r.file): GPT-2 activation_function '\(act)' is not supported (only 'gelu_new', the tanh GELU)")
        }
        try r.expect("scale_attn_weights", .bool(true), "Finch scales attention by 1/sqrt(head_dim)")
        try r.expect("scale_attn_by_inverse_layer_idx", .bool(false), "Finch does not scale attention by layer index")
        try r.expect("add_cross_attention", .bool(false), "Finch's GPT-2 is decoder-only")
        let C = try r.int("n_embd"), heads = try r.int("n_head")
        let eos = try r.ids("eos_token_id")
        return DecoderConfig(
            flavour: .gpt2, vocabSize: try r.int("vocab_size"), hiddenSize: C, numLayers: try r.int("n_layer"),
            numHeads: heads, numKVHeads: heads, headDim: C / max(heads, 1),
            intermediateSize: try r.optionalInt("n_inner") ?? 4 * C,
            maxPositions: try r.optionalInt("n_positions") ?? 1024,
            normEps: Float(r.o["layer_norm_epsilon"]?.double ?? 1e-5),
            tieWordEmbeddings: r.o["tie_word_embeddings"]?.bool ?? true,
            bosTokenId: try r.ids("bos_token_id").first, eosTokenId: eos.first, padTokenId: try r.ids("pad_token_id").first,
            eosTokenIds: eos.count > 1 ? eos : nil)
    }

    /// Field access with errors naming the file and the key.
    private struct Reader {
        let o: [String: JSONValue]
        let file: String
        func int(_ key: String) throws -> Int {
            guard let v = o[key] else { throw ModelFileError("\(file): required field '\(key)' is missing") }
            guard let i = v.int, i > 0 else { throw ModelFileError("\(file): field '\(key)' must be a positive integer, found \(v.text().trimmingCharacters(in: .whitespacesAndNewlines))") }
            return i
        }
        func optionalInt(_ key: String) throws -> Int? {
            guard let v = o[key], !v.isNull else { return nil }
            return try int(key)
        }
        /// A token id field: absent/null → [], an int → [id], a list → all ids.
        func ids(_ key: String) throws -> [Int] {
            guard let v = o[key], !v.isNull else { return [] }
            if let i = v.int { return [i] }
            if let a = v.array {
                return try a.map { guard let i = $0.int else { throw ModelFileError("\(file): '\(key)' holds a non-integer id") }; return i }
            }
            throw ModelFileError("\(file): '\(key)' must be an integer or a list of integers")
        }
        /// A field Finch does not implement other values of: absent or equal to `value`, else an error saying why.
        func expect(_ key: String, _ value: JSONValue, _ why: String) throws {
            guard let v = o[key], !v.isNull, v != value else { return }
            throw ModelFileError("\(file): \(key) = \(v.text().trimmingCharacters(in: .whitespacesAndNewlines)) is not supported (\(why))")
        }
    }

    // MARK: writing

    /// The config.json transformers (4.x and 5.x) loads for this configuration.
    public static func encode(_ c: DecoderConfig) -> JSONValue {
        var o: [String: JSONValue] = [
            "architectures": .array([.string(c.hfArchitecture)]),
            "model_type": .string(c.hfModelType),
            "vocab_size": .int(c.vocabSize),
            "tie_word_embeddings": .bool(c.tieWordEmbeddings),
            "bos_token_id": .optionalInt(c.bosTokenId),
            "eos_token_id": eosNode(c),
            "pad_token_id": .optionalInt(c.padTokenId),
            "dtype": .string("float32"),          // transformers 5
            "torch_dtype": .string("float32"),    // transformers 4
            "initializer_range": .double(0.02),
            "use_cache": .bool(true),
        ]
        switch c.flavour {
        case .llama, .qwen2, .qwen3, .gemma3:
            o["hidden_size"] = .int(c.hiddenSize)
            o["intermediate_size"] = .int(c.intermediateSize)
            o["num_hidden_layers"] = .int(c.numLayers)
            o["num_attention_heads"] = .int(c.numHeads)
            o["num_key_value_heads"] = .int(c.numKVHeads)
            o["head_dim"] = .int(c.headDim)
            o["max_position_embeddings"] = .int(c.maxPositions)
            o["rms_norm_eps"] = .float(c.normEps)
            o["rope_theta"] = .float(c.ropeTheta)
            o["attention_dropout"] = .double(0)
            let global = ropeNode(c.ropeTheta, c.ropeScaling)
            if let s = c.ropeScaling { o["rope_scaling"] = .object(global.object!.filter { $0.key != "rope_theta" }); _ = s }
            switch c.flavour {
            case .gemma3:
                o["hidden_activation"] = .string("gelu_pytorch_tanh")
                let local = c.localRopeTheta ?? c.ropeTheta
                o["rope_parameters"] = .object(["full_attention": global, "sliding_attention": ropeNode(local, nil)])
                o["rope_local_base_freq"] = .float(local)
                let scalar = c.queryPreAttnScalar ?? Float(c.headDim)   // nil: Finch scales by head_dim^-0.5
                o["query_pre_attn_scalar"] = scalar == scalar.rounded() ? .int(Int(scalar)) : .float(scalar)
                o["attn_logit_softcapping"] = .null
                o["final_logit_softcapping"] = .null
                o["use_bidirectional_attention"] = .bool(false)
                o["attention_bias"] = .bool(c.attentionBias ?? false)
                o["sliding_window"] = .optionalInt(c.slidingWindow)
            case .qwen2, .qwen3:
                o["hidden_act"] = .string("silu")
                o["rope_parameters"] = global
                if c.flavour == .qwen3 { o["attention_bias"] = .bool(c.attentionBias ?? false) }
                let sliding = c.layerTypes?.contains("sliding_attention") == true
                o["use_sliding_window"] = .bool(sliding)
                o["sliding_window"] = .optionalInt(sliding ? c.slidingWindow : nil)
                o["max_window_layers"] = .int(c.layerTypes?.firstIndex(of: "sliding_attention") ?? c.numLayers)
            default:
                o["hidden_act"] = .string("silu")
                o["rope_parameters"] = global
                o["attention_bias"] = .bool(c.attentionBias ?? false)
                o["mlp_bias"] = .bool(c.mlpBias ?? false)
                o["pretraining_tp"] = .int(1)
            }
            if c.flavour != .llama {
                o["layer_types"] = .array((0..<c.numLayers).map { .string(c.isSlidingLayer($0) ? "sliding_attention" : "full_attention") })
            }
            if let n = c.numLabels {
                o["id2label"] = .object(Dictionary(uniqueKeysWithValues: (0..<n).map { ("\($0)", JSONValue.string("LABEL_\($0)")) }))
                o["label2id"] = .object(Dictionary(uniqueKeysWithValues: (0..<n).map { ("LABEL_\($0)", JSONValue.int($0)) }))
            }
        case .gpt2:
            o["n_embd"] = .int(c.hiddenSize)
            o["n_layer"] = .int(c.numLayers)
            o["n_head"] = .int(c.numHeads)
            o["n_positions"] = .int(c.maxPositions)
            o["n_inner"] = c.intermediateSize == 4 * c.hiddenSize ? .null : .int(c.intermediateSize)
            o["layer_norm_epsilon"] = .float(c.normEps)
            o["activation_function"] = .string("gelu_new")
            o["attn_pdrop"] = .double(0); o["embd_pdrop"] = .double(0); o["resid_pdrop"] = .double(0)
            o["scale_attn_weights"] = .bool(true)
            o["scale_attn_by_inverse_layer_idx"] = .bool(false)
            o["reorder_and_upcast_attn"] = .bool(false)
            o["add_cross_attention"] = .bool(false)
        }
        return .object(o)
    }

    /// Writes config.json into `folder` atomically.
    public static func save(_ c: DecoderConfig, to url: URL) throws {
        if c.ropeScaling?.type == "factors" {
            throw ModelFileError("\(url.path): this model's RoPE scaling came from a GGUF file as per-frequency factors (rope_freqs), which config.json cannot express; use the Hugging Face folder of the model instead")
        }
        try AtomicFile.write(encode(c).data(), to: url)
    }

    /// A `rope_parameters` entry: theta, type and the scaling fields.
    static func ropeNode(_ theta: Float, _ s: RopeScaling?) -> JSONValue {
        var o: [String: JSONValue] = ["rope_theta": .float(theta), "rope_type": .string(s?.type ?? "default")]
        if let s = s {
            o["factor"] = .double(s.factor)
            if let v = s.lowFreqFactor { o["low_freq_factor"] = .double(v) }
            if let v = s.highFreqFactor { o["high_freq_factor"] = .double(v) }
            if let v = s.originalMaxPositions { o["original_max_position_embeddings"] = .int(v) }
        }
        return .object(o)
    }

    static func eosNode(_ c: DecoderConfig) -> JSONValue {
        if let all = c.eosTokenIds, all.count > 1 { return .array(all.map { .int($0) }) }
        return .optionalInt(c.eosTokenId)
    }
}

extension DecoderConfig {
    /// The Hugging Face class name of this model (`architectures[0]` in config.json).
    public var hfArchitecture: String {
        switch flavour {
        case .gpt2: return "GPT2LMHeadModel"
        case .llama: return numLabels == nil ? "LlamaForCausalLM" : "LlamaForSequenceClassification"
        case .qwen2: return numLabels == nil ? "Qwen2ForCausalLM" : "Qwen2ForSequenceClassification"
        case .qwen3: return numLabels == nil ? "Qwen3ForCausalLM" : "Qwen3ForSequenceClassification"
        case .gemma3: return "Gemma3ForCausalLM"
        }
    }

    /// The Hugging Face `model_type` of this model.
    public var hfModelType: String {
        switch flavour {
        case .gpt2: return "gpt2"
        case .llama: return "llama"
        case .qwen2: return "qwen2"
        case .qwen3: return "qwen3"
        case .gemma3: return "gemma3_text"
        }
    }
}
