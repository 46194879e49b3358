import Foundation
import FinchKernels
import FinchModel

extension DecoderChatEngine {
    /// Batched generation for `finch generate`: the prompts go through the model's `BatchGenerator` together
    /// (left-padded, prefilled together, decoded one step for the whole batch; prompt- and prefix-tuning adapters
    /// prime every row). Every row gets its own sampler with the same seed, so a row's reply does not depend on which
    /// other prompts share its batch. A prompt too long for the context gets no reply ("context full").
    public func replies(to conversations: [Conversation], settings: SamplingSettings) throws -> [(text: String, stats: ReplyStats)] {
        try replies(toPrompts: conversations.map(promptTokens), settings: settings)
    }

    /// Batched replies with a sampling seed per conversation (see `ChatEngine.replies(to:settings:seeds:)`).
    public func replies(to conversations: [Conversation], settings: SamplingSettings, seeds: [UInt64]) throws -> [(text: String, stats: ReplyStats)] {
        try replies(toPrompts: conversations.map(promptTokens), settings: settings, seeds: seeds)
    }

    /// `finch generate --raw`: each text as it is, no chat template, BOS in front exactly when the tokenizer's
    /// runtime adds one (transformers' post-processor, GGUF add_bos_token).
    public func rawReplies(to texts: [String], settings: SamplingSettings) throws -> [(text: String, stats: ReplyStats)] {
        let tokenizer = encoder.tokenizer
        let prompts: [[Int]] = try texts.map { text in
            (tokenizer.addsBOS && tokenizer.bosID >= 0 ? [tokenizer.bosID] : []) + (try tokenizer.encode(text)).map(Int.init)
        }
        for p in prompts where p.count + settings.maxTokens > contextLength {
            throw EngineError("a raw prompt of \(p.count) tokens plus --max-tokens \(settings.maxTokens) exceeds the model's \(contextLength)-token context")
        }
        return try replies(toPrompts: prompts, settings: settings)
    }

    /// Batched decoding of token prompts (see `replies(to:settings:)`).
    func replies(toPrompts prompts: [[Int]], settings: SamplingSettings, seeds: [UInt64]? = nil) throws -> [(text: String, stats: ReplyStats)] {
        guard !prompts.isEmpty else { return [] }
        let start = Date()
        let options = GenerationOptions(maxNewTokens: settings.maxTokens, sampling: samplingOptions(settings), stopTokenIds: stopIDs)
        var streams = prompts.map { _ in ReplyText(tokenizer: encoder.tokenizer, stopIDs: stopIDs, stops: settings.stop) }
        var firstToken: Double?
        var failure: Error?
        var batch = generator
        batch.maxBatch = prompts.count
        let results = batch.generate(prompts, options: options, seeds: seeds ?? prompts.map { _ in options.sampling.seed }, onToken: { row, token in
            if firstToken == nil { firstToken = Date().timeIntervalSince(start) }
            do {
                _ = try streams[row].add(token)
                return streams[row].stopReason == nil
            } catch { failure = error; return false }
        })
        if let failure { throw failure }
        let seconds = Date().timeIntervalSince(start)
        return try zip(prompts, results).enumerated().map { b, pr in
            _ = try streams[b].finish(pr.1.stop)
            return (streams[b].text, ReplyStats(promptTokens: pr.0.count, generatedTokens: pr.1.tokens.count, seconds: seconds,
                                                firstTokenSeconds: firstToken, stopReason: streams[b].stopReason!, tokenIDs: pr.1.tokens))
        }
    }
}
