import Foundation

/// Hugging Face `config.json` ⇄ `DecoderConfig`, for the architectures Finch computes exactly:
/// `LlamaForCausalLM`, `LlamaForSequenceClassification` (reward / classifier head) and `GPT2LMHeadModel`.
public enum HFConfig {
    /// The `architectures` values Finch reads and writes.
    public static let supportedArchitectures = ["LlamaForCausalLM", "LlamaForSequenceClassification", "GPT2LMHeadModel"]
    /// The `model_type` values Finch reads.
    public static let supportedModelTypes = ["llama", "gpt2"]

    /// Reads `config.json` at `url`.
    public static func load(_ url: URL) throws -> DecoderConfig {
        try decode(try JSONNode.read(url), file: url.path)
    }

    /// Builds a `DecoderConfig` from a parsed config.json; `file` names the source in errors.
    public static func decode(_ json: JSONNode, file: String) throws -> DecoderConfig {
        guard let o = json.object else { throw ModelFileError("\(file): config.json is not a JSON object") }
        let supported = "supported: \(supportedArchitectures.joined(separator: ", "))"
        let modelType = o["model_type"]?.string
        var arch: String
        if let archs = o["architectures"]?.array, let first = archs.first?.string {
            arch = first
        } else if let mt = modelType {
            guard let a = ["llama": "LlamaForCausalLM", "gpt2": "GPT2LMHeadModel"][mt] else {
                throw ModelFileError("\(file): model_type '\(mt)' is not supported (supported model types: \(supportedModelTypes.joined(separator: ", ")); \(supported))")
            }
            arch = a
        } else {
            throw ModelFileError("\(file): neither 'architectures' nor 'model_type' is given; \(supported)")
        }
        guard supportedArchitectures.contains(arch) else {
            throw ModelFileError("\(file): architecture '\(arch)' is not supported (\(supported))")
        }
        let expectedType = arch.hasPrefix("GPT2") ? "gpt2" : "llama"
        if let mt = modelType, mt != expectedType {
            throw ModelFileError("\(file): model_type '\(mt)' does not match architecture '\(arch)' (expects '\(expectedType)'); \(supported)")
        }
        let r = Reader(o: o, file: file)
        return expectedType == "gpt2" ? try gpt2(r) : try llama(r, arch: arch)
    }

    private static func llama(_ r: Reader, arch: String) throws -> DecoderConfig {
        let hidden = try r.int("hidden_size"), heads = try r.int("num_attention_heads")
        try r.expect("hidden_act", .string("silu"), "Finch's Llama MLP is SwiGLU with SiLU")
        try r.expect("attention_bias", .bool(false), "Finch's Llama has no attention biases")
        try r.expect("mlp_bias", .bool(false), "Finch's Llama has no MLP biases")
        if let tp = r.o["pretraining_tp"]?.int, tp != 1 {
            throw ModelFileError("\(r.file): pretraining_tp \(tp) is not supported (only 1)")
        }
        // transformers 5 writes rope_parameters {rope_theta, rope_type}; older versions a top-level rope_theta
        // and an optional rope_scaling.
        var theta = r.o["rope_theta"]?.double ?? 10000
        if let rp = r.o["rope_parameters"]?.object {
            if let t = rp["rope_theta"]?.double { theta = t }
            if let type = rp["rope_type"]?.string, type != "default" {
                throw ModelFileError("\(r.file): rope_parameters.rope_type '\(type)' is not supported (only 'default')")
            }
        }
        if let rs = r.o["rope_scaling"], !rs.isNull {
            let type = rs["rope_type"]?.string ?? rs["type"]?.string ?? "?"
            if type != "default" { throw ModelFileError("\(r.file): rope_scaling of type '\(type)' is not supported") }
        }
        var numLabels: Int? = nil
        if arch == "LlamaForSequenceClassification" {
            // transformers derives num_labels from id2label (default 2).
            numLabels = r.o["num_labels"]?.int ?? r.o["id2label"]?.object?.count ?? 2
        }
        let eos = try r.ids("eos_token_id")
        return DecoderConfig(
            flavour: .llama, vocabSize: try r.int("vocab_size"), hiddenSize: hidden,
            numLayers: try r.int("num_hidden_layers"), numHeads: heads,
            numKVHeads: try r.optionalInt("num_key_value_heads") ?? heads,
            headDim: try r.optionalInt("head_dim") ?? hidden / max(heads, 1),
            intermediateSize: try r.int("intermediate_size"),
            maxPositions: try r.optionalInt("max_position_embeddings") ?? 2048,
            normEps: Float(r.o["rms_norm_eps"]?.double ?? 1e-6), ropeTheta: Float(theta),
            tieWordEmbeddings: r.o["tie_word_embeddings"]?.bool ?? false,
            bosTokenId: try r.ids("bos_token_id").first, eosTokenId: eos.first, padTokenId: try r.ids("pad_token_id").first,
            eosTokenIds: eos.count > 1 ? eos : nil, numLabels: numLabels)
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
        let o: [String: JSONNode]
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
        func expect(_ key: String, _ value: JSONNode, _ why: String) throws {
            guard let v = o[key], !v.isNull, v != value else { return }
            throw ModelFileError("\(file): \(key) = \(v.text().trimmingCharacters(in: .whitespacesAndNewlines)) is not supported (\(why))")
        }
    }

    // MARK: writing

    /// The config.json transformers (4.x and 5.x) loads for this configuration.
    public static func encode(_ c: DecoderConfig) -> JSONNode {
        var o: [String: JSONNode] = [
            "architectures": .array([.string(c.hfArchitecture)]),
            "model_type": .string(c.flavour == .gpt2 ? "gpt2" : "llama"),
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
        case .llama:
            o["hidden_size"] = .int(c.hiddenSize)
            o["intermediate_size"] = .int(c.intermediateSize)
            o["num_hidden_layers"] = .int(c.numLayers)
            o["num_attention_heads"] = .int(c.numHeads)
            o["num_key_value_heads"] = .int(c.numKVHeads)
            o["head_dim"] = .int(c.headDim)
            o["hidden_act"] = .string("silu")
            o["max_position_embeddings"] = .int(c.maxPositions)
            o["rms_norm_eps"] = .float(c.normEps)
            o["rope_parameters"] = .object(["rope_theta": .float(c.ropeTheta), "rope_type": .string("default")])
            o["rope_theta"] = .float(c.ropeTheta)
            o["attention_bias"] = .bool(false)
            o["attention_dropout"] = .double(0)
            o["mlp_bias"] = .bool(false)
            o["pretraining_tp"] = .int(1)
            if let n = c.numLabels {
                o["id2label"] = .object(Dictionary(uniqueKeysWithValues: (0..<n).map { ("\($0)", JSONNode.string("LABEL_\($0)")) }))
                o["label2id"] = .object(Dictionary(uniqueKeysWithValues: (0..<n).map { ("LABEL_\($0)", JSONNode.int($0)) }))
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
        try AtomicFile.write(encode(c).data(), to: url)
    }

    static func eosNode(_ c: DecoderConfig) -> JSONNode {
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
        }
    }
}
