import Foundation
import XCTest
import FinchData

/// The record format is detected per record, as the README says: instruction, chat and text records may share a
/// file; a record of another kind is an error naming its line.
final class MixedRecordTests: XCTestCase {
    func write(_ lines: [String]) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("mixed-\(UUID().uuidString.prefix(6)).jsonl")
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    func testInstructionChatAndTextRecordsShareAFile() throws {
        let url = try write([#"{"instruction": "Add 1 and 2.", "input": "", "output": "3"}"#,
                             #"{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}"#,
                             #"{"text": "Plain prose."}"#])
        let file = try RecordReader.read(url)
        XCTAssertEqual(file.records.count, 3)
        XCTAssertEqual(file.records[0].messages.map(\.content), ["Add 1 and 2.", "3"])
        XCTAssertEqual(file.records[1].messages.last?.content, "Hello.")
        if case .text(let t) = file.records[2].body { XCTAssertEqual(t, "Plain prose.") } else { XCTFail("line 3 is text") }
    }

    func testARecordOfAnotherKindNamesItsLine() throws {
        let url = try write([#"{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}"#,
                             #"{"prompt": "Q?", "chosen": "A", "rejected": "B"}"#])
        XCTAssertThrowsError(try RecordReader.read(url)) { e in
            XCTAssertTrue("\(e)".contains("\(url.lastPathComponent):2") && "\(e)".contains("preference record"), "\(e)")
        }
    }
}
