import Foundation
import XCTest
import FinchData

final class RecordTests: XCTestCase {
    func testSharedFilesReadWithDetectedFormats() throws {
        let expected: [(String, RecordFormat, Int)] = [
            ("instructions/gsm8k-train.jsonl", .alpaca, 7099),
            ("instructions/gpteacher-roleplay-train.jsonl", .alpaca, 1827),
            ("preferences/hh-rlhf-harmless-base-train.jsonl", .preference, 2188),
        ]
        for (path, format, rows) in expected {
            let f = try RecordReader.read(TestSupport.sharedData.appendingPathComponent(path))
            XCTAssertEqual(f.format, format, path)
            XCTAssertEqual(f.records.count, rows, path)
            XCTAssertTrue(f.skipped.isEmpty)
        }
        let hh = try RecordReader.read(TestSupport.sharedData.appendingPathComponent("preferences/hh-rlhf-harmless-base-train.jsonl"))
        for r in hh.records {
            guard case .preference(let prompt, let chosen, let rejected) = r.body else { return XCTFail("\(r.location)") }
            XCTAssertEqual(prompt.first?.role, .user, "\(r.location)")
            XCTAssertEqual(prompt.last?.role, .user, "\(r.location)")
            // Only user / assistant turns (real rows sometimes hold two assistant turns in a row).
            XCTAssertTrue(prompt.allSatisfy { $0.role != .system }, "\(r.location)")
            XCTAssertFalse(chosen.isEmpty); XCTAssertNotEqual(chosen, rejected)
        }
        XCTAssertEqual(hh.records[0].location.line, 1)
        XCTAssertTrue(hh.records[0].location.file.hasSuffix("hh-rlhf-harmless-base-train.jsonl"))
    }

    func testHHTranscriptParsing() {
        let t = HHTranscript.parse("\n\nHuman: Hi there\n\nAssistant: Hello! How can I help?\n\nHuman: Tell me a joke.\n\nAssistant:")
        XCTAssertEqual(t, [Message(.user, "Hi there"), Message(.assistant, "Hello! How can I help?"), Message(.user, "Tell me a joke.")])
        XCTAssertTrue(HHTranscript.looks("\n\nHuman: x"))
        XCTAssertFalse(HHTranscript.looks("Human being"))
    }

    func testOtherFormatsAndForcedFormat() throws {
        let dir = try TestSupport.tempDir()
        let chat = dir.appendingPathComponent("chat.jsonl")
        try """
        {"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello."},{"role":"user","content":"2+2?"},{"role":"assistant","content":"4"}]}

        {"conversations":[{"from":"human","value":"Q"},{"from":"gpt","value":"A"}]}
        """.write(to: chat, atomically: true, encoding: .utf8)
        let c = try RecordReader.read(chat)
        XCTAssertEqual(c.format, .chat)
        XCTAssertEqual(c.records.count, 2)
        XCTAssertEqual(c.records[1].location.line, 3)
        XCTAssertEqual(c.records[0].messages.count, 5)

        let pref = dir.appendingPathComponent("pref.jsonl")
        try """
        {"prompt":[{"role":"user","content":"Pick"}],"chosen":[{"role":"assistant","content":"good"}],"rejected":[{"role":"assistant","content":"bad"}]}
        {"chosen":[{"role":"user","content":"Pick"},{"role":"assistant","content":"good"}],"rejected":[{"role":"user","content":"Pick"},{"role":"assistant","content":"bad"}]}
        """.write(to: pref, atomically: true, encoding: .utf8)
        let p = try RecordReader.read(pref)
        XCTAssertEqual(p.records.map(\.body), Array(repeating: .preference(prompt: [Message(.user, "Pick")], chosen: "good", rejected: "bad"), count: 2))

        let prompts = dir.appendingPathComponent("rl.jsonl")
        try "{\"prompt\":\"Write a haiku.\"}\n".write(to: prompts, atomically: true, encoding: .utf8)
        XCTAssertEqual(try RecordReader.read(prompts).records.first?.body, .prompt([Message(.user, "Write a haiku.")]))

        // Alpaca rows forced to prompt-only (RL prompts from instruction data).
        let gsm = try RecordReader.read(TestSupport.sharedData.appendingPathComponent("instructions/gsm8k-train.jsonl"),
                                        options: .init(format: .prompt))
        XCTAssertEqual(gsm.format, .prompt)
        guard case .prompt(let m) = gsm.records[0].body else { return XCTFail() }
        XCTAssertEqual(m.map(\.role), [.user])

        let text = dir.appendingPathComponent("t.txt")
        try "para one\nline two\n\npara two\n\n\npara three\n".write(to: text, atomically: true, encoding: .utf8)
        var o = RecordReader.Options(); o.textChunkCharacters = 10
        let t = try RecordReader.read(text, options: o)
        XCTAssertEqual(t.format, .text)
        XCTAssertEqual(t.records.map(\.body), [.text("para one\nline two"), .text("para two"), .text("para three")])
        XCTAssertEqual(t.records.map(\.location.line), [1, 4, 7])
    }

    func testMalformedLinesNameFileLineAndField() throws {
        let dir = try TestSupport.tempDir()
        let cases: [(String, String)] = [
            ("{\"instruction\":\"a\",\"input\":\"\"}", "bad.jsonl:2: missing field \"output\""),
            ("{\"instruction\":\"a\",\"input\":\"\",\"output\":3}", "bad.jsonl:2: field \"output\" must be a string, found number"),
            ("{\"instruction\":\"a\",\"input\":\"\",\"output\":\"  \"}", "bad.jsonl:2: field \"output\" is empty"),
            ("{\"instruction\":\"a\",", "bad.jsonl:2: malformed JSON"),
            ("[1,2]", "bad.jsonl:2: expected a JSON object, found list"),
        ]
        let good = "{\"instruction\":\"i\",\"input\":\"\",\"output\":\"o\"}"
        for (line, message) in cases {
            let url = dir.appendingPathComponent("bad.jsonl")
            try (good + "\n" + line + "\n" + good + "\n").write(to: url, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try RecordReader.read(url)) { e in
                XCTAssertTrue("\(e)".hasSuffix(message) || "\(e)".contains(message), "\(e) vs \(message)")
                XCTAssertEqual((e as? RecordError)?.location.line, 2)
            }
            let skipped = try RecordReader.read(url, options: .init(skipInvalid: true))
            XCTAssertEqual(skipped.records.count, 2)
            XCTAssertEqual(skipped.skipped.map(\.location.line), [2])
        }
        // Invalid UTF-8 on line 2.
        let url = dir.appendingPathComponent("utf8.jsonl")
        var data = Data((good + "\n").utf8)
        data.append(contentsOf: [0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x7D, 0x0A])
        try data.write(to: url)
        XCTAssertThrowsError(try RecordReader.read(url, options: .init(format: .alpaca))) { e in
            XCTAssertTrue("\(e)".contains("utf8.jsonl:2: invalid UTF-8"), "\(e)")
        }
        let chat = dir.appendingPathComponent("chat.jsonl")
        try "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"robot\",\"content\":\"y\"}]}\n".write(to: chat, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try RecordReader.read(chat)) { e in
            XCTAssertTrue("\(e)".contains("chat.jsonl:1: messages[1].role: unknown role \"robot\""), "\(e)")
        }
    }
}
