import XCTest
import FinchChat

final class ConversationTests: XCTestCase {
    private func conversation() -> Conversation {
        Conversation(system: "sys", turns: [
            Message(role: .user, content: "u1"), Message(role: .assistant, content: "a1"),
            Message(role: .user, content: "u2"), Message(role: .assistant, content: "a2"),
            Message(role: .user, content: "u3"),
        ])
    }

    func testMessagesPutTheSystemPromptFirst() {
        XCTAssertEqual(conversation().messages.map(\.content), ["sys", "u1", "a1", "u2", "a2", "u3"])
        XCTAssertEqual(Conversation(system: "", turns: []).messages, [])
        XCTAssertEqual(conversation().pendingUserMessage, "u3")
        XCTAssertEqual(conversation().exchangeCount, 3)
    }

    func testUndoRemovesAPendingMessageOrAWholeExchange() {
        var c = conversation()
        XCTAssertEqual(c.undo(), 1)                      // only the unanswered "u3"
        XCTAssertEqual(c.turns.last?.content, "a2")
        XCTAssertEqual(c.undo(), 2)                      // "u2" + "a2"
        XCTAssertEqual(c.turns.map(\.content), ["u1", "a1"])
        c.undo()
        XCTAssertEqual(c.undo(), 0)
        XCTAssertEqual(c.system, "sys")
    }

    func testDroppingOldestNeverTouchesTheSystemPrompt() {
        var c = conversation()
        XCTAssertEqual(c.dropOldestExchange(), 2)
        XCTAssertEqual(c.messages.map(\.content), ["sys", "u2", "a2", "u3"])
        c.dropOldestExchange(); c.dropOldestExchange()
        XCTAssertEqual(c.dropOldestExchange(), 0)
        XCTAssertEqual(c.messages.map(\.content), ["sys"])
    }

    func testJSONTextEscapesLikePythonWithoutASCIIOnly() {
        XCTAssertEqual(JSONText.quote("a\"b\\c\nd\té\u{1}"), #""a\"b\\c\nd\té\u0001""#)
        let record = ChatRecords.sft(Conversation(system: "S", turns: [Message(role: .user, content: "hi"),
                                                                      Message(role: .assistant, content: "yo")]))
        XCTAssertEqual(record, #"{"messages":[{"role":"system","content":"S"},{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}"#)
        let json = try? JSONSerialization.jsonObject(with: Data(record.utf8)) as? [String: Any]
        XCTAssertEqual((json?["messages"] as? [[String: String]])?.count, 3)
    }
}
