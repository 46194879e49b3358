import Foundation
import FinchKernels
import FinchModel
import FinchData

/// A real model behind the chat REPL: a `Decoder` from a Hugging Face/Finch model folder, its SentencePiece
/// tokenizer and the chat template it was trained with (`chat_template.json` / `finch.json`).
///
/// One KV cache lives across turns: each reply renders the whole conversation with the template, keeps the
/// longest token prefix already in the cache and processes only the tokens after it (usually just the new
/// user message), so a long chat does not re-read its history.
public final class DecoderChatEngine: ChatEngine {
    public let decoder: FinchModel.Decoder
    public let encoder: ChatEncoder
    public let contextLength: Int
    public let defaultSettings: SamplingSettings
    public let name: String
    private let cache: KVCache
    /// The token ids whose keys/values are in `cache` after the virtual tokens, in order.
    private var cachedTokens: [Int] = []
    /// A prompt- or prefix-tuning adapter: its virtual tokens (or prefix keys/values) fill the first
    /// `virtualTokens` cache positions before any text, as in training.
    let promptAdapter: PEFTModule?
    private let virtualTokens: Int
    /// Decodes every reply: batched replies in fresh caches primed with `promptAdapter`, the chat's in `cache`.
    let generator: BatchGenerator

    public var usedTokens: Int { cache.length - virtualTokens }

    /// Loads the model folder and an optional PEFT adapter folder: LoRA/DoRA are merged into the weights,
    /// prompt and prefix tuning are served through the KV cache.
    /// Ids that end a reply: the template's end of turn, the tokenizer's EOS, and every `eos_token_id` of the
    /// model's generation config (GGUF: eos, eot and eom), as transformers and llama.cpp stop on all of them.
    public let stopIDs: Set<Int>

    /// `raw`: a model without a chat template is accepted (for `finch generate --raw`); chatting needs one.
    public init(modelDir: URL, adapterDir: URL?, raw: Bool = false) throws {
        let folder = try HFModelFolder.read(modelDir)
        do { try folder.requireCausalLM("chat and generate") } catch { throw EngineError("\(error)") }
        guard let tokenizerURL = folder.tokenizerModel else {
            throw EngineError("\(modelDir.path): no tokenizer (tokenizer.model or tokenizer.json); the chat needs the model's tokenizer")
        }
        let tokenizer = try Tokenizers.load(path: tokenizerURL.path)
        do { try folder.requireTokenizerFits(tokenizer, tokenizerFile: tokenizerURL) } catch { throw EngineError("\(error)") }
        let recorded = try ChatTemplate.forModel(modelDir)
        guard let template = try recorded ?? (raw ? DatasetPacker.plainTemplate(tokenizer) : nil) else {
            throw EngineError("\(modelDir.path): no chat template recorded (chat_template.json, or chat_template in finch.json); "
                              + "a model must be chatted with the template it was trained with")
        }
        encoder = try ChatEncoder(tokenizer: tokenizer, template: template)
        var stops = Set(encoder.stopIDs)
        for id in (folder.generationConfig?.eosTokenIds ?? []) + (folder.config.eosTokenIds ?? folder.config.eosTokenId.map { [$0] } ?? [])
        where id >= 0 && id < folder.config.vocabSize { stops.insert(id) }
        stopIDs = stops
        var parameters = folder.parameters
        let adapterType = try adapterDir.map { try PEFTAdapterFolder.peftType(of: $0) }
        if let adapterDir, adapterType == "LORA" { try LoRAMerge.apply(adapterDir: adapterDir, config: folder.config, to: &parameters) }
        decoder = try FinchModel.Decoder(config: folder.config, parameters: parameters)
        switch (adapterDir, adapterType) {
        case (let dir?, "PROMPT_TUNING"?), (let dir?, "PREFIX_TUNING"?):
            let module = try PEFTLoader.load(folder: dir, decoder: decoder)
            promptAdapter = module
            virtualTokens = module.virtualTokens
        case (let dir?, "ADAPTER"?):
            // Bottleneck adapters act inside every block, prompt and generated tokens alike: the decoder's hooks.
            try PEFTLoader.load(folder: dir, decoder: decoder).attach(to: decoder)
            promptAdapter = nil
            virtualTokens = 0
        case (let dir?, let type?) where type != "LORA":
            throw EngineError("\(dir.path): \(type) adapters are not served by the chat (LoRA/DoRA, bottleneck adapters, "
                              + "prompt and prefix tuning are)")
        default:
            promptAdapter = nil
            virtualTokens = 0
        }
        guard virtualTokens < folder.config.maxPositions else {
            throw EngineError("the adapter's \(virtualTokens) virtual tokens fill the model's \(folder.config.maxPositions)-token context")
        }
        contextLength = folder.config.maxPositions - virtualTokens
        cache = KVCache(config: folder.config, batch: 1, maxLength: folder.config.maxPositions)
        generator = BatchGenerator(decoder: decoder, adapter: promptAdapter)
        defaultSettings = try SamplingSettings.modelDefaults(folder: modelDir)
        name = modelDir.lastPathComponent + (adapterDir.map { " + adapter \($0.lastPathComponent)" } ?? "")
            + " (\(folder.config.flavour.rawValue), template \(template.name), \(contextLength)-token context)"
        primeCache()
    }

    public func reset(system: String?) {
        cache.reset()
        cachedTokens = []
        primeCache()
    }

    /// Puts the adapter's virtual tokens into an empty cache (nothing without a prompt/prefix adapter).
    private func primeCache() {
        guard let promptAdapter, cache.length == 0 else { return }
        promptAdapter.primeCache(decoder, cache: cache)
    }

    /// The decoder's sampling options for these settings (a random seed when none is set).
    func samplingOptions(_ settings: SamplingSettings) -> SamplingOptions {
        SamplingOptions(temperature: settings.temperature, topK: settings.topK, topP: settings.topP,
                        minP: settings.minP, repetitionPenalty: settings.repetitionPenalty,
                        seed: settings.seed ?? UInt64.random(in: 0...UInt64.max))
    }

    /// The template's generation prompt for the conversation, as token ids.
    func promptTokens(_ conversation: Conversation) throws -> [Int] {
        let messages = conversation.messages.map {
            FinchData.Message(FinchData.Role(rawValue: $0.role.rawValue)!, $0.content)
        }
        return try encoder.generationPrompt(messages).map(Int.init)
    }

    public func tokenCount(of conversation: Conversation) throws -> Int {
        try promptTokens(conversation).count
    }

    public func reply(to conversation: Conversation, settings: SamplingSettings,
                      onToken: (String) -> Bool) throws -> ReplyStats {
        let start = Date()
        let prompt = try promptTokens(conversation)
        guard prompt.count < contextLength else {
            return ReplyStats(promptTokens: 0, generatedTokens: 0, seconds: 0, firstTokenSeconds: nil, stopReason: .contextFull)
        }
        // Reuse the cached prefix; at least one token must be fed to get next-token logits.
        var keep = 0
        while keep < min(prompt.count - 1, cachedTokens.count, cache.length - virtualTokens), prompt[keep] == cachedTokens[keep] { keep += 1 }
        cache.truncate(to: virtualTokens + keep)
        let fresh = Array(prompt[keep...])

        let options = GenerationOptions(maxNewTokens: settings.maxTokens, sampling: samplingOptions(settings), stopTokenIds: stopIDs)
        var stream = ReplyText(tokenizer: encoder.tokenizer, stopIDs: stopIDs, stops: settings.stop)
        var firstToken: Double?
        var failure: Error?
        let result = generator.generate(fresh, after: cache, options: options) { token in
            if firstToken == nil { firstToken = Date().timeIntervalSince(start) }
            do {
                let text = try stream.add(token)
                if !text.isEmpty, !onToken(text) { stream.interrupt() }
                return stream.stopReason == nil
            } catch { failure = error; return false }
        }
        if let failure { throw failure }
        let generated = result.tokens
        cachedTokens = Array((prompt + generated).prefix(cache.length - virtualTokens))
        let rest = try stream.finish(result.stop)
        if !rest.isEmpty { _ = onToken(rest) }
        return ReplyStats(promptTokens: fresh.count, generatedTokens: generated.count,
                          seconds: Date().timeIntervalSince(start), firstTokenSeconds: firstToken, stopReason: stream.stopReason!,
                          tokenIDs: generated)
    }
}
