import Foundation
import XCTest
import FinchData

final class TemplateTests: XCTestCase {
    let conversation = [Message(.system, "Be brief."), Message(.user, "Hi"), Message(.assistant, "Hello."),
                        Message(.user, "2+2?"), Message(.assistant, "4")]

    func testBundledTemplatesLoadAndRender() throws {
        for name in ["alpaca", "chatml", "llama2", "zephyr"] {
            let t = try ChatTemplate.load(name)
            XCTAssertEqual(t.name, name)
            XCTAssertTrue(ChatTemplate.available().contains(name))
        }
        let chatml = try ChatTemplate.load("chatml")
        XCTAssertEqual(ChatTemplate.text(try chatml.render(conversation, addGenerationPrompt: false)),
                       "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n")
        XCTAssertEqual(ChatTemplate.text(try chatml.render([Message(.user, "Hi")], addGenerationPrompt: true)),
                       "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        let llama2 = try ChatTemplate.load("llama2")
        XCTAssertEqual(ChatTemplate.text(try llama2.render(conversation)),
                       "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]Hello. </s><s>[INST] 2+2? [/INST]4 </s>")
        let alpaca = try ChatTemplate.load("alpaca")
        XCTAssertEqual(ChatTemplate.text(try alpaca.render([Message(.user, "Add 1 and 2."), Message(.assistant, "3")])),
                       "<s>Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nAdd 1 and 2.\n\n### Response:\n3</s>")
        // Segments: assistant content + suffix is the only response text.
        let segs = try chatml.render(conversation)
        XCTAssertEqual(segs.filter { $0.kind == .response }.map(\.text), ["Hello.<|im_end|>\n", "4<|im_end|>\n"])

        // By path and through FINCH_PROMPTS-style folders.
        let dir = try TestSupport.tempDir()
        let custom = dir.appendingPathComponent("mine.json")
        try chatml.jsonData().write(to: custom)
        XCTAssertEqual(try ChatTemplate.load(custom.path).render(conversation), segs)
        XCTAssertThrowsError(try ChatTemplate.load("no-such-template")) { e in XCTAssertTrue("\(e)".contains("no-such-template")) }
    }

    func testTemplateStoredWithModel() throws {
        let dir = try TestSupport.tempDir()
        try JSONSerialization.data(withJSONObject: ["flavour": "llama"]).write(to: dir.appendingPathComponent("finch.json"))
        let t = try ChatTemplate.load("zephyr")
        try t.save(toModel: dir)
        let o = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("finch.json"))) as? [String: Any]
        XCTAssertEqual(o?["chat_template"] as? String, "zephyr")
        XCTAssertEqual(o?["flavour"] as? String, "llama")
        XCTAssertEqual(try ChatTemplate.forModel(dir), t)
        try FileManager.default.removeItem(at: dir.appendingPathComponent("chat_template.json"))
        XCTAssertEqual(try ChatTemplate.forModel(dir)?.name, "zephyr")
    }

    /// On shared data, for every template: the conversation's tokens are the concatenation of its turns'
    /// tokens; every prefix of the conversation tokenizes to a prefix of the whole; the mask covers exactly
    /// the assistant replies and their end-of-turn tokens.
    func testTurnwiseTokenizationAndMasksOnSharedData() throws {
        let tok = TestSupport.tokenizer
        var conversations: [[Message]] = []
        let gsm = try RecordReader.read(TestSupport.sharedData.appendingPathComponent("instructions/gsm8k-train.jsonl"))
        conversations += gsm.records.prefix(60).map(\.messages) + gsm.records.prefix(60).map(\.messages)
        let hh = try RecordReader.read(TestSupport.sharedData.appendingPathComponent("preferences/hh-rlhf-harmless-base-train.jsonl"))
        for r in hh.records.prefix(60) {
            guard case .preference(let p, let chosen, _) = r.body else { continue }
            conversations.append(p + [Message(.assistant, chosen)])
        }
        // Stitch gsm8k pairs into 3-turn chats with a system prompt.
        for i in stride(from: 0, to: 40, by: 2) {
            conversations.append([Message(.system, "Answer step by step.")] + gsm.records[i].messages + gsm.records[i + 1].messages)
        }
        for name in ["alpaca", "chatml", "llama2", "zephyr"] {
            let enc = try ChatEncoder(tokenizer: tok, template: try ChatTemplate.load(name))
            XCTAssertEqual(tok.type(enc.endOfTurnID) == .control || tok.type(enc.endOfTurnID) == .userDefined, true)
            for conv in conversations {
                let segs = try enc.template.render(conv)
                let whole = try enc.encode(segments: segs)
                // Turn by turn.
                var byTurn = EncodedSequence()
                for turn in Array(Set(segs.map(\.turn))).sorted() { byTurn.append(try enc.encode(segments: segs.filter { $0.turn == turn })) }
                XCTAssertEqual(whole, byTurn, name)
                // Prefix property (what a chat REPL relies on when it appends turns).
                for cut in 1..<conv.count where conv[cut - 1].role == .assistant {
                    let part = try enc.encodeConversation(Array(conv[..<cut]))
                    XCTAssertEqual(Array(whole.ids.prefix(part.count)), part.ids, name)
                }
                // Mask: exactly the replies (content + suffix), each ending in a trained end-of-turn token.
                let replies = conv.filter { $0.role == .assistant }
                var expectedTrained: [Int32] = []
                for r in replies { expectedTrained += try enc.encodeReply(r.content) }
                XCTAssertEqual(zip(whole.ids, whole.mask).filter { $0.1 == 1 }.map(\.0), expectedTrained, name)
                XCTAssertEqual(zip(whole.ids, whole.mask).filter { $0.1 == 1 && $0.0 == Int32(enc.endOfTurnID) }.count,
                               replies.count, name)
                // Decoding gives the content back.
                let text = try tok.decode(whole.ids)
                for r in replies { XCTAssertTrue(text.contains(r.content.trimmingCharacters(in: .whitespaces)), name) }
            }
            let all = try ChatEncoder(tokenizer: tok, template: enc.template, trainOnPrompt: true)
            XCTAssertEqual(try all.encodeConversation(conversations[0]).trainedCount, try all.encodeConversation(conversations[0]).count)
        }
    }

    func testGenerationPromptEndsWithAssistantPrefix() throws {
        let enc = try ChatEncoder(tokenizer: TestSupport.tokenizer, template: try ChatTemplate.load("chatml"))
        let ids = try enc.generationPrompt([Message(.user, "Hi")])
        XCTAssertEqual(Array(ids.suffix(try enc.encode("<|im_start|>assistant\n").count)), try enc.encode("<|im_start|>assistant\n"))
        XCTAssertTrue(enc.stopIDs.contains(enc.endOfTurnID))
        XCTAssertTrue(enc.stopIDs.contains(TestSupport.tokenizer.eosID))
        // A tokenizer without the end-of-turn piece is refused, naming the token.
        let dir = try TestSupport.tempDir()
        let corpus = dir.appendingPathComponent("c.txt")
        try TestSupport.sharedLines("text/tiny-shakespeare.txt", lines: 400).joined(separator: "\n").write(to: corpus, atomically: true, encoding: .utf8)
        var o = TokenizerTrainer.Options(inputs: [corpus], vocabSize: 400)
        o.userDefinedSymbols = []
        let plain = try TokenizerTrainer.train(o)
        XCTAssertThrowsError(try ChatEncoder(tokenizer: plain, template: try ChatTemplate.load("chatml"))) { e in
            XCTAssertTrue("\(e)".contains("<|im_end|>"), "\(e)")
        }
    }
}
