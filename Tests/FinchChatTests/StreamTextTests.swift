import XCTest
import FinchChat

final class StreamTextTests: XCTestCase {
    func testStopFilterHoldsBackPossibleStopStringsAndCutsAtTheStop() {
        var f = StopStringFilter(stops: ["\n\nUser:", "###"])
        XCTAssertEqual(f.feed("Hello").text, "Hello")
        XCTAssertEqual(f.feed(" there\n").text, " there")       // "\n" may start "\n\nUser:"
        XCTAssertEqual(f.feed("\nUs").text, "")
        let r = f.feed("er: more")
        XCTAssertEqual(r.text, ""); XCTAssertEqual(r.stop, "\n\nUser:")

        var g = StopStringFilter(stops: ["###"])
        XCTAssertEqual(g.feed("a#").text, "a")
        XCTAssertEqual(g.feed("b").text, "#b", "a false alarm is released")
        XCTAssertEqual(g.feed("c##").text, "c")
        XCTAssertEqual(g.flush(), "##")

        var none = StopStringFilter(stops: [])
        XCTAssertEqual(none.feed("x\n").text, "x\n")
        var early = StopStringFilter(stops: ["b", "abc"])
        XCTAssertEqual(early.feed("xabcd").stop, "abc", "the stop string that starts first wins")
    }

    func testIncrementalDetokenizerEmitsOnlyNewCompleteText() throws {
        // A toy decoder in the SentencePiece style: "▁" is a space except at the start; ids 100/101 are
        // the two UTF-8 bytes of "é", which only decode together.
        let pieces = [1: "▁Hello", 2: "▁w", 3: "orld", 4: "!"]
        func decode(_ ids: [Int]) -> String {
            var bytes: [UInt8] = []
            for id in ids {
                if id == 100 { bytes.append(0xC3) } else if id == 101 { bytes.append(0xA9) } else { bytes += Array(pieces[id]!.utf8) }
            }
            let text = String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "▁", with: " ")
            return text.hasPrefix(" ") ? String(text.dropFirst()) : text
        }
        var d = IncrementalDetokenizer(decode: decode)
        XCTAssertEqual(try d.add(1), "Hello")
        XCTAssertEqual(try d.add(2), " w")
        XCTAssertEqual(try d.add(100), "", "half a character is held back")
        XCTAssertEqual(try d.add(101), "é")
        XCTAssertEqual(try d.add(3), "orld")
        XCTAssertEqual(try d.add(4), "!")
        XCTAssertEqual(try d.finish(), "")
    }
}
