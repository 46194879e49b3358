import XCTest
import FinchChat

final class ReplCommandTests: XCTestCase {
    func testParsesEveryCommand() throws {
        XCTAssertEqual(try ReplCommand.parse("hello /there"), .message("hello /there"))
        XCTAssertEqual(try ReplCommand.parse("//etc/hosts is a file"), .message("/etc/hosts is a file"))
        XCTAssertEqual(try ReplCommand.parse("/help"), .help)
        XCTAssertEqual(try ReplCommand.parse("  /HELP  "), .help)
        XCTAssertEqual(try ReplCommand.parse("/system"), .system(nil))
        XCTAssertEqual(try ReplCommand.parse("/system You are   terse."), .system("You are   terse."))
        XCTAssertEqual(try ReplCommand.parse("/reset"), .reset)
        XCTAssertEqual(try ReplCommand.parse("/undo"), .undo)
        XCTAssertEqual(try ReplCommand.parse("/retry"), .retry)
        XCTAssertEqual(try ReplCommand.parse("/set temperature=0.5 top_k=3"), .set("temperature=0.5 top_k=3"))
        XCTAssertEqual(try ReplCommand.parse("/show"), .show)
        XCTAssertEqual(try ReplCommand.parse("/save 'my chats.jsonl'"), .save(path: "my chats.jsonl"))
        XCTAssertEqual(try ReplCommand.parse("/prefer 2"), .prefer(choice: 2, path: nil))
        XCTAssertEqual(try ReplCommand.parse("/prefer 1 p.jsonl"), .prefer(choice: 1, path: "p.jsonl"))
        XCTAssertEqual(try ReplCommand.parse("/prefer p.jsonl"), .prefer(choice: nil, path: "p.jsonl"))
        XCTAssertEqual(try ReplCommand.parse("/quit"), .quit)
        XCTAssertEqual(try ReplCommand.parse("/exit"), .quit)
    }

    func testErrorsSayWhatIsWrong() {
        func message(_ line: String) -> String {
            do { _ = try ReplCommand.parse(line); return "no error" } catch { return "\(error)" }
        }
        XCTAssertTrue(message("/frobnicate").contains("unknown command /frobnicate"))
        XCTAssertTrue(message("/set").contains("KEY=VALUE"))
        XCTAssertTrue(message("/save").contains("one file name"))
        XCTAssertTrue(message("/save a b").contains("one file name"))
        XCTAssertTrue(message("/prefer 3 x y").contains("1 or 2"))
        XCTAssertTrue(message("/reset now").contains("takes no arguments"))
        XCTAssertTrue(message("/save \"open").contains("quote"))
    }
}
