import XCTest
import FinchChat
import FinchData
import FinchModel

/// The real engine on a tiny Llama (the shared llama-generate weights) with a freshly trained tokenizer
/// and the chatml template: KV-cache reuse across turns must give exactly what a fresh cache gives.
final class DecoderChatEngineTests: XCTestCase {
    private static let shared = URL(fileURLWithPath: "/work/shared/conformance")

    private func modelFolder() throws -> URL {
        let weights = Self.shared.appendingPathComponent("llama-generate")
        let corpus = Self.shared.appendingPathComponent("sentencepiece/corpus.txt")
        guard FileManager.default.fileExists(atPath: weights.path), FileManager.default.fileExists(atPath: corpus.path) else {
            throw XCTSkip("shared conformance folders not found: DecoderChatEngine test skipped")
        }
        let dir = try temporaryFolder("decoder-engine")
        for f in ["config.json", "model.safetensors"] {
            try FileManager.default.createSymbolicLink(at: dir.appendingPathComponent(f),
                                                       withDestinationURL: weights.appendingPathComponent(f))
        }
        // Exactly the model's vocabulary size, so every id the model can produce decodes.
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: weights.appendingPathComponent("config.json"))) as! [String: Any]
        var options = TokenizerTrainer.Options(inputs: [corpus], vocabSize: config["vocab_size"] as! Int)
        options.byteFallback = false
        options.numThreads = 1
        try TokenizerTrainer.train(options, into: dir)
        // Only chat_template.json: ChatTemplate.save(toModel:) also writes a finch.json without the
        // format_version/flavour that HFModelFolder.read requires (reported to the data/model engineers).
        try ChatTemplate.load("chatml").jsonData().write(to: dir.appendingPathComponent("chat_template.json"))
        return dir
    }

    func testCacheReuseAcrossTurnsMatchesAFreshCache() throws {
        let dir = try modelFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let engine = try makeChatEngine(modelDir: dir, adapterDir: nil)
        XCTAssertEqual(engine.contextLength, 128)
        var settings = SamplingSettings()
        settings.temperature = 0
        settings.maxTokens = 6
        settings.repetitionPenalty = 1

        var conversation = Conversation(system: "Be brief.", turns: [Message(role: .user, content: "Hello there")])
        var first = ""
        let s1 = try engine.reply(to: conversation, settings: settings) { first += $0; return true }
        XCTAssertEqual(s1.promptTokens, try engine.tokenCount(of: conversation), "first turn processes the whole prompt")
        XCTAssertGreaterThan(s1.generatedTokens, 0)
        conversation.turns.append(Message(role: .assistant, content: first))
        conversation.turns.append(Message(role: .user, content: "Tell me more"))

        var second = ""
        let s2 = try engine.reply(to: conversation, settings: settings) { second += $0; return true }
        let full = try engine.tokenCount(of: conversation)
        XCTAssertLessThan(s2.promptTokens, full / 2, "the second turn reuses the cached history (\(s2.promptTokens) of \(full) processed)")

        engine.reset(system: "Be brief.")
        var fresh = ""
        let s3 = try engine.reply(to: conversation, settings: settings) { fresh += $0; return true }
        XCTAssertEqual(s3.promptTokens, full)
        XCTAssertEqual(fresh, second, "cache reuse must not change the reply")
        print(String(format: "DecoderChatEngine tiny llama: first token %.1f ms, %.0f tokens/s",
                     (s3.firstTokenSeconds ?? 0) * 1000, s3.tokensPerSecond))

        // Sampling with a seed is reproducible; Ctrl-C (callback false) stops at once.
        settings.temperature = 1
        settings.seed = 11
        var a = "", b = ""
        _ = try engine.reply(to: conversation, settings: settings) { a += $0; return true }
        _ = try engine.reply(to: conversation, settings: settings) { b += $0; return true }
        XCTAssertEqual(a, b)
        let stopped = try engine.reply(to: conversation, settings: settings) { _ in false }
        if stopped.generatedTokens > 0 { XCTAssertEqual(stopped.stopReason, .interrupted) }
    }

    func testBatchedRepliesMatchOneAtATime() throws {
        let dir = try modelFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let engine = try makeChatEngine(modelDir: dir, adapterDir: nil)
        var settings = SamplingSettings()
        settings.temperature = 0
        settings.repetitionPenalty = 1
        settings.maxTokens = 8
        let conversations = ["Hi", "What is the weather like in the old town today", "Tell me a story"].map {
            Conversation(turns: [Message(role: .user, content: $0)])
        }
        let batched = try engine.replies(to: conversations, settings: settings)
        for (conversation, result) in zip(conversations, batched) {
            engine.reset(system: nil)
            var single = ""
            let stats = try engine.reply(to: conversation, settings: settings) { single += $0; return true }
            XCTAssertEqual(result.text, single, "batched (left-padded) reply differs for \(conversation.turns[0].content)")
            XCTAssertEqual(result.stats.generatedTokens, stats.generatedTokens)
        }
        settings.temperature = 0.9
        settings.seed = 4
        let a = try engine.replies(to: conversations, settings: settings)
        let b = try engine.replies(to: Array(conversations.reversed()), settings: settings)
        XCTAssertEqual(a.map(\.text), b.reversed().map(\.text), "a row's sampled reply does not depend on its batch neighbours")
    }

    func testMissingTemplateOrFolderIsAClearError() throws {
        XCTAssertThrowsError(try makeChatEngine(modelDir: URL(fileURLWithPath: "/nonexistent/m"), adapterDir: nil)) {
            XCTAssertTrue("\($0)".contains("/nonexistent/m"))
        }
        let weights = Self.shared.appendingPathComponent("llama-generate")
        guard FileManager.default.fileExists(atPath: weights.path) else { throw XCTSkip("no shared weights") }
        XCTAssertThrowsError(try makeChatEngine(modelDir: weights, adapterDir: nil)) {
            XCTAssertTrue("\($0)".contains("tokenizer.model"), "\($0)")
        }
    }
}

extension DecoderChatEngineTests {
    /// Greedy ids by recomputing the whole sequence with the adapter every step (no cache).
    private func referenceGreedy(_ module: PEFTModule, _ decoder: FinchModel.Decoder, prompt: [Int], steps: Int, stop: Set<Int>) -> [Int] {
        var seq = prompt, out: [Int] = []
        let V = decoder.config.vocabSize
        for _ in 0..<steps {
            _ = module.forwardHidden(decoder, ids: seq, batch: 1, length: seq.count, attentionMask: nil, positionIds: nil)
            let logits = module.logits(decoder)
            let last = logits.ptr + (seq.count - 1) * V
            var best = 0
            for v in 1..<V where last[v] > last[best] { best = v }
            out.append(best)
            if stop.contains(best) { break }
            seq.append(best)
        }
        return out
    }

    /// Prompt- and prefix-tuning adapters are served through the KV cache: the chat's greedy replies equal
    /// a cache-free recomputation with the adapter, on the first turn and on a second turn reusing the cache.
    func testPromptAndPrefixAdaptersMatchRecomputation() throws {
        let dir = try modelFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let folder = try HFModelFolder.read(dir)
        for kind in ["prompt", "prefix"] {
            let base = try FinchModel.Decoder(config: folder.config, parameters: folder.parameters)
            let module: PEFTModule
            if kind == "prompt" {
                module = PromptTuningModule(virtualTokens: 5, decoder: base, seed: 7)
            } else {
                module = PrefixTuningModule(virtualTokens: 4, decoder: base, seed: 7)
            }
            let adapterDir = dir.appendingPathComponent("adapter-\(kind)")
            try module.save(to: adapterDir, baseModel: dir.path)

            let engine = try XCTUnwrap(try makeChatEngine(modelDir: dir, adapterDir: adapterDir) as? DecoderChatEngine)
            XCTAssertEqual(engine.contextLength, folder.config.maxPositions - (kind == "prompt" ? 5 : 4))
            var settings = SamplingSettings()
            settings.temperature = 0; settings.maxTokens = 6; settings.repetitionPenalty = 1

            let served = try PEFTLoader.load(folder: adapterDir, decoder: base)
            var conversation = Conversation(system: "Be brief.", turns: [Message(role: .user, content: "Hello there")])
            for turn in 0..<2 {
                var reply = ""
                _ = try engine.reply(to: conversation, settings: settings) { reply += $0; return true }
                let messages = conversation.messages.map { FinchData.Message(FinchData.Role(rawValue: $0.role.rawValue)!, $0.content) }
                let prompt = try engine.encoder.generationPrompt(messages).map(Int.init)
                let ids = referenceGreedy(served, base, prompt: prompt, steps: 6, stop: Set(engine.encoder.stopIDs))
                let expected = try engine.encoder.tokenizer.decode(ids.filter { !engine.encoder.stopIDs.contains($0) })
                XCTAssertEqual(reply, expected, "\(kind) adapter, turn \(turn)")
                conversation.turns.append(Message(role: .assistant, content: reply))
                conversation.turns.append(Message(role: .user, content: "And then?"))
            }
            // Without the adapter the replies differ (the adapter is really applied).
            let plain = try makeChatEngine(modelDir: dir, adapterDir: nil)
            var withAdapter = "", without = ""
            let first = Conversation(system: "Be brief.", turns: [Message(role: .user, content: "Hello there")])
            engine.reset(system: nil)
            _ = try engine.reply(to: first, settings: settings) { withAdapter += $0; return true }
            _ = try plain.reply(to: first, settings: settings) { without += $0; return true }
            XCTAssertNotEqual(withAdapter, without, "\(kind) adapter changes the reply")
        }
    }
}
