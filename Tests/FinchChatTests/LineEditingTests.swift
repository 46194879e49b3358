import XCTest
import FinchChat

final class LineEditingTests: XCTestCase {
    func testKeyDecoderHandlesEscapesControlKeysAndSplitUTF8() {
        var d = KeyDecoder()
        XCTAssertEqual(d.feed(Array("a\u{1B}[D\u{1B}[C\u{1B}OH\u{1B}[4~\u{1B}[3~\u{1}\u{5}\u{3}\u{4}\r".utf8)),
                       [.text("a"), .left, .right, .home, .end, .delete, .home, .end, .interrupt, .endOfFile, .enter])
        XCTAssertEqual(d.feed([0x7F, 0x0B, 0x15, 0x17, 0x1B, UInt8(ascii: "b"), 0x1B]), [.backspace, .killToEnd, .killToStart, .deleteWordBack, .wordLeft])
        XCTAssertTrue(d.hasPending, "a lone ESC waits for more")
        XCTAssertEqual(d.feed(Array("[1;5C".utf8)), [.wordRight])
        let e = Array("é한👍".utf8)
        XCTAssertEqual(d.feed(Array(e[0..<1])), [])
        XCTAssertEqual(d.feed(Array(e[1..<4])), [.text("é")])
        XCTAssertEqual(d.feed(Array(e[4...])), [.text("한"), .text("👍")])
        XCTAssertEqual(d.feed([0xFF, UInt8(ascii: "x")]), [.ignored, .text("x")])
    }

    func testLineBufferEditing() {
        var b = LineBuffer()
        b.insert("hello world")
        b.moveWordLeft()
        XCTAssertEqual(b.cursor, 6)
        b.killToEnd()
        XCTAssertEqual(b.text, "hello ")
        b.deleteWordBack()
        XCTAssertEqual(b.text, "")
        b.insert("abc")
        b.moveHome(); b.deleteForward(); b.moveRight(); b.insert("X")
        XCTAssertEqual(b.text, "bXc")
        b.killToStart()
        XCTAssertEqual(b.text, "c"); XCTAssertEqual(b.cursor, 0)
        b.moveLeft(); b.backspace()
        XCTAssertEqual(b.text, "c", "edges do nothing")
        b.moveEnd(); b.insert(" next"); b.moveWordLeft(); b.deleteWordForward()
        XCTAssertEqual(b.text, "c ")
    }

    func testCombiningMarksAndEmojiModifiersJoinTheirCharacter() {
        var b = LineBuffer()
        b.insert("e"); b.insert("\u{301}")          // e + combining acute
        b.insert("👍"); b.insert("\u{1F3FD}")       // thumbs up + skin tone
        XCTAssertEqual(b.chars.count, 2)
        b.backspace()
        XCTAssertEqual(b.text, "e\u{301}")
        XCTAssertEqual(displayWidth(Array("a한👍")), 5)
    }

    func testHistoryFileAndNavigation() throws {
        let dir = try temporaryFolder("history")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("h")
        let h = History(file: file, limit: 3)
        for line in ["one", "two", "two", " ", "three", "four"] { h.add(line) }
        XCTAssertEqual(h.entries, ["two", "three", "four"], "no blanks, no repeats, capped")
        XCTAssertEqual(History(file: file, limit: 3).entries, ["two", "three", "four"], "reloaded from the file")

        var walk = HistoryCursor(entries: h.entries)
        XCTAssertNil(walk.down())
        XCTAssertEqual(walk.up(current: "draft"), "four")
        XCTAssertEqual(walk.up(current: "four"), "three")
        XCTAssertEqual(walk.up(current: "three"), "two")
        XCTAssertNil(walk.up(current: "two"))
        XCTAssertEqual(walk.down(), "three")
        XCTAssertEqual(walk.down(), "four")
        XCTAssertEqual(walk.down(), "draft", "coming back down restores what was being typed")
        XCTAssertNil(walk.down())
    }

    func testPipeModeEscapesNewlinesSoEachReplyIsOneLine() {
        XCTAssertEqual(PipeFormat.escape("a\nb\\c\r"), "a\\nb\\\\c\\r")
    }
}
