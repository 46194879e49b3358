import Foundation
import FinchKernels
import FinchGGUF
import FinchData

/// What `GGUFModelExport` writes.
public struct GGUFExportOptions: Sendable {
    /// The type of every 2-D weight (1-D tensors — norms, biases — stay F32, as llama.cpp's converter keeps them).
    public var type: GGMLType
    /// Per-tensor types by GGUF name, taking precedence over `type` where Finch can write them (a re-export in the
    /// source file's own mix: ``GGUFModelExport/sourceTypes(of:)``).
    public var typeOverrides: [String: GGMLType] = [:]
    /// `general.name` (default: the source GGUF's, else the model folder's name).
    public var name: String? = nil
    /// Quantisation threads (0: all processors).
    public var threads = 0

    public init(type: GGMLType, typeOverrides: [String: GGMLType] = [:], name: String? = nil) {
        self.type = type; self.typeOverrides = typeOverrides; self.name = name
    }
}

/// What was written.
public struct GGUFExportSummary: Sendable {
    public var architecture = ""
    public var tensorCount = 0
    /// Tensors per ggml type name.
    public var typeCounts: [String: Int] = [:]
    /// Tensors written in another type than asked for, and why.
    public var fallbacks: [String] = []
    /// Things the reader should know (no chat template, tokenizer padded, …).
    public var notes: [String] = []
    public var fileSize = 0
}

/// Writing a Finch model as a GGUF file that llama.cpp (and Ollama, LM Studio) loads: the inverse of
/// `GGUFModelImport`. Hyper-parameters become the `ARCH.*` keys llama.cpp reads, Hugging Face parameter names become
/// llama.cpp's tensor names, Llama-family q/k rows are permuted as llama.cpp's converter permutes them, Gemma's norms
/// are stored as 1 + w, GPT-2's Conv1D weights are transposed to [out, in]; the tokenizer becomes `tokenizer.ggml.*`
/// (SentencePiece → "llama", byte-level BPE → "gpt2" with its `pre`), with the special ids, the Jinja chat template
/// and `general.*`. A model read from a GGUF file keeps that file's `general.*` and `tokenizer.*` keys as they were.
public enum GGUFModelExport {
    /// The `--type` names and their ggml types.
    public static let types: [(name: String, type: GGMLType)] = [
        ("f32", .f32), ("f16", .f16), ("bf16", .bf16), ("q8_0", .q8_0), ("q4_0", .q4_0), ("q4_k", .q4_K), ("q6_k", .q6_K),
    ]

    public static func type(named name: String) -> GGMLType? { types.first { $0.name == name.lowercased() }?.type }

    /// Writes `model` to `url` through a temporary name in the same folder and a rename, so a failure never leaves a
    /// partial file. An existing `url` is refused unless `overwrite`.
    @discardableResult
    public static func write(_ model: HFModelFolder, to url: URL, options: GGUFExportOptions, overwrite: Bool = false) throws -> GGUFExportSummary {
        try checkOutput(url, overwrite: overwrite)
        let (writer, summary) = try self.writer(for: model, options: options)
        return try writeAtomically(writer, summary: summary, to: url, overwrite: overwrite)
    }

    /// Writes `writer` to `url` via a temporary file and a rename (shared with the adapter export).
    static func writeAtomically(_ writer: GGUFWriter, summary: GGUFExportSummary, to url: URL, overwrite: Bool) throws -> GGUFExportSummary {
        let fm = FileManager.default
        try checkOutput(url, overwrite: overwrite)
        let dir = url.deletingLastPathComponent()
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        do {
            try writer.write(to: tmp)
            guard rename(tmp.path, url.path) == 0 else { throw ModelFileError("rename failed: \(String(cString: strerror(errno)))") }
        } catch {
            try? fm.removeItem(at: tmp)
            if let e = error as? GGUFError, e.kind == .io { throw ModelFileError("cannot write \(url.path): \(e.message)") }
            throw error
        }
        var s = summary
        s.fileSize = (try? fm.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
        return s
    }

    /// Refuses an output path that is a folder, or an existing file unless `overwrite` (checked before any work).
    static func checkOutput(_ url: URL, overwrite: Bool) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) {
            if isDir.boolValue { throw ModelFileError("\(url.path) is a folder; --out names the .gguf file to write") }
            if !overwrite { throw ModelFileError("\(url.path) exists; pass --overwrite to replace it") }
        }
    }

    /// Every tensor type of a GGUF file by name (for ``GGUFExportOptions/typeOverrides``).
    public static func sourceTypes(of url: URL) throws -> [String: GGMLType] {
        Dictionary(uniqueKeysWithValues: try GGUFFile(contentsOf: url).tensors.map { ($0.name, $0.type) })
    }

    /// The metadata and tensors of the file (tensor data is produced while writing).
    public static func writer(for model: HFModelFolder, options: GGUFExportOptions) throws -> (GGUFWriter, GGUFExportSummary) {
        let config = model.config
        if config.numLabels != nil {
            throw ModelFileError("\(model.url.path) is a sequence-classification model (score head); GGUF export writes causal language models")
        }
        let source: GGUFFile? = HFModelFolder.isGGUF(model.url) ? try GGUFFile(contentsOf: model.url) : nil
        var arch = GGUFArchitecture.name(of: config.flavour)
        if let a = source?.architecture, GGUFArchitecture.supported.contains(a), GGUFArchitecture.flavour(a) == config.flavour { arch = a }
        var w = GGUFWriter()
        var summary = GGUFExportSummary()
        summary.architecture = arch

        // general.*: the source file's as they were, else Finch's.
        w.set("general.architecture", arch)
        w.set("general.type", "model")
        let derivedKeys = Set(["general.file_type", "general.quantization_version", "general.alignment"])
        if let source {
            for key in source.metadataKeys where !derivedKeys.contains(key) { w.set(key, source.metadata[key]!) }
            w.set("general.architecture", arch)
        }
        if let name = options.name { w.set("general.name", name) }
        else if w.metadata["general.name"] == nil { w.set("general.name", model.url.deletingPathExtension().lastPathComponent) }

        for (key, value) in try GGUFArchitecture.hyperParameters(config, arch: arch) { w.set(key, value) }
        w.set("general.file_type", uint32: fileType(options.type))

        if source == nil {
            try tokenizerKeys(model, config: config, into: &w, summary: &summary)
        } else if source?.metadata["tokenizer.ggml.model"] == nil {
            summary.notes.append("the source file carries no vocabulary, so neither does the export")
        }
        if w.metadata["tokenizer.chat_template"] == nil { summary.notes.append("no chat template: the model folder has none (llama.cpp will fall back to its default)") }

        // Tensors: in the source file's order when there is one, else the decoder's.
        var plan = try GGUFArchitecture.exportPlan(config, arch: arch)
        if let source {
            let order = Dictionary(uniqueKeysWithValues: source.tensors.enumerated().map { ($0.element.name, $0.offset) })
            plan.sort { (order[$0.ggufName] ?? Int.max, 0) < (order[$1.ggufName] ?? Int.max, 0) }
        }
        if let factors = try GGUFArchitecture.ropeFactors(config) {   // Llama 3 RoPE scaling, as llama.cpp's converter
            let t = Tensor(shape: [factors.count])
            for (i, f) in factors.enumerated() { t.ptr[i] = f }
            try addTensor(&w, &summary, name: "rope_freqs.weight", data: t, ggmlShape: [factors.count], type: .f32, options: options)
        }
        var anyQuantized = false
        for item in plan {
            guard let hf = item.hfName, let t = model.parameters[hf] else {
                throw ModelFileError("\(model.url.path): no parameter '\(item.hfName ?? item.ggufName)' for tensor '\(item.ggufName)'")
            }
            let shape = item.shape
            let type = chooseType(item.ggufName, shape: shape, options: options, tied: config.tieWordEmbeddings, summary: &summary)
            anyQuantized = anyQuantized || type.isQuantized
            try addTensor(&w, &summary, name: item.ggufName, data: t, ggmlShape: shape, type: type, options: options,
                          transform: item.transform, source: source)
        }
        if anyQuantized { w.set("general.quantization_version", uint32: 2) }
        if !options.typeOverrides.isEmpty, let ft = source?.metadata["general.file_type"],
           plan.allSatisfy({ options.typeOverrides[$0.ggufName] != nil }) {
            w.set("general.file_type", ft)   // the source's own mix, kept
        }
        return (w, summary)
    }

    /// llama.cpp's `llama_ftype` for a file whose weights are mostly `type` (the "pure" K variants are the _S ones).
    static func fileType(_ type: GGMLType) -> Int {
        switch type {
        case .f32: return 0
        case .f16: return 1
        case .q4_0: return 2
        case .q4_1: return 3
        case .q8_0: return 7
        case .q5_0: return 8
        case .q5_1: return 9
        case .q4_K: return 14
        case .q6_K: return 18
        case .bf16: return 32
        default: return 1
        }
    }

    static func chooseType(_ name: String, shape: [Int], options: GGUFExportOptions, tied: Bool, summary: inout GGUFExportSummary) -> GGMLType {
        if let o = options.typeOverrides[name], GGMLQuantizer.canQuantize(o), shape[0] % o.blockSize == 0 { return o }
        if shape.count == 1 { return .f32 }
        var t = options.type
        // As llama-quantize: below 8 bits, the output head (the token embedding when it is tied) is kept at Q6_K, or
        // Q8_0 when its rows do not fill the asked type's blocks.
        if [.q4_0, .q4_1, .q5_0, .q5_1, .q4_K].contains(t) && (name == "output.weight" || (tied && name == "token_embd.weight")) {
            t = shape[0] % t.blockSize != 0 ? .q8_0 : .q6_K
        }
        if shape[0] % t.blockSize == 0 { return t }
        // llama-quantize's fallbacks for rows that do not fill whole blocks: Q4_K → Q5_0, Q6_K → Q8_0, else F16.
        var fallback: GGMLType = t == .q4_K ? .q5_0 : t == .q6_K ? .q8_0 : .f16
        if shape[0] % fallback.blockSize != 0 { fallback = .f16 }
        summary.fallbacks.append("\(name): rows of \(shape[0]) are not whole \(t.name) blocks of \(t.blockSize); written as \(fallback.name)")
        return fallback
    }

    /// Adds one tensor, quantised to `type` by ggml's reference quantiser. When the model came from a GGUF `source`
    /// holding this tensor in the same type and shape, and the weights are still exactly that tensor's values (not
    /// tuned, not merged), the source's blocks are copied instead: re-quantising would lose an importance-matrix
    /// quantisation (Gemma 3's Q4_K_M file), and a round trip must give the file back byte for byte.
    static func addTensor(_ w: inout GGUFWriter, _ summary: inout GGUFExportSummary, name: String, data: Tensor, ggmlShape: [Int],
                          type: GGMLType, options: GGUFExportOptions, transform: GGUFArchitecture.Transform = .none,
                          source: GGUFFile? = nil) throws {
        let threads = options.threads
        let original = source?.tensor(named: name).flatMap { $0.type == type && $0.shape == ggmlShape ? $0 : nil }
        try w.addTensor(name: name, shape: ggmlShape, type: type) {
            let values = GGUFArchitecture.apply(transform, to: data)
            if let source, let original {
                let was = try source.dequantize(original, threads: threads)
                if was.count == values.count, memcmp(was, values.ptr, 4 * was.count) == 0 { return [UInt8](source.bytes(of: original)) }
            }
            do {
                return try GGMLQuantizer.quantize(type, values.ptr, count: values.count, threads: threads)
            } catch let e as GGUFError {
                throw ModelFileError("tensor '\(name)': \(e.message)")
            }
        }
        summary.tensorCount += 1
        summary.typeCounts[type.name, default: 0] += 1
    }

    // MARK: Tokenizer

    /// `tokenizer.ggml.*`, special ids and the chat template from a model folder's tokenizer files.
    static func tokenizerKeys(_ model: HFModelFolder, config: DecoderConfig, into w: inout GGUFWriter,
                              summary: inout GGUFExportSummary) throws {
        guard let file = model.tokenizerModel else {
            throw ModelFileError("\(model.url.path) has no tokenizer (tokenizer.model or tokenizer.json): a GGUF model needs its vocabulary")
        }
        let tokenizer = try Tokenizers.load(path: file.path)
        var tokens: [String], types: [Int32], scores: [Float]? = nil, merges: [String]? = nil
        var ids: (bos: Int, eos: Int, unk: Int, pad: Int, eot: Int)
        let modelName: String, pre: String
        var addSpacePrefix: Bool? = nil
        if let sp = tokenizer as? SentencePieceTokenizer {
            let vocab = sp.vocabulary
            tokens = vocab.map(\.piece)
            scores = vocab.map(\.score)
            types = vocab.map { e -> Int32 in
                switch e.type {
                case .normal: return 1
                case .unknown: return 2
                case .control: return 3
                case .userDefined: return 4
                case .unused: return 5
                case .byte: return 6
                }
            }
            // As llama.cpp's converter: tokenizer_config.json's added tokens are control (special) or user-defined.
            let configURL = file.deletingLastPathComponent().appendingPathComponent("tokenizer_config.json")
            if let added = (try? JSONValue.read(configURL))?["added_tokens_decoder"]?.object {
                for (key, entry) in added {
                    guard let id = Int(key), id >= 0, id < types.count, let special = entry["special"]?.bool else { continue }
                    types[id] = special ? 3 : 4
                }
            }
            // llama.cpp matches user-defined pieces in the raw text: their "▁" are written as spaces (its converter
            // "pre-normalizes user-defined spaces" the same way; Finch's import spells them back with "▁").
            tokens = zip(tokens, types).map { $1 == 4 ? $0.replacingOccurrences(of: "\u{2581}", with: " ") : $0 }
            modelName = "llama"; pre = "default"
            addSpacePrefix = (try? sp.normalize("a"))?.hasPrefix("\u{2581}") ?? true
            ids = (sp.bosID, sp.eosID, sp.unkID, sp.padID, -1)
        } else if let bpe = tokenizer as? BPETokenizer {
            let v: GGUFBPEVocabulary
            do { v = try bpe.ggufVocabulary() } catch { throw ModelFileError("\(file.path): \(error)") }
            tokens = v.tokens; types = v.types; merges = v.merges
            modelName = "gpt2"; pre = v.pre
            ids = (v.bosID, v.eosID, v.unkID, v.padID, v.eotID)
        } else {
            throw ModelFileError("\(file.path): this tokenizer cannot be written as a GGUF vocabulary")
        }
        guard tokens.count <= config.vocabSize else {
            throw ModelFileError("\(file.path) has \(tokens.count) tokens but the model's vocabulary is \(config.vocabSize)")
        }
        if tokens.count < config.vocabSize {   // as llama.cpp's converter: unused "[PADn]" up to the embedding's size
            summary.notes.append("vocabulary padded from \(tokens.count) to \(config.vocabSize) tokens with unused [PADn] entries")
            for i in tokens.count..<config.vocabSize {
                tokens.append("[PAD\(i)]"); types.append(5); scores?.append(-1000)
            }
        }
        // The model's own ids win where config.json / generation_config.json give them.
        if let b = config.bosTokenId { ids.bos = b }
        if let e = config.eosTokenId { ids.eos = e }
        if let p = config.padTokenId { ids.pad = p }
        w.set("tokenizer.ggml.model", modelName)
        w.set("tokenizer.ggml.pre", pre)
        w.set("tokenizer.ggml.tokens", strings: tokens)
        if let scores { w.set("tokenizer.ggml.scores", .array(.float32, scores.map { .float32($0) })) }
        w.set("tokenizer.ggml.token_type", .array(.int32, types.map { .int32($0) }))
        if let merges { w.set("tokenizer.ggml.merges", strings: merges) }
        for (key, id) in [("bos_token_id", ids.bos), ("eos_token_id", ids.eos), ("unknown_token_id", ids.unk),
                          ("padding_token_id", ids.pad), ("eot_token_id", ids.eot)] where id >= 0 && id < tokens.count {
            w.set("tokenizer.ggml.\(key)", uint32: id)
        }
        w.set("tokenizer.ggml.add_bos_token", tokenizer.addsBOS)
        w.set("tokenizer.ggml.add_eos_token", false)
        if let addSpacePrefix { w.set("tokenizer.ggml.add_space_prefix", addSpacePrefix) }
        if let template = try HFChatTemplate.load(folder: file.deletingLastPathComponent()) {
            w.set("tokenizer.chat_template", template.source)
        } else if model.url != file.deletingLastPathComponent(), let template = try HFChatTemplate.load(folder: model.url) {
            w.set("tokenizer.chat_template", template.source)
        }
    }
}
