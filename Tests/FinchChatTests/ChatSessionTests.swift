import XCTest
import FinchChat

final class ChatSessionTests: XCTestCase {
    private func session(context: Int = 4096, prefs: URL? = nil) -> (ChatSession, RecordingPresenter, EchoEngine) {
        let engine = EchoEngine(contextLength: context)
        let presenter = RecordingPresenter()
        let s = ChatSession(engine: engine, system: "be kind", settings: SamplingSettings(), presenter: presenter,
                            preferencesFile: prefs)
        return (s, presenter, engine)
    }

    func testMessagesStreamRepliesIntoTheConversation() {
        let (s, p, _) = session()
        XCTAssertTrue(s.handle(line: "hi there"))
        XCTAssertEqual(p.replies, ["echo: hi there"])
        XCTAssertEqual(s.conversation.messages.map(\.role), [.system, .user, .assistant])
        XCTAssertEqual(s.lastStats?.generatedTokens, 3)
        XCTAssertEqual(s.lastStats?.stopReason, .endOfTurn)
        XCTAssertTrue(s.handle(line: "   "), "blank lines are ignored")
        XCTAssertEqual(p.replies.count, 1)
        XCTAssertFalse(s.handle(line: "/quit"))
    }

    func testUndoResetSystemAndSet() {
        let (s, p, _) = session()
        s.handle(line: "one"); s.handle(line: "two")
        s.handle(line: "/undo")
        XCTAssertEqual(s.conversation.turns.map(\.content), ["one", "echo: one"])
        s.handle(line: "/system talk like a pirate")
        XCTAssertEqual(s.conversation.system, "talk like a pirate")
        s.handle(line: "/reset")
        XCTAssertEqual(s.conversation.turns, [])
        XCTAssertEqual(s.conversation.system, "talk like a pirate", "/reset keeps the system prompt")
        s.handle(line: "/undo")
        XCTAssertEqual(p.errors.last, "nothing to undo")
        s.handle(line: "/set temperature=0 seed=3")
        XCTAssertEqual(s.settings.temperature, 0)
        XCTAssertEqual(s.settings.seed, 3)
        XCTAssertEqual(p.notices.last, "temperature=0 (greedy) seed=3")
        s.handle(line: "/set min_p=2")
        XCTAssertTrue(p.errors.last!.hasPrefix("min_p=2:"))
        s.handle(line: "/show")
        XCTAssertTrue(p.said.last!.contains("settings: temperature=0 (greedy)"))
        XCTAssertTrue(p.said.last!.contains("context: "))
    }

    func testRetryThenPreferWritesAPreferenceRecordAndKeepsTheChosenAnswer() throws {
        let dir = try temporaryFolder("prefer")
        defer { try? FileManager.default.removeItem(at: dir) }
        let prefs = dir.appendingPathComponent("prefs.jsonl")
        let (s, p, _) = session(prefs: prefs)
        s.handle(line: "/prefer 1")
        XCTAssertTrue(p.errors.last!.contains("use /retry first"))
        s.handle(line: "question")
        s.handle(line: "/retry")
        XCTAssertEqual(p.replies, ["echo: question", "echo (2): question"])
        XCTAssertEqual(s.alternatives, ["echo: question"])
        s.handle(line: "/prefer 1")
        let line = try String(contentsOf: prefs, encoding: .utf8)
        XCTAssertEqual(line, #"{"prompt":[{"role":"system","content":"be kind"},{"role":"user","content":"question"}],"chosen":"echo: question","rejected":"echo (2): question"}"# + "\n")
        XCTAssertEqual(s.conversation.turns.last?.content, "echo: question", "the conversation goes on with the chosen answer")
        // A second retry round compares the newest two answers and appends.
        s.handle(line: "/retry"); s.handle(line: "/retry")
        s.handle(line: "/prefer 2")
        let records = try String(contentsOf: prefs, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(records.count, 2)
        let second = try JSONSerialization.jsonObject(with: Data(records[1].utf8)) as! [String: Any]
        XCTAssertEqual(second["chosen"] as? String, "echo (4): question")
        XCTAssertEqual(second["rejected"] as? String, "echo (3): question")
    }

    /// /good and /bad append KTO records (TRL's unpaired form, as `finch kto` reads them) to the file given once.
    func testGoodAndBadAppendKTORecords() throws {
        let dir = try temporaryFolder("feedback")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("feedback.jsonl")
        let (s, p, _) = session()
        s.handle(line: "/good")
        XCTAssertTrue(p.errors.last!.contains("no feedback file"), p.errors.last!)
        s.handle(line: "/good \(file.path)")
        XCTAssertTrue(p.errors.last!.contains("nothing to label"), p.errors.last!)
        s.handle(line: "first")
        s.handle(line: "/good \(file.path)")
        s.handle(line: "second")
        s.handle(line: "/bad")
        let lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 2)
        XCTAssertEqual(String(lines[0]), #"{"prompt":[{"role":"system","content":"be kind"},{"role":"user","content":"first"}],"completion":"echo: first","label":true}"#)
        let second = try JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as! [String: Any]
        XCTAssertEqual(second["completion"] as? String, "echo: second")
        XCTAssertEqual(second["label"] as? Bool, false)
        XCTAssertEqual((second["prompt"] as? [[String: Any]])?.count, 4, "the whole conversation before the answer")
        XCTAssertThrowsError(try ReplCommand.parse("/bad a b"))
    }

    func testPreferNeedsAFile() {
        let (s, p, _) = session()
        s.handle(line: "q"); s.handle(line: "/retry"); s.handle(line: "/prefer 2")
        XCTAssertTrue(p.errors.last!.contains("--prefs FILE"))
    }

    func testSaveAppendsChatRecords() throws {
        let dir = try temporaryFolder("save")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("sub/chats.jsonl")
        let (s, p, _) = session()
        s.handle(line: "/save \(file.path)")
        XCTAssertEqual(p.errors.last, "nothing to save yet")
        s.handle(line: "a \"quoted\" word")
        s.handle(line: "/save \(file.path)")
        s.handle(line: "/save \(file.path)")
        let lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 2)
        XCTAssertEqual(String(lines[0]), #"{"messages":[{"role":"system","content":"be kind"},{"role":"user","content":"a \"quoted\" word"},{"role":"assistant","content":"echo: a \"quoted\" word"}]}"#)
        XCTAssertTrue(p.notices.last!.hasPrefix("saved 3 messages"))
    }

    func testInterruptKeepsThePartialReplyMarked() {
        let (s, p, _) = session()
        var tokens = 0
        s.interruptRequested = { tokens += 1; return tokens >= 2 }
        s.handle(line: "one two three four five")
        XCTAssertEqual(p.replies, ["echo: one "])
        XCTAssertEqual(s.lastStats?.stopReason, .interrupted)
        XCTAssertEqual(s.conversation.turns.last, Message(role: .assistant, content: "echo: one ", interrupted: true))
    }

    func testFullContextDropsOldestTurnsButNeverTheSystemPrompt() {
        // Echo counts 4 tokens a message plus one a word; the reply reserve is a quarter of 60 = 15.
        let (s, p, _) = session(context: 60)
        s.handle(line: "a b c d e")       // 2 + 6 (system) + 9 = 17 tokens
        s.handle(line: "f g h i j")       // with the reply: 17 + 10 + 9 = 36
        XCTAssertTrue(p.notices.isEmpty)
        s.handle(line: "k l m n o")       // 36 + 10 + 9 = 55 > 45: the first exchange goes
        XCTAssertEqual(p.notices.last, "context full: dropped the 2 oldest messages (the system prompt is kept)")
        XCTAssertEqual(s.conversation.system, "be kind")
        XCTAssertEqual(s.conversation.turns.first?.content, "f g h i j")
        let long = Array(repeating: "w", count: 60).joined(separator: " ")
        s.handle(line: long)
        XCTAssertTrue(p.errors.last!.contains("too long"), p.errors.last ?? "")
        XCTAssertNotEqual(s.conversation.turns.last?.content, long, "a message that cannot fit is not kept")
        XCTAssertEqual(s.conversation.exchangeCount, 2, "and the history is not dropped for it")
    }

    func testMaxTokensAndStopStrings() {
        let (s, p, _) = session()
        s.handle(line: "/set max_tokens=2")
        s.handle(line: "a b c")
        XCTAssertEqual(p.replies.last, "echo: a ")
        XCTAssertEqual(s.lastStats?.stopReason, .maxTokens)
        s.handle(line: "/set max_tokens=100 stop=STOP")
        s.handle(line: "x yST OP STOPPED z")
        XCTAssertEqual(p.replies.last, "echo: x yST OP ")
        XCTAssertEqual(s.lastStats?.stopReason, .stopString("STOP"))
    }
}
