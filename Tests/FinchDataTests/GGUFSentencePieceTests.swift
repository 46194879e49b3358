import Foundation
import XCTest
import FinchData
import FinchGGUF

/// A GGUF SentencePiece vocabulary (`tokenizer.ggml.model` = "llama") rebuilt as a SentencePiece model gives
/// llama.cpp's own test ids (models/ggml-vocab-llama-spm.gguf with .inp/.out, from tools/vectors/spm_gguf_vectors.py).
final class GGUFSentencePieceTests: XCTestCase {
    static var folder: URL {
        let root = ProcessInfo.processInfo.environment["FINCH_TEST_ASSETS"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/finch/test-assets")
        return root.appendingPathComponent("spm_gguf")
    }

    func testLlamaSPMVocabularyGivesLlamaCppIds() throws {
        let gguf = Self.folder.appendingPathComponent("ggml-vocab-llama-spm.gguf")
        guard let inp = try? String(contentsOf: gguf.appendingPathExtension("inp"), encoding: .utf8),
              let out = try? String(contentsOf: gguf.appendingPathExtension("out"), encoding: .utf8) else {
            return XCTFail("llama.cpp's llama-spm vectors are missing: run python3 tools/vectors/spm_gguf_vectors.py")
        }
        let tok = try Tokenizers.load(path: gguf.path)
        XCTAssertTrue(tok is SentencePieceTokenizer)
        XCTAssertEqual(tok.vocabSize, 32000)
        XCTAssertTrue(tok.addsBOS)
        var texts = inp.components(separatedBy: "\n__ggml_vocab_test__\n")
        if texts.last?.isEmpty == true || texts.last == "\n__ggml_vocab_test__" { texts.removeLast() }   // the file ends with a separator
        var lines = out.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        XCTAssertEqual(texts.count, lines.count)
        var equal = 0
        for (text, line) in zip(texts, lines) {
            let expected = line.split(separator: " ").compactMap { Int32($0) }
            let got = try tok.encode(text)
            if got == expected { equal += 1 } else { XCTFail("\(text.debugDescription): \(got) != llama.cpp's \(expected)") }
        }
        print("llama-spm GGUF vocabulary: \(equal)/\(texts.count) texts give llama.cpp's ids")
    }

    func testVocabularyProblemsAreNamed() throws {
        // A GGUF file whose vocabulary has fewer scores than tokens.
        var w = GGUFTestWriter()
        w.kv("general.architecture", string: "llama")
        w.kv("tokenizer.ggml.model", string: "llama")
        w.kv("tokenizer.ggml.tokens", strings: ["<unk>", "<s>", "</s>", "a"])
        w.kv("tokenizer.ggml.scores", floats: [0, 0, 0])
        let file = try GGUFFile(bytes: w.bytes(), name: "bad.gguf")
        XCTAssertThrowsError(try Tokenizers.load(gguf: file)) { e in
            XCTAssertTrue("\(e)".contains("bad.gguf") && "\(e)".contains("scores"), "\(e)")
        }
    }
}

/// The smallest GGUF v3 writer the tests need: metadata only, no tensors.
struct GGUFTestWriter {
    private var kvs: [[UInt8]] = []
    private static func u32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    private static func u64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    private static func str(_ s: String) -> [UInt8] { u64(UInt64(s.utf8.count)) + Array(s.utf8) }
    mutating func kv(_ key: String, string: String) { kvs.append(Self.str(key) + Self.u32(8) + Self.str(string)) }
    mutating func kv(_ key: String, strings: [String]) {
        kvs.append(Self.str(key) + Self.u32(9) + Self.u32(8) + Self.u64(UInt64(strings.count)) + strings.flatMap(Self.str))
    }
    mutating func kv(_ key: String, floats: [Float]) {
        kvs.append(Self.str(key) + Self.u32(9) + Self.u32(6) + Self.u64(UInt64(floats.count))
                   + floats.flatMap { Self.u32($0.bitPattern) })
    }
    func bytes() -> [UInt8] {
        Array("GGUF".utf8) + Self.u32(3) + Self.u64(0) + Self.u64(UInt64(kvs.count)) + kvs.flatMap { $0 }
    }
}
