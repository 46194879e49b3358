import Foundation
import FinchKernels
import FinchGGUF
import FinchData

/// Reading a GGUF file (llama.cpp, Ollama, LM Studio) as a model: hyper-parameters from the `ARCH.*` keys,
/// llama.cpp's tensor names mapped to Hugging Face's, every tensor dequantised to float32 exactly as ggml does,
/// and the rearrangements llama.cpp's converter makes undone (the Q/K row permutation of Llama-family attention,
/// Gemma's stored 1 + w norm weights), so the decoder computes what transformers computes on the same weights.
///
/// The vocabulary and chat template inside the file are written once into a tokenizer folder in Finch's cache
/// (`tokenizer.json` or `tokenizer.model`, plus `tokenizer_config.json` with the chat template and special tokens),
/// so every consumer of a model folder finds its tokenizer the same way, and exported folders carry it.
public enum GGUFModelImport {
    /// Reads the whole model. With `keepQuantized`, the block projection weights stored in a format the
    /// kernels multiply by directly (`QuantFormat`) stay as those blocks (`HFModelFolder.quantized`, memory-mapped
    /// where no rearranging is needed) instead of being dequantised; everything else is float32 as always. The LM
    /// head's blocks are kept too, beside its float32 tensor, under `Decoder.inferenceHeadKey` (decoding reads them).
    public static func read(_ url: URL, keepQuantized: Bool = false) throws -> HFModelFolder {
        let file = try GGUFFile(contentsOf: url)
        let (config, plan) = try self.plan(file)
        var parameters: [String: Tensor] = [:]
        var quantized: [String: QuantizedMatrix] = [:]
        var types = Set<String>()
        let projections = keepQuantized && config.flavour != .gpt2 ? Set(config.projectionWeightNames) : []
        for p in plan {
            if projections.contains(p.name), let q = try quantizedMatrix(p, file: file) {
                quantized[p.name] = q
                types.insert(p.info.type.name)
                continue
            }
            // The head (often the tied embedding) also stays as its blocks for decoding; the fp32 copy below serves
            // the token lookups and training.
            if keepQuantized, p.name == config.headWeightName, p.transform == .none, let q = try quantizedMatrix(p, file: file) {
                quantized[Decoder.inferenceHeadKey] = q
            }
            let transposed = p.transform == .transpose
            var t = Tensor(shape: transposed ? [p.shape[1], p.shape[0]] : p.shape)
            guard t.count == p.info.elementCount else {
                throw ModelFileError("\(url.path): tensor '\(p.info.name)' has \(p.info.elementCount) elements, '\(p.name)' needs \(t.count)")
            }
            try file.dequantize(p.info, into: t.ptr)
            types.insert(p.info.type.name)
            switch p.transform {
            case .permuteRows(let heads): unpermuteRows(t, heads: heads)
            case .plusOne: for i in 0..<t.count { t.ptr[i] -= 1 }
            case .transpose: t = GGUFArchitecture.apply(.transpose, to: t)
            case .none: break
            }
            parameters[p.name] = t
        }
        let tokenizerFolder = try GGUFTokenizerFolder.materialize(file)
        // Every end-of-generation id (eos, eot, eom), as llama.cpp stops on all of them: gathered into the config.
        let gen = HFGenerationConfig(bosTokenId: config.bosTokenId,
                                     eosTokenIds: config.eosTokenIds ?? config.eosTokenId.map { [$0] } ?? [],
                                     padTokenId: config.padTokenId)
        return HFModelFolder(url: url, config: config, parameters: parameters, generationConfig: gen, finchInfo: nil,
                             tokenizerModel: HFModelFolder.tokenizerFile(in: tokenizerFolder), storedDTypes: types.sorted(),
                             quantized: quantized)
    }

    /// The blocks of a [out, in] projection as they are in the file, nil when the kernels cannot take its type.
    /// Unpermuted q/k rows are copied (a row of blocks moves whole); other tensors borrow the mapped file.
    static func quantizedMatrix(_ p: Item, file: GGUFFile) throws -> QuantizedMatrix? {
        guard let format = QuantFormat(p.info.type), p.shape.count == 2 else { return nil }
        let rows = p.shape[0], cols = p.shape[1], bytes = file.bytes(of: p.info)
        switch p.transform {
        case .none:
            return try QuantizedMatrix(format: format, rows: rows, cols: cols, borrowing: bytes.baseAddress!, owner: file)
        case .permuteRows(let heads):
            let rowBytes = p.info.rowByteCount
            var out = [UInt8](repeating: 0, count: rows * rowBytes)
            for (to, from) in unpermutedRowSources(rows: rows, heads: heads).enumerated() {
                out.withUnsafeMutableBytes { dst in
                    (dst.baseAddress! + to * rowBytes).copyMemory(from: bytes.baseAddress! + from * rowBytes, byteCount: rowBytes)
                }
            }
            return try QuantizedMatrix(format: format, rows: rows, cols: cols, bytes: out)
        default:
            return nil
        }
    }

    /// The decoder configuration of a GGUF file, checked against its tensor infos; no tensor is decoded.
    public static func config(of url: URL) throws -> DecoderConfig {
        try plan(GGUFFile(contentsOf: url)).0
    }

    /// One parameter to read: its HF name and shape, the GGUF tensor, and what to undo.
    struct Item {
        let name: String
        let shape: [Int]
        let info: GGUFTensorInfo
        /// What llama.cpp's converter did to the parameter, undone on reading (see `GGUFArchitecture.Transform`).
        let transform: GGUFArchitecture.Transform
    }

    /// The decoder configuration and the read plan, from metadata and tensor infos only.
    static func plan(_ file: GGUFFile) throws -> (DecoderConfig, [Item]) {
        let path = file.url.path
        let config = try GGUFArchitecture.config(file)
        var byName: [String: GGUFTensorInfo] = [:]
        for t in file.tensors { byName[t.name] = t }
        let arch = file.metadata["general.architecture"]?.string ?? ""
        var items: [Item] = []
        var problems: [String] = []
        var used = Set<String>()
        for (name, shape) in config.parameterShapes() {
            guard let ggufName = GGUFArchitecture.ggufName(of: name, config: config) else {
                problems.append("no GGUF tensor name for parameter '\(name)'"); continue
            }
            guard let info = byName[ggufName] else {
                problems.append("tensor '\(ggufName)' (for '\(name)', shape \(shape)) is missing"); continue
            }
            used.insert(ggufName)
            // ggml lists dimensions innermost first: a [out, in] matrix is ne = [in, out] (GPT-2's transposed Conv1D
            // weights [in, out] are stored as [out, in], so their ne is the HF shape itself).
            let transform = GGUFArchitecture.transform(of: name, shape: shape, config: config, arch: arch)
            let ggmlShape = transform == .transpose ? shape : Array(shape.reversed())
            guard info.shape == ggmlShape || (shape.count == 1 && info.shape.reduce(1, *) == shape[0]) else {
                problems.append("tensor '\(ggufName)' has ggml shape \(info.shape), '\(name)' needs \(ggmlShape)"); continue
            }
            guard info.type.canDequantize else {
                problems.append("tensor '\(ggufName)' has type \(info.type.name), which Finch cannot dequantise"); continue
            }
            items.append(Item(name: name, shape: shape, info: info, transform: transform))
        }
        // Tensors the decoder has no use for must not pass silently; a few are known extras.
        for t in file.tensors where !used.contains(t.name) && !GGUFArchitecture.ignorable(t.name, config: config) {
            problems.append("unexpected tensor '\(t.name)' \(t.shape) \(t.type.name)")
        }
        if !problems.isEmpty {
            let shown = problems.prefix(12).joined(separator: "\n  ")
            let more = problems.count > 12 ? "\n  … and \(problems.count - 12) more" : ""
            throw ModelFileError("\(path): the tensors do not match a \(arch) model with these hyper-parameters:\n  \(shown)\(more)")
        }
        return (config, items)
    }

    /// Inverse of llama.cpp's `permute`: GGUF row h·d + 2j + s holds HF row h·d + s·d/2 + j (d = head size).
    static func unpermuteRows(_ t: Tensor, heads: Int) {
        let rows = t.shape[0], cols = t.shape.count > 1 ? t.shape[1] : 1
        let src = t.copy()
        for (to, from) in unpermutedRowSources(rows: rows, heads: heads).enumerated() {
            (t.ptr + to * cols).update(from: src.ptr + from * cols, count: cols)
        }
    }

    /// For each HF row, the GGUF row it comes from (the identity when the rows do not split into heads).
    static func unpermutedRowSources(rows: Int, heads: Int) -> [Int] {
        var source = Array(0..<rows)
        let d = heads > 0 ? rows / heads : 0, half = d / 2
        guard heads > 0, d * heads == rows, half * 2 == d else { return source }
        for h in 0..<heads {
            for j in 0..<half {
                for s in 0..<2 { source[h * d + s * half + j] = h * d + 2 * j + s }
            }
        }
        return source
    }

}

/// The tokenizer folder made from a GGUF file's vocabulary, in Finch's cache.
public enum GGUFTokenizerFolder {
    /// `$FINCH_CACHE`, else `~/.cache/finch`.
    public static var cacheRoot: URL {
        if let c = ProcessInfo.processInfo.environment["FINCH_CACHE"], !c.isEmpty { return URL(fileURLWithPath: c) }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/finch")
    }

    /// Writes (once per distinct vocabulary) and returns the folder.
    public static func materialize(_ file: GGUFFile) throws -> URL {
        let tokenizer = try Tokenizers.load(gguf: file)
        let meta = file.metadata
        var config: [String: Any] = [:]
        func token(_ key: String) -> String? {
            guard let id = meta["tokenizer.ggml.\(key)"]?.int, id >= 0 else { return nil }
            return tokenizer.piece(id)
        }
        if let t = token("bos_token_id") { config["bos_token"] = t }
        if let t = token("eos_token_id") { config["eos_token"] = t }
        if let t = token("padding_token_id") { config["pad_token"] = t }
        if let t = token("unknown_token_id") { config["unk_token"] = t }
        config["add_bos_token"] = meta["tokenizer.ggml.add_bos_token"]?.bool ?? tokenizer.addsBOS
        config["add_eos_token"] = meta["tokenizer.ggml.add_eos_token"]?.bool ?? false
        if let template = meta["tokenizer.chat_template"]?.string { config["chat_template"] = template }
        config["model_max_length"] = meta["\(meta["general.architecture"]?.string ?? "").context_length"]?.int ?? 0
        let configData = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        // special_tokens_map.json: the same four tokens, for readers that look there (older transformers, vLLM).
        let specialMap = config.filter { ["bos_token", "eos_token", "pad_token", "unk_token"].contains($0.key) }
        let specialData = try JSONSerialization.data(withJSONObject: specialMap, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        // "v2": folders written before tokenizer.json (SentencePiece vocabularies) and special_tokens_map.json.
        let key = SHA256.hex(Data((tokenizer.fingerprint + "\nv2\n").utf8) + configData)
        let folder = cacheRoot.appendingPathComponent("gguf-tokenizers/\(key.prefix(24))")
        let done = folder.appendingPathComponent("tokenizer_config.json")
        if FileManager.default.fileExists(atPath: done.path) { return folder }
        // Built in a temporary folder and renamed, so a crash never leaves a half folder behind.
        let temp = folder.deletingLastPathComponent().appendingPathComponent(".\(folder.lastPathComponent).\(getpid())")
        try? FileManager.default.removeItem(at: temp)
        try FileManager.default.createDirectory(at: temp, withIntermediateDirectories: true)
        try tokenizer.save(toFolder: temp)
        // A SentencePiece-style vocabulary is also written as tokenizer.json, for transformers' fast tokenizers:
        // Finch itself keeps reading tokenizer.model (libsentencepiece), which is where its ids come from.
        if tokenizer is SentencePieceTokenizer {
            try GGUFSentencePieceJSON.tokenizerJSON(file).write(to: temp.appendingPathComponent(HFModelFolder.tokenizerJSONFile))
        }
        try specialData.write(to: temp.appendingPathComponent("special_tokens_map.json"), options: .atomic)
        // tokenizer_config.json lists the added tokens as transformers writes them (added_tokens_decoder): the same
        // entries as tokenizer.json's added_tokens. The GGUF export reads their types back (control or user-defined).
        var fullConfig = config
        let json = try? JSONSerialization.jsonObject(with: Data(contentsOf: temp.appendingPathComponent(HFModelFolder.tokenizerJSONFile)))
        if let added = (json as? [String: Any])?["added_tokens"] as? [[String: Any]] {
            var decoder: [String: Any] = [:]
            for var entry in added {
                guard let id = (entry.removeValue(forKey: "id") as? NSNumber)?.intValue else { continue }
                decoder[String(id)] = entry
            }
            fullConfig["added_tokens_decoder"] = decoder
        }
        try JSONSerialization.data(withJSONObject: fullConfig, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            .write(to: temp.appendingPathComponent("tokenizer_config.json"), options: .atomic)
        do { try FileManager.default.moveItem(at: temp, to: folder) } catch {
            try? FileManager.default.removeItem(at: temp)   // another process won the race: its folder is the same
            guard FileManager.default.fileExists(atPath: done.path) else { throw error }
        }
        return folder
    }
}
