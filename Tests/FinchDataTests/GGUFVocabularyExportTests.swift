import FinchData
import FinchGGUF
import Foundation
import XCTest

/// `BPETokenizer.ggufVocabulary()` (what `finch export gguf` writes as `tokenizer.ggml.*` for a tokenizer.json): the
/// vocabulary tokenizes exactly as the tokenizer.json does, its `pre` names llama.cpp's rules for the pre-tokenizer, and
/// tokenizers llama.cpp's byte-level BPE cannot express (SentencePiece-style BPE, added tokens with single_word /
/// lstrip / rstrip) are refused. Vectors: `tools/vectors/tokenizer_vectors.py`.
final class GGUFVocabularyExportTests: XCTestCase {
    struct Entry: Decodable { let name: String; let kind: String; let pre: String? }

    func testByteLevelVocabulariesTokenizeAsTheirTokenizerJSON() throws {
        let dir = BPETokenizerTests.assets
        guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("manifest.json").path) else {
            XCTFail("missing \(dir.path): run python3 tools/vectors/tokenizer_vectors.py"); return
        }
        let manifest = try JSONDecoder().decode([Entry].self, from: Data(contentsOf: dir.appendingPathComponent("manifest.json")))
        let corpus = try JSONDecoder().decode([String].self, from: Data(contentsOf: dir.appendingPathComponent("corpus.json")))
        var checked = 0
        for e in manifest {
            let json = try BPETokenizer(contentsOf: dir.appendingPathComponent("\(e.name)/tokenizer.json"))
            // gpt-2-added has added tokens matched as single words or with stripped spaces, which GGUF cannot say.
            guard e.kind == "byte-level" && e.name != "gpt-2-added" else {
                XCTAssertThrowsError(try json.ggufVocabulary(), e.name) { err in
                    XCTAssertTrue("\(err)".contains("llama.cpp's byte-level BPE cannot express"), "\(e.name): \(err)")
                }
                continue
            }
            let v = try json.ggufVocabulary()
            if let pre = e.pre {   // llama.cpp's own name, or one it gives the same rules
                let mine = try XCTUnwrap(GGUFBPEVocabulary.preTokenizer(for: v.pre)), theirs = try XCTUnwrap(GGUFBPEVocabulary.preTokenizer(for: pre))
                XCTAssertTrue(mine.kind == theirs.kind && mine.ignoreMerges == theirs.ignoreMerges, "\(e.name): pre \(v.pre) vs llama.cpp's \(pre)")
            }
            let gguf = try BPETokenizer(vocabulary: v, source: "\(e.name) as GGUF")
            XCTAssertEqual(gguf.vocabSize, json.vocabSize, e.name)
            XCTAssertEqual(gguf.addsBOS, json.addsBOS, e.name)
            for text in corpus {
                let a = try json.encode(text), b = try gguf.encode(text)
                if a != b { XCTFail("\(e.name): \(text.debugDescription.prefix(60)) → \(a.prefix(12)) vs \(b.prefix(12))"); break }
            }
            checked += 1
        }
        print("GGUF vocabularies from tokenizer.json: \(checked) byte-level tokenizers tokenize \(corpus.count) texts identically")
        XCTAssertGreaterThanOrEqual(checked, 8)
    }
}
