import Foundation
import FinchKernels
import FinchData

/// A Hugging Face model folder: `config.json`, `model.safetensors` (or shards listed by
/// `model.safetensors.index.json`), optional `generation_config.json`, `tokenizer.model`, and Finch's own
/// `finch.json`. Reading is in HFImport.swift, writing in HFExport.swift.
public struct HFModelFolder {
    /// The folder read.
    public let url: URL
    /// The decoder configuration from config.json.
    public let config: DecoderConfig
    /// Every parameter under its Hugging Face name, float32, validated against `config.parameterShapes()`
    /// (a tied head's `lm_head.weight` is not included).
    public let parameters: [String: Tensor]
    /// generation_config.json, when present.
    public let generationConfig: HFGenerationConfig?
    /// finch.json, when present (folders Finch wrote).
    public let finchInfo: FinchModelInfo?
    /// The tokenizer's file: `tokenizer.model` (SentencePiece) or else `tokenizer.json` in the folder; for a GGUF
    /// file, the tokenizer folder made from its vocabulary (see `GGUFModelImport`). nil when there is none.
    public let tokenizerModel: URL?
    /// The safetensors dtypes the parameters were stored in (e.g. ["BF16"]), before conversion to float32.
    public let storedDTypes: [String]
    /// Projection weights kept as quantised blocks (a GGUF read with `keepQuantized`), absent from `parameters`.
    public var quantized: [String: QuantizedMatrix] = [:]

    public static let configFile = "config.json"
    public static let generationConfigFile = "generation_config.json"
    public static let weightsFile = "model.safetensors"
    public static let indexFile = "model.safetensors.index.json"
    public static let finchFile = "finch.json"
    public static let tokenizerFile = "tokenizer.model"
    public static let tokenizerJSONFile = "tokenizer.json"
    /// Files that travel with the tokenizer file when a model folder is written from another.
    public static let tokenizerCompanionFiles = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"]

    /// The tokenizer file of a folder: `tokenizer.model` (the original where both exist) or `tokenizer.json`.
    public static func tokenizerFile(in folder: URL) -> URL? {
        for name in [tokenizerFile, tokenizerJSONFile] {
            let u = folder.appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: u.path) { return u }
        }
        return nil
    }

    /// Whether `url` names a GGUF file (by its extension).
    public static func isGGUF(_ url: URL) -> Bool { url.pathExtension.lowercased() == "gguf" }

    /// The same folder with other weights (e.g. a LoRA adapter merged in); `parameters` must keep the shapes.
    public func replacingParameters(_ parameters: [String: Tensor]) -> HFModelFolder {
        HFModelFolder(url: url, config: config, parameters: parameters, generationConfig: generationConfig, finchInfo: finchInfo,
                      tokenizerModel: tokenizerModel, storedDTypes: storedDTypes, quantized: quantized)
    }
}

/// generation_config.json: the fields Finch uses; other keys are kept in `other` and written back.
public struct HFGenerationConfig: Equatable, Sendable {
    public var bosTokenId: Int?
    /// All end-of-sequence ids (the file may hold one id or a list).
    public var eosTokenIds: [Int]
    public var padTokenId: Int?
    public var maxNewTokens: Int?
    public var doSample: Bool?
    public var temperature: Double?
    public var topK: Int?
    public var topP: Double?
    public var repetitionPenalty: Double?
    /// Keys Finch does not interpret, preserved on write.
    public var other: [String: JSONValue]

    public init(bosTokenId: Int? = nil, eosTokenIds: [Int] = [], padTokenId: Int? = nil, maxNewTokens: Int? = nil,
                doSample: Bool? = nil, temperature: Double? = nil, topK: Int? = nil, topP: Double? = nil,
                repetitionPenalty: Double? = nil, other: [String: JSONValue] = [:]) {
        self.bosTokenId = bosTokenId; self.eosTokenIds = eosTokenIds; self.padTokenId = padTokenId
        self.maxNewTokens = maxNewTokens; self.doSample = doSample; self.temperature = temperature
        self.topK = topK; self.topP = topP; self.repetitionPenalty = repetitionPenalty; self.other = other
    }

    /// The generation config transformers derives from a model config (`_from_model_config`).
    public init(from c: DecoderConfig) {
        self.init(bosTokenId: c.bosTokenId, eosTokenIds: c.eosTokenIds ?? (c.eosTokenId.map { [$0] } ?? []),
                  padTokenId: c.padTokenId, other: ["_from_model_config": .bool(true)])
    }

    private static let typedKeys: Set<String> = ["bos_token_id", "eos_token_id", "pad_token_id", "max_new_tokens",
                                                 "do_sample", "temperature", "top_k", "top_p", "repetition_penalty"]

    public static func load(_ url: URL) throws -> HFGenerationConfig {
        guard let o = try JSONValue.read(url).object else { throw ModelFileError("\(url.path): not a JSON object") }
        var eos: [Int] = []
        if let v = o["eos_token_id"] { eos = v.int.map { [$0] } ?? (v.array ?? []).compactMap { $0.int } }
        return HFGenerationConfig(
            bosTokenId: o["bos_token_id"]?.int, eosTokenIds: eos, padTokenId: o["pad_token_id"]?.int,
            maxNewTokens: o["max_new_tokens"]?.int, doSample: o["do_sample"]?.bool, temperature: o["temperature"]?.double,
            topK: o["top_k"]?.int, topP: o["top_p"]?.double, repetitionPenalty: o["repetition_penalty"]?.double,
            other: o.filter { !typedKeys.contains($0.key) })
    }

    public func encode() -> JSONValue {
        var o = other
        func put(_ k: String, _ v: JSONValue?) { if let v { o[k] = v } }
        put("bos_token_id", bosTokenId.map { .int($0) })
        put("eos_token_id", eosTokenIds.isEmpty ? nil : eosTokenIds.count == 1 ? .int(eosTokenIds[0]) : .array(eosTokenIds.map { .int($0) }))
        put("pad_token_id", padTokenId.map { .int($0) })
        put("max_new_tokens", maxNewTokens.map { .int($0) })
        put("do_sample", doSample.map { .bool($0) })
        put("temperature", temperature.map { .double($0) })
        put("top_k", topK.map { .int($0) })
        put("top_p", topP.map { .double($0) })
        put("repetition_penalty", repetitionPenalty.map { .double($0) })
        return .object(o)
    }
}

/// finch.json: what Hugging Face's config has no field for.
public struct FinchModelInfo: Codable, Equatable, Sendable {
    /// Bumped when the folder layout changes incompatibly.
    public static let currentFormatVersion = 1
    public var formatVersion: Int
    public var flavour: Flavour
    /// Name of the chat template (a file under prompts/) the model was tuned with, if any.
    public var chatTemplate: String?

    public init(flavour: Flavour, chatTemplate: String? = nil, formatVersion: Int = FinchModelInfo.currentFormatVersion) {
        self.formatVersion = formatVersion; self.flavour = flavour; self.chatTemplate = chatTemplate
    }

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", flavour, chatTemplate = "chat_template"
    }

    /// Lenient: other writers (e.g. `ChatTemplate.save(toModel:)`) may record only `chat_template`;
    /// a missing flavour is taken from config.json by the folder reader.
    public init(from decoder: Swift.Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        formatVersion = try c.decodeIfPresent(Int.self, forKey: .formatVersion) ?? FinchModelInfo.currentFormatVersion
        flavour = try c.decodeIfPresent(Flavour.self, forKey: .flavour) ?? .llama
        chatTemplate = try c.decodeIfPresent(String.self, forKey: .chatTemplate)
    }

    public static func load(_ url: URL) throws -> FinchModelInfo {
        guard let data = try? Data(contentsOf: url) else { throw ModelFileError("cannot read \(url.path)") }
        let info: FinchModelInfo
        do { info = try JSONDecoder().decode(FinchModelInfo.self, from: data) } catch {
            throw ModelFileError("\(url.path): not a valid finch.json (\(error))")
        }
        guard info.formatVersion <= currentFormatVersion else {
            throw ModelFileError("\(url.path): format_version \(info.formatVersion) is newer than this Finch reads (\(currentFormatVersion))")
        }
        return info
    }

    public func encode() -> JSONValue {
        var o: [String: JSONValue] = ["format_version": .int(formatVersion), "flavour": .string(flavour.rawValue)]
        o["chat_template"] = chatTemplate.map { .string($0) } ?? .null
        return .object(o)
    }
}

extension HFModelFolder {
    /// Throws unless the model has a language-model head: a reward or classifier folder (a score head,
    /// `…ForSequenceClassification`) cannot generate or be fine-tuned as a causal LM. `use` names what it was given for.
    /// Throws when `tokenizer` can produce ids the model has no embedding for (a tokenizer from another model, or
    /// trained with more pieces than `vocab_size`); `tokenizerFile` names it in the message.
    public func requireTokenizerFits(_ tokenizer: any TextTokenizer, tokenizerFile: URL) throws {
        guard tokenizer.vocabSize > config.vocabSize else { return }
        throw ModelFileError("\(tokenizerFile.path) has \(tokenizer.vocabSize) pieces but \(url.path) has a vocabulary of \(config.vocabSize) (vocab_size): ids from \(config.vocabSize) up have no embedding; use the tokenizer the model was trained with")
    }

    public func requireCausalLM(_ use: String) throws {
        guard let labels = config.numLabels else { return }
        let kind = labels == 1 ? "a reward model" : "a \(labels)-label classifier"
        throw ModelFileError("\(url.path) is \(kind) (\(config.hfArchitecture), a score head and no LM head); \(use) needs a causal LM: give the model it was trained from")
    }
}
