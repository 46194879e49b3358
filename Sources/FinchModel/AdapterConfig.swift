import Foundation

// PEFT's adapter_config.json for the adapter types Finch reads and writes. Keys Finch does not interpret
// are kept in `other` and written back, and a new config carries every key PEFT 0.21 writes (with PEFT's
// defaults), so PEFT's `PeftModel.from_pretrained` loads Finch's folders and a round trip keeps the file.

/// LoRA / DoRA settings (`peft_type: "LORA"`).
public struct LoRAAdapterConfig: Equatable, Sendable {
    /// Rank of A `[r, in]` and B `[out, r]`.
    public var r: Int
    public var loraAlpha: Double
    public var loraDropout: Double
    /// Module names (`q_proj`, matched against the last component(s) of a module path) or `["all-linear"]`.
    public var targetModules: [String]
    /// Scale α/√r instead of α/r.
    public var useRslora: Bool
    /// DoRA: a per-output magnitude vector beside A and B.
    public var useDora: Bool
    public var baseModelNameOrPath: String?
    public var taskType: String
    /// Only "none" is supported (no bias tensors trained).
    public var bias: String
    /// PEFT sets this for GPT-2's Conv1D layers (weights stored [in, out]); A/B shapes are unchanged.
    public var fanInFanOut: Bool
    /// Per-module rank / alpha overrides (PEFT's `rank_pattern`, `alpha_pattern`), keyed by module path suffix.
    public var rankPattern: [String: Int]
    public var alphaPattern: [String: Double]
    /// Every other key of adapter_config.json, written back as read.
    public var other: [String: JSONValue]

    public init(r: Int, loraAlpha: Double, loraDropout: Double = 0, targetModules: [String], useRslora: Bool = false,
                useDora: Bool = false, baseModelNameOrPath: String? = nil, taskType: String = "CAUSAL_LM",
                bias: String = "none", fanInFanOut: Bool = false, rankPattern: [String: Int] = [:],
                alphaPattern: [String: Double] = [:], other: [String: JSONValue] = LoRAAdapterConfig.peftDefaults) {
        self.r = r; self.loraAlpha = loraAlpha; self.loraDropout = loraDropout; self.targetModules = targetModules.sorted()
        self.useRslora = useRslora; self.useDora = useDora; self.baseModelNameOrPath = baseModelNameOrPath
        self.taskType = taskType; self.bias = bias; self.fanInFanOut = fanInFanOut
        self.rankPattern = rankPattern; self.alphaPattern = alphaPattern; self.other = other
    }

    /// The keys PEFT 0.21 writes that Finch does not interpret, with PEFT's default values.
    public static let peftDefaults: [String: JSONValue] = [
        "alora_invocation_tokens": .null, "arrow_config": .null, "auto_mapping": .null, "corda_config": .null,
        "ensure_weight_tying": .bool(false), "eva_config": .null, "exclude_modules": .null, "inference_mode": .bool(true),
        "init_lora_weights": .bool(true), "kasa_config": .null, "layer_replication": .null, "layers_pattern": .null,
        "layers_to_transform": .null, "loftq_config": .object([:]), "lora_bias": .bool(false), "lora_ga_config": .null,
        "megatron_config": .null, "megatron_core": .string("megatron.core"), "modules_to_save": .null,
        "monteclora_config": .null, "peft_version": .string(PEFTAdapterFolder.peftFormatVersion),
        "qalora_group_size": .int(16), "revision": .null, "target_parameters": .null, "trainable_token_indices": .null,
        "use_bdlora": .null, "use_qalora": .bool(false), "velora_config": .null,
    ]

    /// PEFT's pattern lookup: the pattern equal to the module path or to a dot-separated suffix of it.
    private static func lookup<V>(_ patterns: [String: V], _ module: String) -> V? {
        for key in patterns.keys.sorted(by: { $0.count > $1.count }) where module == key || module.hasSuffix("." + key) {
            return patterns[key]
        }
        return nil
    }
    public func rank(for module: String) -> Int { Self.lookup(rankPattern, module) ?? r }
    public func alpha(for module: String) -> Double { Self.lookup(alphaPattern, module) ?? loraAlpha }
    /// The factor on B·A for one module: α/r, or α/√r with rsLoRA.
    public func scale(for module: String) -> Float {
        let rank = Double(rank(for: module)), a = alpha(for: module)
        return Float(useRslora ? a / rank.squareRoot() : a / rank)
    }

    /// The module paths (e.g. `model.layers.0.self_attn.q_proj`) of `config` that `targetModules` selects:
    /// a path matches a name equal to it or to a dot-separated suffix; `all-linear` selects every linear
    /// layer but the output head.
    public func targetModulePaths(for config: DecoderConfig) -> [String] {
        let linear = config.parameterShapes().compactMap { p -> String? in
            guard p.shape.count == 2, p.name.hasSuffix(".weight") else { return nil }
            let path = String(p.name.dropLast(".weight".count))
            let last = path.split(separator: ".").last.map(String.init) ?? path
            if ["wte", "wpe", "embed_tokens", "lm_head", "score"].contains(last) { return nil }
            return path
        }
        if targetModules == ["all-linear"] { return linear }
        return linear.filter { path in targetModules.contains { path == $0 || path.hasSuffix("." + $0) } }
    }

    static let typedKeys: Set<String> = ["peft_type", "r", "lora_alpha", "lora_dropout", "target_modules", "use_rslora",
                                         "use_dora", "base_model_name_or_path", "task_type", "bias", "fan_in_fan_out",
                                         "rank_pattern", "alpha_pattern"]

    init(json o: [String: JSONValue], file: String) throws {
        guard let r = o["r"]?.int, r > 0 else { throw ModelFileError("\(file): 'r' must be a positive integer") }
        var targets: [String]
        switch o["target_modules"] {
        case .string(let s)?: targets = [s]
        case .array(let a)?: targets = a.compactMap { $0.string }
        default: throw ModelFileError("\(file): 'target_modules' must be a list of module names or a string")
        }
        if targets.count == 1, targets[0] != "all-linear", targets[0].contains(where: { "*^$|()[]\\".contains($0) }) {
            throw ModelFileError("\(file): regular-expression target_modules ('\(targets[0])') are not supported; list module names")
        }
        targets.sort()
        let bias = o["bias"]?.string ?? "none"
        guard bias == "none" else { throw ModelFileError("\(file): bias '\(bias)' is not supported (only \"none\")") }
        self.init(r: r, loraAlpha: o["lora_alpha"]?.double ?? 8, loraDropout: o["lora_dropout"]?.double ?? 0,
                  targetModules: targets, useRslora: o["use_rslora"]?.bool ?? false, useDora: o["use_dora"]?.bool ?? false,
                  baseModelNameOrPath: o["base_model_name_or_path"]?.string, taskType: o["task_type"]?.string ?? "CAUSAL_LM",
                  bias: bias, fanInFanOut: o["fan_in_fan_out"]?.bool ?? false,
                  rankPattern: (o["rank_pattern"]?.object ?? [:]).compactMapValues { $0.int },
                  alphaPattern: (o["alpha_pattern"]?.object ?? [:]).compactMapValues { $0.double },
                  other: o.filter { !Self.typedKeys.contains($0.key) })
    }

    func encode() -> JSONValue {
        var o = other
        o["peft_type"] = .string("LORA")
        o["r"] = .int(r)
        o["lora_alpha"] = .number(loraAlpha)
        o["lora_dropout"] = .double(loraDropout)
        o["target_modules"] = .array(targetModules.sorted().map { .string($0) })
        o["use_rslora"] = .bool(useRslora)
        o["use_dora"] = .bool(useDora)
        o["base_model_name_or_path"] = baseModelNameOrPath.map { .string($0) } ?? .null
        o["task_type"] = .string(taskType)
        o["bias"] = .string(bias)
        o["fan_in_fan_out"] = .bool(fanInFanOut)
        o["rank_pattern"] = .object(rankPattern.mapValues { .int($0) })
        o["alpha_pattern"] = .object(alphaPattern.mapValues { .number($0) })
        return .object(o)
    }
}

/// Prompt tuning (`PROMPT_TUNING`) and prefix tuning (`PREFIX_TUNING`) settings.
public struct PromptLearningConfig: Equatable, Sendable {
    public enum Kind: String, Sendable { case promptTuning = "PROMPT_TUNING", prefixTuning = "PREFIX_TUNING" }
    public var kind: Kind
    public var numVirtualTokens: Int
    /// Prompt tuning: the embedding width (hidden size). Prefix tuning: the per-layer key (or value) width,
    /// kv_heads × head_dim.
    public var tokenDim: Int
    public var numLayers: Int
    /// Prefix tuning: the number of key/value heads.
    public var numAttentionHeads: Int
    /// 1 for decoder-only models.
    public var numTransformerSubmodules: Int
    /// Prefix tuning: width of the reparametrisation MLP (used only with `prefixProjection`).
    public var encoderHiddenSize: Int?
    /// Prefix tuning: trained through an MLP. The saved table is always the MLP's output, as PEFT saves it.
    public var prefixProjection: Bool
    /// Prompt tuning: "RANDOM" or "TEXT" (then `promptTuningInitText`, `tokenizerNameOrPath`).
    public var promptTuningInit: String?
    public var promptTuningInitText: String?
    public var tokenizerNameOrPath: String?
    public var baseModelNameOrPath: String?
    public var taskType: String
    public var other: [String: JSONValue]

    public init(kind: Kind, numVirtualTokens: Int, tokenDim: Int, numLayers: Int, numAttentionHeads: Int,
                numTransformerSubmodules: Int = 1, encoderHiddenSize: Int? = nil, prefixProjection: Bool = false,
                promptTuningInit: String? = nil, promptTuningInitText: String? = nil, tokenizerNameOrPath: String? = nil,
                baseModelNameOrPath: String? = nil, taskType: String = "CAUSAL_LM", other: [String: JSONValue]? = nil) {
        self.kind = kind; self.numVirtualTokens = numVirtualTokens; self.tokenDim = tokenDim; self.numLayers = numLayers
        self.numAttentionHeads = numAttentionHeads; self.numTransformerSubmodules = numTransformerSubmodules
        self.encoderHiddenSize = encoderHiddenSize ?? (kind == .prefixTuning ? tokenDim : nil)
        self.prefixProjection = prefixProjection
        self.promptTuningInit = promptTuningInit ?? (kind == .promptTuning ? "RANDOM" : nil)
        self.promptTuningInitText = promptTuningInitText; self.tokenizerNameOrPath = tokenizerNameOrPath
        self.baseModelNameOrPath = baseModelNameOrPath; self.taskType = taskType
        self.other = other ?? PromptLearningConfig.peftDefaults(kind)
    }

    /// The shape of `prompt_embeddings`: `[virtual tokens, token_dim]` for prompt tuning,
    /// `[virtual tokens, layers·2·token_dim]` for prefix tuning (entry `((2l+s)·kv_heads + h)·head_dim + d`).
    public var promptEmbeddingsShape: [Int] {
        let n = numVirtualTokens * numTransformerSubmodules
        return kind == .promptTuning ? [n, tokenDim] : [n, numLayers * 2 * tokenDim]
    }

    public static func peftDefaults(_ kind: Kind) -> [String: JSONValue] {
        var o: [String: JSONValue] = ["auto_mapping": .null, "inference_mode": .bool(true), "modules_to_save": .null,
                                     "peft_version": .string(PEFTAdapterFolder.peftFormatVersion), "revision": .null]
        if kind == .promptTuning { o["tokenizer_kwargs"] = .null } else { o["init_weights"] = .null }
        return o
    }

    static let typedKeys: Set<String> = ["peft_type", "num_virtual_tokens", "token_dim", "num_layers", "num_attention_heads",
                                         "num_transformer_submodules", "encoder_hidden_size", "prefix_projection",
                                         "prompt_tuning_init", "prompt_tuning_init_text", "tokenizer_name_or_path",
                                         "base_model_name_or_path", "task_type"]

    init(kind: Kind, json o: [String: JSONValue], file: String) throws {
        func need(_ k: String) throws -> Int {
            guard let v = o[k]?.int, v > 0 else { throw ModelFileError("\(file): '\(k)' must be a positive integer") }
            return v
        }
        self.init(kind: kind, numVirtualTokens: try need("num_virtual_tokens"), tokenDim: try need("token_dim"),
                  numLayers: try need("num_layers"), numAttentionHeads: try need("num_attention_heads"),
                  numTransformerSubmodules: o["num_transformer_submodules"]?.int ?? 1,
                  encoderHiddenSize: o["encoder_hidden_size"]?.int, prefixProjection: o["prefix_projection"]?.bool ?? false,
                  promptTuningInit: o["prompt_tuning_init"]?.string, promptTuningInitText: o["prompt_tuning_init_text"]?.string,
                  tokenizerNameOrPath: o["tokenizer_name_or_path"]?.string,
                  baseModelNameOrPath: o["base_model_name_or_path"]?.string, taskType: o["task_type"]?.string ?? "CAUSAL_LM",
                  other: o.filter { !Self.typedKeys.contains($0.key) })
    }

    func encode() -> JSONValue {
        var o = other
        func str(_ s: String?) -> JSONValue { s.map { .string($0) } ?? .null }
        o["peft_type"] = .string(kind.rawValue)
        o["num_virtual_tokens"] = .int(numVirtualTokens)
        o["token_dim"] = .int(tokenDim)
        o["num_layers"] = .int(numLayers)
        o["num_attention_heads"] = .int(numAttentionHeads)
        o["num_transformer_submodules"] = .int(numTransformerSubmodules)
        o["base_model_name_or_path"] = str(baseModelNameOrPath)
        o["task_type"] = .string(taskType)
        switch kind {
        case .promptTuning:
            o["prompt_tuning_init"] = str(promptTuningInit)
            o["prompt_tuning_init_text"] = str(promptTuningInitText)
            o["tokenizer_name_or_path"] = str(tokenizerNameOrPath)
        case .prefixTuning:
            o["encoder_hidden_size"] = .optionalInt(encoderHiddenSize)
            o["prefix_projection"] = .bool(prefixProjection)
        }
        return .object(o)
    }
}
