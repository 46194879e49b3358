import Foundation
import XCTest
import FinchModel

/// The safetensors header is validated in full: a crafted or damaged file is refused with a message naming the file
/// and the tensor, never read past its end.
final class SafeTensorsValidationTests: XCTestCase {
    func file(_ header: String, data: Int) throws -> URL {
        let h = Array(header.utf8)
        var bytes = withUnsafeBytes(of: UInt64(h.count).littleEndian) { Array($0) } + h
        bytes += [UInt8](repeating: 0, count: data)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("st-\(UUID().uuidString.prefix(8)).safetensors")
        try Data(bytes).write(to: url)
        return url
    }

    func refuses(_ header: String, data: Int, _ expected: String, line: UInt = #line) throws {
        let url = try file(header, data: data)
        defer { try? FileManager.default.removeItem(at: url) }
        XCTAssertThrowsError(try SafeTensors.File(url: url), line: line) { e in
            XCTAssertTrue("\(e)".contains(url.lastPathComponent) && "\(e)".contains(expected), "\(e)", line: line)
        }
    }

    func testCraftedHeadersAreRefused() throws {
        let ok = #"{"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}"#
        XCTAssertNoThrow(try SafeTensors.File(url: try file(ok, data: 16)))
        try refuses(#"{"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [-16, 0]}}"#, data: 16, "outside")
        try refuses(#"{"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 32]}}"#, data: 16, "outside")
        try refuses(#"{"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}}"#, data: 16, "needs 4 × 4")
        try refuses(#"{"a": {"dtype": "F32", "shape": [-2, 2], "data_offsets": [0, 16]}}"#, data: 16, "negative dimension")
        try refuses(#"{"a": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 16]}}"#, data: 16, "overflows")
        try refuses(#"{"a": {"dtype": "Q9", "shape": [2], "data_offsets": [0, 2]}}"#, data: 16, "unknown dtype")
        try refuses(#"{"a": {"dtype": "F32", "shape": [2]}}"#, data: 16, "needs dtype")
        try refuses(#"{"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}"#,
                    data: 16, "overlap")
        try refuses(#"{"__metadata__": {"format": 1}}"#, data: 0, "__metadata__")
        // A header length past the end of the file (as UInt64, even one that would wrap an Int).
        var huge = withUnsafeBytes(of: UInt64.max.littleEndian) { Array($0) }
        huge += Array("{}".utf8)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("st-huge.safetensors")
        try Data(huge).write(to: url)
        XCTAssertThrowsError(try SafeTensors.File(url: url)) { XCTAssertTrue("\($0)".contains("does not fit")) }
    }
}
