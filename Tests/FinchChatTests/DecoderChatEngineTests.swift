import XCTest
import FinchChat
import FinchData

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
