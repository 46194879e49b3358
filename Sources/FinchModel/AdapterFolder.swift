import Foundation
import FinchKernels

/// One LoRA-adapted module's tensors: `A [r, in]`, `B [out, r]`, the factor on `B·A`, and DoRA's
/// per-output magnitude `[out]` when the adapter is DoRA.
public struct LoRAModuleWeights {
    public var a: Tensor
    public var b: Tensor
    public var scale: Float
    public var magnitude: Tensor?

    public init(a: Tensor, b: Tensor, scale: Float, magnitude: Tensor? = nil) {
        self.a = a; self.b = b; self.scale = scale; self.magnitude = magnitude
    }
    public var rank: Int { a.shape[0] }
    public var inFeatures: Int { a.shape[1] }
    public var outFeatures: Int { b.shape[0] }
}

/// A LoRA adapter's tensors keyed by module path as in the base model (`model.layers.0.self_attn.q_proj`).
public struct LoRAAdapterWeights {
    public var modules: [String: LoRAModuleWeights]
    public init(modules: [String: LoRAModuleWeights] = [:]) { self.modules = modules }

    /// PEFT's key prefix: `base_model.model.<module path>.lora_A.weight`.
    public static let keyPrefix = "base_model.model."

    /// The tensors of adapter_model.safetensors under PEFT's names.
    public func peftTensors() -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (path, m) in modules {
            out[Self.keyPrefix + path + ".lora_A.weight"] = m.a
            out[Self.keyPrefix + path + ".lora_B.weight"] = m.b
            if let mag = m.magnitude { out[Self.keyPrefix + path + ".lora_magnitude_vector"] = mag }
        }
        return out
    }

    /// Checks every module against the base model: the module's weight exists and A/B fit its in/out sizes
    /// (Llama Linear weights are `[out, in]`, GPT-2 Conv1D weights `[in, out]`).
    public func validate(against config: DecoderConfig) throws {
        let shapes = Dictionary(config.parameterShapes().map { ($0.name, $0.shape) }, uniquingKeysWith: { a, _ in a })
        for path in modules.keys.sorted() {
            let m = modules[path]!
            guard let w = shapes[path + ".weight"], w.count == 2 else {
                throw ModelFileError("LoRA module '\(path)' is not a linear layer of this \(config.hfArchitecture) model")
            }
            let (outF, inF) = config.flavour == .gpt2 ? (w[1], w[0]) : (w[0], w[1])
            if m.inFeatures != inF || m.outFeatures != outF {
                throw ModelFileError("LoRA module '\(path)': A \(m.a.shape) / B \(m.b.shape) do not fit the base weight \(w) (in \(inF), out \(outF))")
            }
        }
    }
}

/// Any adapter Finch reads from / writes to a PEFT folder.
public enum PEFTAdapter {
    case lora(LoRAAdapterConfig, LoRAAdapterWeights)
    /// `prompt_embeddings [virtual tokens, hidden]`.
    case promptTuning(PromptLearningConfig, promptEmbeddings: Tensor)
    /// `prompt_embeddings [virtual tokens, layers·2·kv_heads·head_dim]`.
    case prefixTuning(PromptLearningConfig, promptEmbeddings: Tensor)
}

/// A PEFT adapter folder: `adapter_config.json` + `adapter_model.safetensors`, as PEFT's `save_pretrained`
/// writes them (keys without the adapter name).
public enum PEFTAdapterFolder {
    public static let configFile = "adapter_config.json"
    public static let weightsFile = "adapter_model.safetensors"
    /// The PEFT release whose file layout Finch writes (`peft_version` in adapter_config.json).
    public static let peftFormatVersion = "0.21.2"

    /// The `peft_type` of an adapter folder ("LORA", "PROMPT_TUNING", "PREFIX_TUNING", "ADAPTER"…), "?" when absent.
    public static func peftType(of folder: URL) throws -> String {
        let configURL = folder.appendingPathComponent(configFile)
        guard FileManager.default.fileExists(atPath: configURL.path) else {
            throw ModelFileError("\(folder.path): not an adapter folder (no \(configFile))")
        }
        return try JSONValue.read(configURL)["peft_type"]?.string ?? "?"
    }

    /// `base_model_name_or_path` of any adapter folder, nil when it names none.
    public static func baseModel(of folder: URL) throws -> String? {
        _ = try peftType(of: folder)
        let configURL = folder.appendingPathComponent(configFile)
        guard let base = try JSONValue.read(configURL)["base_model_name_or_path"]?.string else { return nil }
        // The base is read from disk: a path that is not there (moved, deleted, or a Hub name) is named with the file it came from.
        guard FileManager.default.fileExists(atPath: base) else {
            throw ModelFileError("\(configURL.path): base_model_name_or_path '\(base)' does not exist; give the base model with --model BASE and this folder with --adapter \(folder.path)")
        }
        return base
    }

    /// A folder given where a model belongs: a model folder stands for itself; an adapter folder (adapter_config.json
    /// and no config.json) for its base, named by `base_model_name_or_path`, plus itself. `noBase` is the advice
    /// given when it names no base.
    public static func modelAndAdapter(_ url: URL, noBase: String) throws -> (model: URL, adapter: URL?) {
        let fm = FileManager.default
        guard fm.fileExists(atPath: url.appendingPathComponent(configFile).path),
              !fm.fileExists(atPath: url.appendingPathComponent(HFModelFolder.configFile).path) else { return (url, nil) }
        guard let base = try baseModel(of: url) else {
            throw ModelFileError("\(url.path) is an adapter folder without base_model_name_or_path in \(configFile); \(noBase)")
        }
        return (URL(fileURLWithPath: base), url)
    }

    /// Reads an adapter folder, checking every tensor's name and shape against adapter_config.json.
    public static func load(_ url: URL) throws -> PEFTAdapter {
        let configURL = url.appendingPathComponent(configFile), weightsURL = url.appendingPathComponent(weightsFile)
        guard FileManager.default.fileExists(atPath: configURL.path) else {
            throw ModelFileError("\(url.path): not a PEFT adapter folder (no \(configFile))")
        }
        guard let o = try JSONValue.read(configURL).object else { throw ModelFileError("\(configURL.path): not a JSON object") }
        let type = o["peft_type"]?.string ?? "?"
        guard FileManager.default.fileExists(atPath: weightsURL.path) else {
            throw ModelFileError("\(url.path): no \(weightsFile) (PyTorch .bin adapters are not read; re-save with safetensors)")
        }
        let file = try SafeTensors.File(url: weightsURL)
        switch type {
        case "LORA":
            let config = try LoRAAdapterConfig(json: o, file: configURL.path)
            return .lora(config, try loraWeights(file, config: config))
        case "PROMPT_TUNING", "PREFIX_TUNING":
            let kind = PromptLearningConfig.Kind(rawValue: type)!
            let config = try PromptLearningConfig(kind: kind, json: o, file: configURL.path)
            let extra = file.names.filter { $0 != "prompt_embeddings" }
            if !extra.isEmpty { throw ModelFileError("\(weightsURL.path): unexpected tensors \(extra) beside 'prompt_embeddings'") }
            guard let e = file.entries["prompt_embeddings"] else {
                throw ModelFileError("\(weightsURL.path): tensor 'prompt_embeddings' is missing")
            }
            guard e.shape == config.promptEmbeddingsShape else {
                throw ModelFileError("\(weightsURL.path): tensor 'prompt_embeddings' has shape \(e.shape), adapter_config.json expects \(config.promptEmbeddingsShape)")
            }
            let t = try file.tensor("prompt_embeddings")
            return kind == .promptTuning ? .promptTuning(config, promptEmbeddings: t) : .prefixTuning(config, promptEmbeddings: t)
        default:
            throw ModelFileError("\(configURL.path): peft_type '\(type)' is not supported (supported: LORA, PROMPT_TUNING, PREFIX_TUNING)")
        }
    }

    /// Reads a LoRA/DoRA adapter folder (an error for other adapter types).
    public static func loadLoRA(_ url: URL) throws -> (config: LoRAAdapterConfig, weights: LoRAAdapterWeights) {
        guard case .lora(let c, let w) = try load(url) else {
            throw ModelFileError("\(url.path): not a LoRA adapter")
        }
        return (c, w)
    }

    private static func loraWeights(_ file: SafeTensors.File, config: LoRAAdapterConfig) throws -> LoRAAdapterWeights {
        let path = file.url.path
        var parts: [String: [String: String]] = [:]   // module → role (A, B, M) → key
        for key in file.names {
            guard key.hasPrefix(LoRAAdapterWeights.keyPrefix) else {
                throw ModelFileError("\(path): unexpected tensor '\(key)' (LoRA keys start with '\(LoRAAdapterWeights.keyPrefix)')")
            }
            let rest = String(key.dropFirst(LoRAAdapterWeights.keyPrefix.count))
            let roles = [(".lora_A.weight", "A"), (".lora_B.weight", "B"), (".lora_magnitude_vector", "M")]
            guard let (suffix, role) = roles.first(where: { rest.hasSuffix($0.0) }) else {
                throw ModelFileError("\(path): unexpected tensor '\(key)' (expected <module>.lora_A.weight, .lora_B.weight or .lora_magnitude_vector)")
            }
            parts[String(rest.dropLast(suffix.count)), default: [:]][role] = key
        }
        var weights = LoRAAdapterWeights()
        for module in parts.keys.sorted() {
            let p = parts[module]!
            guard let aKey = p["A"], let bKey = p["B"] else {
                throw ModelFileError("\(path): module '\(module)' has \(p["A"] == nil ? "no lora_A" : "no lora_B") tensor")
            }
            let a = try file.tensor(aKey), b = try file.tensor(bKey)
            let r = config.rank(for: module)
            guard a.shape.count == 2, b.shape.count == 2, a.shape[0] == r, b.shape[1] == r else {
                throw ModelFileError("\(path): module '\(module)': lora_A \(a.shape) and lora_B \(b.shape) do not have rank r = \(r) ([r, in] and [out, r])")
            }
            var magnitude: Tensor? = nil
            if let mKey = p["M"] {
                guard config.useDora else { throw ModelFileError("\(path): '\(mKey)' present but use_dora is false") }
                magnitude = try file.tensor(mKey)
                guard magnitude!.count == b.shape[0] else {
                    throw ModelFileError("\(path): '\(mKey)' has shape \(magnitude!.shape), expected [\(b.shape[0])]")
                }
            } else if config.useDora {
                throw ModelFileError("\(path): use_dora is true but module '\(module)' has no lora_magnitude_vector")
            }
            weights.modules[module] = LoRAModuleWeights(a: a, b: b, scale: config.scale(for: module), magnitude: magnitude)
        }
        if weights.modules.isEmpty { throw ModelFileError("\(path): no LoRA tensors") }
        return weights
    }

    /// Writes adapter_model.safetensors, then adapter_config.json (each atomically), after checking that the
    /// tensors fit the configuration.
    public static func save(_ adapter: PEFTAdapter, to url: URL) throws {
        let tensors: [String: Tensor]
        let json: JSONValue
        switch adapter {
        case .lora(let c, let w):
            for (module, m) in w.modules {
                let r = c.rank(for: module)
                guard m.a.shape.count == 2, m.b.shape.count == 2, m.a.shape[0] == r, m.b.shape[1] == r else {
                    throw ModelFileError("cannot save LoRA module '\(module)': A \(m.a.shape), B \(m.b.shape) do not have rank \(r)")
                }
                if c.useDora != (m.magnitude != nil) {
                    throw ModelFileError("cannot save LoRA module '\(module)': use_dora is \(c.useDora) but the magnitude vector is \(m.magnitude == nil ? "missing" : "present")")
                }
            }
            tensors = w.peftTensors()
            json = c.encode()
        case .promptTuning(let c, let t), .prefixTuning(let c, let t):
            guard t.shape == c.promptEmbeddingsShape else {
                throw ModelFileError("cannot save \(c.kind.rawValue) adapter: prompt_embeddings has shape \(t.shape), the configuration expects \(c.promptEmbeddingsShape)")
            }
            tensors = ["prompt_embeddings": t]
            json = c.encode()
        }
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        try SafeTensors.write(tensors, to: url.appendingPathComponent(weightsFile))
        try AtomicFile.write(json.data(), to: url.appendingPathComponent(configFile))
    }
}
