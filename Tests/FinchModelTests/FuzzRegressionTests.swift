import Foundation
import XCTest
import FinchModel

/// Inputs that crashed under `tools/fuzz.sh` (libFuzzer harnesses in tools/fuzz), now refused with a thrown error.
/// The inputs live in tools/fuzz/regressions/TARGET (made by tools/fuzz/make_corpus.py).
final class FuzzRegressionTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// A Gemma 3 GGUF header with block_count 2^31-1 and one tensor: the config sized per-layer lists by the count
    /// and ran out of memory.
    func testHugeBlockCountIsRefusedBeforeAnythingIsSizedByIt() throws {
        let url = Self.root.appendingPathComponent("tools/fuzz/regressions/gguf/gemma3-block-count.gguf")
        XCTAssertThrowsError(try GGUFModelImport.config(of: url)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("gemma3.block_count = 2147483647"), message)
            XCTAssertTrue(message.contains(url.path), "the error names the file: \(message)")
        }
    }
}
