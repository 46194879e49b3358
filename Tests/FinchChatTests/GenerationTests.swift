import XCTest
import FinchChat

final class GenerationTests: XCTestCase {
    func testPromptFileReadsRecordsAsTrainingDoes() throws {
        let dir = try temporaryFolder("prompts")
        defer { try? FileManager.default.removeItem(at: dir) }
        let chat = dir.appendingPathComponent("chat.jsonl")
        try """
        {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "ref"}]}

        {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]}
        """.write(to: chat, atomically: true, encoding: .utf8)
        let prompts = try PromptFile.read(chat, system: "default")
        XCTAssertEqual(prompts.map(\.line), [1, 3])
        XCTAssertEqual(prompts.map { $0.conversation.pendingUserMessage }, ["hi", "c"])
        XCTAssertEqual(prompts.map(\.conversation.system), ["S", "default"])
        XCTAssertEqual(prompts.map(\.reference), ["ref", "d"])

        let alpaca = dir.appendingPathComponent("alpaca.jsonl")
        try #"{"instruction": "Add", "input": "2 and 3", "output": "5"}"#.write(to: alpaca, atomically: true, encoding: .utf8)
        let a = try PromptFile.read(alpaca)
        XCTAssertEqual(a.first?.conversation.turns, [Message(role: .user, content: "Add\n\n2 and 3")])
        XCTAssertEqual(a.first?.reference, "5")

        let bad = dir.appendingPathComponent("bad.jsonl")
        try "{\"prompt\": \"ok\"}\n{oops\n".write(to: bad, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try PromptFile.read(bad)) { XCTAssertTrue("\($0)".contains("bad.jsonl:2"), "\($0)") }
    }

    func testBatchGenerationWritesOneRecordPerPromptWhateverTheBatchSize() throws {
        let dir = try temporaryFolder("generate")
        defer { try? FileManager.default.removeItem(at: dir) }
        let prompts = (1...5).map { i in
            GenerationPrompt(line: i, conversation: Conversation(turns: [Message(role: .user, content: "p\(i)")]),
                             reference: i == 2 ? "r" : nil)
        }
        var outputs: [String] = []
        for batch in [1, 2, 8] {
            let out = dir.appendingPathComponent("out\(batch).jsonl")
            var progress: [Int] = []
            let summary = try BatchGeneration.run(engine: EchoEngine(), prompts: prompts, settings: SamplingSettings(),
                                                  batch: batch, out: out) { done, _ in progress.append(done) }
            XCTAssertEqual(summary.prompts, 5); XCTAssertEqual(summary.generatedTokens, 10)
            XCTAssertEqual(progress.last, 5)
            outputs.append(try String(contentsOf: out, encoding: .utf8))
        }
        XCTAssertEqual(Set(outputs).count, 1)
        let lines = outputs[0].split(separator: "\n")
        XCTAssertEqual(lines.count, 5)
        XCTAssertEqual(String(lines[1]), #"{"line":2,"messages":[{"role":"user","content":"p2"},{"role":"assistant","content":"echo: p2"}],"response":"echo: p2","reference":"r","stop":"end of turn","tokens":2}"#)
    }
}
