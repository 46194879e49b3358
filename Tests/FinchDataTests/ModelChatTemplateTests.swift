import Foundation
import XCTest
import FinchData

/// The model's own Jinja template turned into trained and untrained segments by rendering prefixes.
final class ModelChatTemplateTests: XCTestCase {
    /// SmolLM2-135M-Instruct's chat template (ChatML with a default system prompt), as its GGUF file carries it.
    static let smolLM2 = """
    {% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system
    You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>
    ' }}{% endif %}{{'<|im_start|>' + message['role'] + '
    ' + message['content'] + '<|im_end|>' + '
    '}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant
    ' }}{% endif %}
    """

    func testAssistantTurnsAndTheirEndOfTurnAreTheOnlyTrainedText() throws {
        let spec = try JinjaChatSpec(source: Self.smolLM2, origin: "smollm2", bosToken: "<|im_start|>", eosToken: "<|im_end|>")
        XCTAssertEqual(spec.endOfTurn, "<|im_end|>")
        let template = ChatTemplate.jinja(spec, name: "model:smollm2")
        let conversation = [Message(.user, "Hi"), Message(.assistant, "Hello."), Message(.user, "2+2?"), Message(.assistant, "4")]
        let segments = try template.render(conversation)
        XCTAssertEqual(segments.filter { $0.kind == .response }.map(\.text), ["Hello.<|im_end|>", "4<|im_end|>"])
        // Together the segments are exactly what the template renders for the whole conversation.
        XCTAssertEqual(ChatTemplate.text(segments), try spec.text(conversation, addGenerationPrompt: false))
        XCTAssertTrue(ChatTemplate.text(segments).hasPrefix("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"))
        // The generation prompt ends with the assistant's opening.
        let prompt = try template.render([Message(.user, "Hi")], addGenerationPrompt: true)
        XCTAssertTrue(ChatTemplate.text(prompt).hasSuffix("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"))
        XCTAssertTrue(prompt.allSatisfy { $0.kind == .prompt })
    }

    func testATemplateThatRewritesEarlierTurnsIsReportedWithTheTurn() throws {
        // Renders only the last message: rendering more of the conversation changes what came before.
        let source = "{% for m in messages %}{% if loop.last %}<t>{{ m.content }}</t>{% endif %}{% endfor %}"
        let spec = try JinjaChatSpec(source: source, origin: "rewriter", bosToken: nil, eosToken: "</t>")
        let conversation = [Message(.user, "Hi"), Message(.assistant, "Hello."), Message(.user, "More"), Message(.assistant, "Yes.")]
        XCTAssertThrowsError(try ChatTemplate.jinja(spec, name: "x").render(conversation)) { e in
            XCTAssertTrue("\(e)".contains("not prefix-stable at turn 2") && "\(e)".contains("--template"), "\(e)")
        }
    }

    func testATemplateWithoutAnEndOfTurnTokenIsRefused() {
        let source = "{% for m in messages %}{{ m.content }} {% endfor %}"
        XCTAssertThrowsError(try JinjaChatSpec(source: source, origin: "bare", bosToken: nil, eosToken: nil)) { e in
            XCTAssertTrue("\(e)".contains("end-of-turn"), "\(e)")
        }
    }

    func testADamagedTemplateFileInAModelFolderIsAnErrorNotAnotherTemplate() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tpl-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("{\"name\": \"chatml\", \"user\": ".utf8).write(to: dir.appendingPathComponent("chat_template.json"))
        XCTAssertThrowsError(try ChatTemplate.forModel(dir)) { e in
            XCTAssertTrue("\(e)".contains("chat_template.json") && "\(e)".contains("not a JSON object"), "\(e)")
        }
        try FileManager.default.removeItem(at: dir.appendingPathComponent("chat_template.json"))
        try Data("[1, 2]".utf8).write(to: dir.appendingPathComponent("finch.json"))
        XCTAssertThrowsError(try ChatTemplate.forModel(dir)) { e in XCTAssertTrue("\(e)".contains("finch.json"), "\(e)") }
        try FileManager.default.removeItem(at: dir.appendingPathComponent("finch.json"))
        XCTAssertNil(try ChatTemplate.forModel(dir))
    }
}
