import Foundation
import FinchKernels

// Writing Hugging Face model folders that transformers' `from_pretrained` loads.

extension HFModelFolder {
    /// transformers' default `max_shard_size` (its "2GB" is decimal; Finch uses 2 GiB).
    public static let defaultShardSize = 2 << 30

    /// Writes a model folder: weights (`model.safetensors`, or `model-0000i-of-0000N.safetensors` shards plus
    /// `model.safetensors.index.json` when the float32 weights exceed `shardSize` bytes), `generation_config.json`
    /// (causal LMs; derived from `config` when not given), `finch.json`, an optional copy of `tokenizerModel`,
    /// copies of `extraFiles` (by file name: chat_template.json, tokenizer_config.json…), and `config.json`.
    ///
    /// Every file is written atomically, and config.json is removed first and written last, so a reader sees
    /// either no model or a complete one — never new weights under an old config. Shards and index files of an
    /// earlier save into the same folder that this one does not use are removed. Other files are left alone.
    ///
    /// - Parameters:
    ///   - parameters: every name of `config.parameterShapes()` with that shape; a tied model's
    ///     `lm_head.weight` may be given and is then dropped (not written, as transformers does).
    public static func save(config: DecoderConfig, parameters: [String: Tensor], to url: URL,
                            shardSize: Int = defaultShardSize, generationConfig: HFGenerationConfig? = nil,
                            finchInfo: FinchModelInfo? = nil, tokenizerModel: URL? = nil, extraFiles: [URL] = []) throws {
        let ordered = try exportOrder(config: config, parameters: parameters)
        let fm = FileManager.default
        try fm.createDirectory(at: url, withIntermediateDirectories: true)
        let configURL = url.appendingPathComponent(configFile)
        if fm.fileExists(atPath: configURL.path) { try fm.removeItem(at: configURL) }

        let shards = shardPlan(ordered, shardSize: shardSize)
        let existing = (try? fm.contentsOfDirectory(atPath: url.path)) ?? []
        let oldShards = existing.filter { isShardFileName($0) }
        let single = url.appendingPathComponent(weightsFile), index = url.appendingPathComponent(indexFile)
        if shards.count == 1 {
            try SafeTensors.write(Dictionary(uniqueKeysWithValues: shards[0].map { ($0.0, $0.1) }), to: single)
            if fm.fileExists(atPath: index.path) { try fm.removeItem(at: index) }
            for name in oldShards { try fm.removeItem(at: url.appendingPathComponent(name)) }
        } else {
            var weightMap: [String: JSONValue] = [:]
            var names: [String] = []
            var totalSize = 0, totalParameters = 0
            for (i, shard) in shards.enumerated() {
                let name = String(format: "model-%05d-of-%05d.safetensors", i + 1, shards.count)
                names.append(name)
                try SafeTensors.write(Dictionary(uniqueKeysWithValues: shard.map { ($0.0, $0.1) }), to: url.appendingPathComponent(name))
                for (tname, t) in shard {
                    weightMap[tname] = .string(name)
                    totalSize += 4 * t.count
                    totalParameters += t.count
                }
            }
            // The single file would win over the index (as in transformers): remove it before the index appears.
            if fm.fileExists(atPath: single.path) { try fm.removeItem(at: single) }
            for name in oldShards where !names.contains(name) { try fm.removeItem(at: url.appendingPathComponent(name)) }
            let indexJSON = JSONValue.object([
                "metadata": .object(["total_size": .int(totalSize), "total_parameters": .int(totalParameters)]),
                "weight_map": .object(weightMap),
            ])
            try AtomicFile.write(indexJSON.data(), to: index)
        }

        if config.numLabels == nil {
            let gen = generationConfig ?? HFGenerationConfig(from: config)
            try AtomicFile.write(gen.encode().data(), to: url.appendingPathComponent(generationConfigFile))
        }
        if let tok = tokenizerModel {
            // The tokenizer file under its own name (tokenizer.model / tokenizer.json) and the files beside it that
            // describe it (tokenizer_config.json with the chat template, special_tokens_map.json, chat_template.jinja).
            // A SentencePiece model is always `tokenizer.model`, a tokenizers file always `tokenizer.json`.
            let tokName = tok.pathExtension == "json" ? tokenizerJSONFile : tokenizerFile
            // (tokenizer.json beside a tokenizer.model is the same vocabulary for transformers' fast tokenizers.)
            let companions = tokenizerCompanionFiles.map { tok.deletingLastPathComponent().appendingPathComponent($0) }
                .filter { $0.standardizedFileURL != tok.standardizedFileURL && fm.fileExists(atPath: $0.path) }
            for file in [tok] + companions {
                let dest = url.appendingPathComponent(file == tok ? tokName : file.lastPathComponent)
                guard file.standardizedFileURL != dest.standardizedFileURL else { continue }
                guard let data = try? Data(contentsOf: file) else { throw ModelFileError("cannot read tokenizer file \(file.path)") }
                try AtomicFile.write(data, to: dest)
            }
        }
        for file in extraFiles where file.standardizedFileURL != url.appendingPathComponent(file.lastPathComponent).standardizedFileURL {
            guard let data = try? Data(contentsOf: file) else { throw ModelFileError("cannot read \(file.path)") }
            try AtomicFile.write(data, to: url.appendingPathComponent(file.lastPathComponent))
        }
        // finch.json: other writers' keys (e.g. a chat template recorded earlier) are kept unless replaced.
        let finchURL = url.appendingPathComponent(finchFile)
        var finch: [String: JSONValue] = [:]
        if FileManager.default.fileExists(atPath: finchURL.path) {   // kept keys: a damaged file is an error, not dropped
            guard let o = try JSONValue.read(finchURL).object else { throw ModelFileError("\(finchURL.path): not a JSON object") }
            finch = o
        }
        let info = finchInfo ?? FinchModelInfo(flavour: config.flavour)
        for (k, v) in info.encode().object! where v != .null || finch[k] == nil { finch[k] = v }
        finch["flavour"] = .string(config.flavour.rawValue)
        try AtomicFile.write(JSONValue.object(finch).data(), to: finchURL)
        try HFConfig.save(config, to: configURL)
    }

    /// `model-00001-of-00003.safetensors` and the like.
    static func isShardFileName(_ name: String) -> Bool {
        name.hasPrefix("model-") && name.hasSuffix(".safetensors") && name.contains("-of-")
    }

    /// The parameters to write, in model order, after checking them against the configuration.
    static func exportOrder(config: DecoderConfig, parameters: [String: Tensor]) throws -> [(String, Tensor)] {
        var problems: [String] = []
        var out: [(String, Tensor)] = []
        let expected = config.parameterShapes()
        for (name, shape) in expected {
            guard let t = parameters[name] else { problems.append("tensor '\(name)' (shape \(shape)) is missing"); continue }
            if t.shape != shape { problems.append("tensor '\(name)' has shape \(t.shape), the configuration expects \(shape)") }
            out.append((name, t))
        }
        let names = Set(expected.map { $0.name })
        for name in parameters.keys.sorted() where !names.contains(name) {
            if name == "lm_head.weight", config.tieWordEmbeddings, config.numLabels == nil { continue }
            problems.append("unexpected tensor '\(name)' \(parameters[name]!.shape) (not a parameter of \(config.hfArchitecture))")
        }
        if !problems.isEmpty {
            throw ModelFileError("cannot save the model: the parameters do not match the configuration:\n  " + problems.prefix(12).joined(separator: "\n  "))
        }
        return out
    }

    /// Splits tensors, in order, into shards of at most `shardSize` float32 bytes (a larger tensor gets a shard
    /// of its own), as transformers' `split_torch_state_dict_into_shards` does.
    static func shardPlan(_ tensors: [(String, Tensor)], shardSize: Int) -> [[(String, Tensor)]] {
        var shards: [[(String, Tensor)]] = [[]]
        var size = 0
        for (name, t) in tensors {
            let bytes = 4 * t.count
            if size + bytes > shardSize, !shards[shards.count - 1].isEmpty {
                shards.append([])
                size = 0
            }
            shards[shards.count - 1].append((name, t))
            size += bytes
        }
        return shards
    }
}
