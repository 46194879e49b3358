import Foundation
import FinchKernels

// Reading Hugging Face model folders.

/// The weight files of a folder: `model.safetensors`, or the shards named by `model.safetensors.index.json`,
/// opened (memory-mapped) with their headers; tensors are decoded only on request.
struct HFWeightFiles {
    /// Tensor name as stored → the file holding it.
    var location: [String: SafeTensors.File] = [:]
    var files: [SafeTensors.File] = []

    init(folder: URL) throws {
        let single = folder.appendingPathComponent(HFModelFolder.weightsFile)
        let index = folder.appendingPathComponent(HFModelFolder.indexFile)
        let fm = FileManager.default
        if fm.fileExists(atPath: single.path) {
            let f = try SafeTensors.File(url: single)
            files = [f]
            for name in f.entries.keys { location[name] = f }
        } else if fm.fileExists(atPath: index.path) {
            guard let map = try JSONValue.read(index)["weight_map"]?.object else {
                throw ModelFileError("\(index.path): no 'weight_map' object")
            }
            var opened: [String: SafeTensors.File] = [:]
            for shard in Set(map.values.compactMap { $0.string }).sorted() {
                let url = folder.appendingPathComponent(shard)
                guard fm.fileExists(atPath: url.path) else {
                    throw ModelFileError("\(index.path): shard '\(shard)' is listed but missing from \(folder.path)")
                }
                let f = try SafeTensors.File(url: url)
                opened[shard] = f
                files.append(f)
            }
            for (name, v) in map {
                guard let shard = v.string, let f = opened[shard] else {
                    throw ModelFileError("\(index.path): weight_map entry for '\(name)' is not a file name")
                }
                guard f.entries[name] != nil else {
                    throw ModelFileError("\(f.url.path): tensor '\(name)' is listed in \(HFModelFolder.indexFile) but not in this shard")
                }
                location[name] = f
            }
            // A shard may hold tensors the index forgot; they still count (and get validated).
            for f in files { for name in f.entries.keys where location[name] == nil { location[name] = f } }
        } else if fm.fileExists(atPath: folder.appendingPathComponent("pytorch_model.bin").path)
                    || fm.fileExists(atPath: folder.appendingPathComponent("pytorch_model.bin.index.json").path) {
            throw ModelFileError("\(folder.path): only PyTorch pickle weights (pytorch_model.bin); Finch reads safetensors: re-save with save_pretrained(safe_serialization=True)")
        } else {
            throw ModelFileError("\(folder.path): no \(HFModelFolder.weightsFile) or \(HFModelFolder.indexFile)")
        }
    }

    func entry(_ name: String) -> SafeTensors.Entry? { location[name]?.entries[name] }
    /// "model.safetensors" or the shard's file name, for messages.
    func fileName(_ name: String) -> String { location[name]?.url.lastPathComponent ?? HFModelFolder.weightsFile }
}

extension HFModelFolder {
    /// The dtypes a parameter may be stored in; all are converted to float32.
    public static let parameterDTypes: Set<String> = ["F32", "F16", "BF16", "F64"]

    /// Buffers some checkpoints carry that are not parameters (old GPT-2's causal-mask `attn.bias` /
    /// `attn.masked_bias`, Llama's `rotary_emb.inv_freq`): ignored on import.
    public static func isIgnorableBuffer(_ name: String) -> Bool {
        let parts = name.split(separator: ".")
        guard let last = parts.last else { return false }
        if last == "inv_freq" { return true }
        if parts.count >= 2, parts[parts.count - 2] == "attn", last == "bias" || last == "masked_bias" { return true }
        return false
    }

    /// Maps a stored tensor name to Finch's (HF) name: old GPT-2 checkpoints omit the `transformer.` prefix.
    static func canonicalName(_ stored: String, flavour: Flavour) -> String {
        if flavour == .gpt2, !stored.hasPrefix("transformer."), !stored.hasPrefix("lm_head.") { return "transformer." + stored }
        return stored
    }

    /// Reads the folder: config, every parameter (validated), generation config, finch.json, tokenizer path.
    /// `keepQuantized`: a GGUF file's projection weights stay as their quantised blocks where the kernels take
    /// their type (see `GGUFModelImport.read`); a safetensors folder is always float32.
    public static func read(_ url: URL, keepQuantized: Bool = false) throws -> HFModelFolder {
        if isGGUF(url) { return try GGUFModelImport.read(url, keepQuantized: keepQuantized) }
        let configURL = url.appendingPathComponent(configFile)
        guard FileManager.default.fileExists(atPath: configURL.path) else {
            if FileManager.default.fileExists(atPath: url.appendingPathComponent(PEFTAdapterFolder.configFile).path) {
                throw ModelFileError("\(url.path) is a PEFT adapter folder (\(PEFTAdapterFolder.configFile)), not a model: give its base model with --model BASE and this folder with --adapter \(url.path)")
            }
            throw ModelFileError("\(url.path): not a model folder (no \(configFile))")
        }
        let config = try HFConfig.load(configURL)
        let weights = try HFWeightFiles(folder: url)
        let plan = try importPlan(config: config, weights: weights, folder: url)

        var parameters: [String: Tensor] = [:]
        var dtypes = Set<String>()
        for (name, stored) in plan {
            let file = weights.location[stored]!
            dtypes.insert(file.entries[stored]!.dtype)
            parameters[name] = try file.tensor(stored)
        }
        // A tied head may still be stored; it must then be the embedding itself.
        if config.tieWordEmbeddings, config.numLabels == nil, weights.entry("lm_head.weight") != nil {
            let embName = config.flavour == .gpt2 ? "transformer.wte.weight" : "model.embed_tokens.weight"
            let head = try weights.location["lm_head.weight"]!.tensor("lm_head.weight")
            if let emb = parameters[embName], head.shape != emb.shape || head.array != emb.array {
                throw ModelFileError("\(url.path)/\(weights.fileName("lm_head.weight")): tie_word_embeddings is true but 'lm_head.weight' differs from '\(embName)'")
            }
        }

        let genURL = url.appendingPathComponent(generationConfigFile)
        let gen = FileManager.default.fileExists(atPath: genURL.path) ? try HFGenerationConfig.load(genURL) : nil
        let finchURL = url.appendingPathComponent(finchFile)
        var info = FileManager.default.fileExists(atPath: finchURL.path) ? try FinchModelInfo.load(finchURL) : nil
        info?.flavour = config.flavour   // config.json is the authority on the architecture
        return HFModelFolder(url: url, config: config, parameters: parameters, generationConfig: gen, finchInfo: info,
                             tokenizerModel: tokenizerFile(in: url), storedDTypes: dtypes.sorted())
    }

    /// Reads config.json and every parameter; see `read(_:)` for the rest of the folder.
    public static func load(_ url: URL) throws -> (config: DecoderConfig, parameters: [String: Tensor]) {
        let f = try read(url)
        return (f.config, f.parameters)
    }

    /// Matches stored tensors to the parameters `config` expects (Finch name → stored name), from the headers
    /// only, so that a wrong file fails before any tensor is decoded. Every problem is reported at once.
    static func importPlan(config: DecoderConfig, weights: HFWeightFiles, folder: URL) throws -> [(String, String)] {
        let expected = config.parameterShapes()
        let expectedNames = Set(expected.map { $0.name })
        var byName: [String: String] = [:]   // Finch name → stored name
        var problems: [String] = []
        for stored in weights.location.keys.sorted() {
            let name = canonicalName(stored, flavour: config.flavour)
            if expectedNames.contains(name) {
                if let other = byName[name] {
                    problems.append("tensor '\(name)' is stored twice ('\(other)' and '\(stored)')")
                }
                byName[name] = stored
            } else if isIgnorableBuffer(name) {
                continue
            } else if name == "lm_head.weight", config.tieWordEmbeddings, config.numLabels == nil {
                continue   // checked against the embedding in read(_:)
            } else {
                let e = weights.entry(stored)!
                problems.append("\(weights.fileName(stored)): unexpected tensor '\(stored)' \(e.shape) (not a parameter of \(config.hfArchitecture) with this config.json)")
            }
        }
        var plan: [(String, String)] = []
        for (name, shape) in expected {
            guard let stored = byName[name] else {
                problems.append("tensor '\(name)' (shape \(shape)) is missing")
                continue
            }
            let e = weights.entry(stored)!
            if e.shape != shape {
                problems.append("\(weights.fileName(stored)): tensor '\(name)' has shape \(e.shape), config.json expects \(shape)")
            } else if !parameterDTypes.contains(e.dtype) {
                problems.append("\(weights.fileName(stored)): tensor '\(name)' has dtype \(e.dtype), expected a float type (F32, F16, BF16)")
            } else {
                plan.append((name, stored))
            }
        }
        if !problems.isEmpty {
            let shown = problems.prefix(12).joined(separator: "\n  ")
            let more = problems.count > 12 ? "\n  … and \(problems.count - 12) more" : ""
            throw ModelFileError("\(folder.path): the weights do not match config.json (\(config.hfArchitecture)):\n  \(shown)\(more)")
        }
        return plan
    }
}

/// What a folder holds, read from headers only (no tensor decoded): for `finch inspect`.
public struct HFModelSummary {
    public let config: DecoderConfig
    public let architecture: String
    /// Stored dtype → number of tensors in it.
    public let dtypeCounts: [String: Int]
    /// Number of weight files (1, or the shard count).
    public let weightFiles: [String]
    public let tensorCount: Int
    public let parameterCount: Int
    public let weightBytes: Int
    public let hasTokenizer: Bool
    public let generationConfig: HFGenerationConfig?
    public let finchInfo: FinchModelInfo?
    /// nil when every expected tensor is present with the right shape; else the validation error text.
    public let problem: String?

    /// Reads config.json and the safetensors headers of `url`.
    public static func inspect(_ url: URL) throws -> HFModelSummary {
        let config = try HFConfig.load(url.appendingPathComponent(HFModelFolder.configFile))
        let weights = try HFWeightFiles(folder: url)
        var problem: String? = nil
        do { _ = try HFModelFolder.importPlan(config: config, weights: weights, folder: url) } catch { problem = "\(error)" }
        var counts: [String: Int] = [:]
        var bytes = 0
        for f in weights.files { for e in f.entries.values { counts[e.dtype, default: 0] += 1; bytes += e.range.count } }
        let fm = FileManager.default
        let gen = url.appendingPathComponent(HFModelFolder.generationConfigFile)
        let fin = url.appendingPathComponent(HFModelFolder.finchFile)
        return HFModelSummary(
            config: config, architecture: config.hfArchitecture, dtypeCounts: counts,
            weightFiles: weights.files.map { $0.url.lastPathComponent }, tensorCount: weights.location.count,
            parameterCount: config.parameterCount, weightBytes: bytes,
            hasTokenizer: HFModelFolder.tokenizerFile(in: url) != nil,
            generationConfig: fm.fileExists(atPath: gen.path) ? try HFGenerationConfig.load(gen) : nil,
            finchInfo: fm.fileExists(atPath: fin.path) ? try FinchModelInfo.load(fin) : nil,
            problem: problem)
    }
}
