import Foundation
import FinchKernels
import FinchModel

extension DecoderChatEngine {
    /// Batched generation for `finch generate`: the prompts are left-padded to one length (padding is
    /// masked out of attention and positions count real tokens only), prefilled together, then decoded one
    /// step for the whole batch at a time. Every row gets its own sampler with the same seed, so a row's
    /// reply does not depend on which other prompts share its batch.
    public func replies(to conversations: [Conversation], settings: SamplingSettings) throws -> [(text: String, stats: ReplyStats)] {
        let prompts = try conversations.map(promptTokens)
        let longest = prompts.map(\.count).max() ?? 0
        let fitsTogether = longest + settings.maxTokens <= contextLength
        guard conversations.count > 1, fitsTogether, promptAdapter == nil else {
            // One at a time (also handles prompts too long for the context, and prompt/prefix adapters,
            // whose virtual tokens the one-at-a-time cache holds).
            return try conversations.map { conversation in
                var text = ""
                let stats = try reply(to: conversation, settings: settings) { text += $0; return true }
                return (text, stats)
            }
        }
        return try replies(toPrompts: prompts, settings: settings)
    }

    /// `finch generate --raw`: each text as it is, no chat template, BOS in front exactly when the tokenizer's
    /// runtime adds one (transformers' post-processor, GGUF add_bos_token).
    public func rawReplies(to texts: [String], settings: SamplingSettings) throws -> [(text: String, stats: ReplyStats)] {
        let tokenizer = encoder.tokenizer
        let prompts: [[Int]] = try texts.map { text in
            (tokenizer.addsBOS && tokenizer.bosID >= 0 ? [tokenizer.bosID] : []) + (try tokenizer.encode(text)).map(Int.init)
        }
        guard promptAdapter == nil else {
            throw EngineError("--raw does not serve prompt or prefix tuning adapters; merge a LoRA adapter or drop --raw")
        }
        for p in prompts where p.count + settings.maxTokens > contextLength {
            throw EngineError("a raw prompt of \(p.count) tokens plus --max-tokens \(settings.maxTokens) exceeds the model's \(contextLength)-token context")
        }
        return try replies(toPrompts: prompts, settings: settings)
    }

    /// Batched decoding of token prompts (see `replies(to:settings:)`).
    func replies(toPrompts prompts: [[Int]], settings: SamplingSettings) throws -> [(text: String, stats: ReplyStats)] {
        guard !prompts.isEmpty else { return [] }
        let longest = prompts.map(\.count).max() ?? 0
        let start = Date()
        let B = prompts.count, T = longest, V = decoder.config.vocabSize
        let cache = KVCache(config: decoder.config, batch: B, maxLength: T + settings.maxTokens)
        var ids: [Int] = [], mask: [Int] = [], positions: [Int] = []
        for p in prompts {
            let pad = T - p.count
            ids += Array(repeating: 0, count: pad) + p
            mask += Array(repeating: 0, count: pad) + Array(repeating: 1, count: p.count)
            positions += Array(repeating: 0, count: pad) + Array(0..<p.count)
        }
        var logits = decoder.prefill(ids, cache: cache, attentionMask: mask, positionIds: positions)
        let firstToken = Date().timeIntervalSince(start)

        let options = samplingOptions(settings)
        let stopIDs = self.stopIDs
        let tokenizer = encoder.tokenizer
        var samplers = Array(repeating: Sampler(options), count: B)
        var histories = prompts
        var generated = Array(repeating: [Int](), count: B)
        var texts = Array(repeating: "", count: B)
        var detokenizers = (0..<B).map { _ in IncrementalDetokenizer { try tokenizer.decode($0) } }
        var filters = Array(repeating: StopStringFilter(stops: settings.stop), count: B)
        var reasons = [StopReason?](repeating: nil, count: B)

        for step in 0..<settings.maxTokens {
            var next = Array(repeating: 0, count: B)
            for b in 0..<B where reasons[b] == nil {
                let token = samplers[b].next(logits: logits.ptr + b * V, vocab: V, history: histories[b])
                next[b] = token
                histories[b].append(token)
                generated[b].append(token)
                if stopIDs.contains(token) { reasons[b] = .endOfTurn; continue }
                let (text, stop) = filters[b].feed(try detokenizers[b].add(token))
                texts[b] += text
                if let stop { reasons[b] = .stopString(stop) }
            }
            if reasons.allSatisfy({ $0 != nil }) || step == settings.maxTokens - 1 { break }
            // Finished rows keep feeding a dummy token; their logits are ignored.
            logits = decoder.prefill(next, cache: cache, positionIds: (0..<B).map { prompts[$0].count + step })
        }
        let seconds = Date().timeIntervalSince(start)
        return try (0..<B).map { b in
            if reasons[b] == nil {
                reasons[b] = .maxTokens
                texts[b] += filters[b].feed(try detokenizers[b].finish()).text + filters[b].flush()
            }
            return (texts[b], ReplyStats(promptTokens: prompts[b].count, generatedTokens: generated[b].count,
                                         seconds: seconds, firstTokenSeconds: firstToken, stopReason: reasons[b]!,
                                         tokenIDs: generated[b]))
        }
    }
}
