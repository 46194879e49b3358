import Foundation
import XCTest
import FinchData

final class TokenizerTests: XCTestCase {
    func testSHA256KnownVectors() {
        XCTAssertEqual(SHA256.hex(Data()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(Data("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let long = Data(String(repeating: "a", count: 1000).utf8)
        var s = SHA256()
        s.update(long.prefix(333)); s.update(long.dropFirst(333))
        XCTAssertEqual(s.finalizeHex(), SHA256.hex(long))
        XCTAssertEqual(SHA256.hex(long), "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }

    func testTrainedTokenizerRoundTripsAndSpecials() throws {
        let tok = TestSupport.tokenizer
        XCTAssertEqual(tok.vocabSize, 800)
        XCTAssertEqual([tok.unkID, tok.bosID, tok.eosID, tok.padID], [0, 1, 2, 3])
        XCTAssertEqual(tok.piece(3), "<pad>")
        for sym in TokenizerTrainer.chatSymbols {
            let id = try tok.requireID(sym)
            XCTAssertEqual(tok.type(id), .userDefined, sym)
            // A user-defined symbol in text is one piece.
            XCTAssertEqual(try tok.encode("x\(sym)y").filter { $0 == Int32(id) }.count, 1, sym)
        }
        XCTAssertEqual(tok.type(tok.bosID), .control)
        XCTAssertEqual(tok.type(tok.unkID), .unknown)
        for text in ["Hello world", "line one\nline two\n", "  two  spaces\tand tab", "emoji 😀 日本語", "<|im_start|>user\nhi<|im_end|>\n"] {
            XCTAssertEqual(try tok.decode(try tok.encode(text)), text)
            XCTAssertEqual(try tok.encodePieces(text).count, try tok.encode(text).count)
        }
        XCTAssertNil(tok.id(of: "definitely-not-a-piece"))
        XCTAssertEqual(tok.id(of: "<unk>"), 0)
        // Reloading from disk gives the same fingerprint and ids.
        let again = try SentencePieceTokenizer(modelBytes: tok.modelBytes)
        XCTAssertEqual(again.fingerprint, tok.fingerprint)
        XCTAssertEqual(tok.fingerprint.count, 64)
    }

    func testTrainBPEAndLoadErrors() throws {
        let dir = try TestSupport.tempDir()
        let corpus = dir.appendingPathComponent("c.txt")
        try TestSupport.sharedLines("text/tiny-shakespeare.txt", lines: 800).joined(separator: "\n").write(to: corpus, atomically: true, encoding: .utf8)
        var o = TokenizerTrainer.Options(inputs: [corpus], vocabSize: 400, type: .bpe)
        o.padID = -1
        let tok = try TokenizerTrainer.train(o, into: dir)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("tokenizer.model").path))
        XCTAssertEqual(tok.padID, -1)
        XCTAssertEqual(try tok.decode(try tok.encode("To be, or not to be")), "To be, or not to be")

        let bad = dir.appendingPathComponent("bad.model")
        try Data("not a model".utf8).write(to: bad)
        XCTAssertThrowsError(try SentencePieceTokenizer(contentsOf: bad)) { e in
            XCTAssertTrue("\(e)".contains("bad.model"), "\(e)")
        }
        o.inputs = [dir.appendingPathComponent("missing.txt")]
        XCTAssertThrowsError(try TokenizerTrainer.train(o)) { e in XCTAssertTrue("\(e)".contains("missing.txt")) }
    }
}
