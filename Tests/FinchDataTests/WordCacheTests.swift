import Foundation
import XCTest
import FinchData

/// `encode` memoises words (csp_encode_ids_into) only where that is exact: it must give the library's ids.
final class WordCacheTests: XCTestCase {
    /// Strings that stress the cuts: runs and trailing/leading spaces, a literal "▁", tabs and newlines,
    /// byte-fallback characters, chat special tokens glued to words, digits (split_digits).
    static let awkward = [
        "", " ", "  ", "a", " a", "a ", "a  b", "a   b  ", "   leading", "trailing   ", "x ▁ y", "x▁ y", "x ▁y", "▁▁ ▁",
        "tab\there\tand\nnew line \n next", "emoji 🦜 and 中文 text ü é", "<|im_start|>user\nHi there<|im_end|>\n",
        "word<|im_end|> word", "12345 678.9 -3", "the the the the", "The the THE", "a\u{00A0}b non-breaking",
        String(repeating: "long", count: 40) + " " + String(repeating: "x", count: 100) + " end",
    ]

    func check(_ tok: SentencePieceTokenizer, _ texts: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        var mismatches = 0
        for text in texts {
            // Twice: the second call is served from the cache.
            for _ in 0..<2 {
                let fast = try tok.encode(text), plain = try tok.libraryEncode(text)
                if fast != plain {
                    mismatches += 1
                    if mismatches <= 3 { XCTFail("\(text.prefix(80).debugDescription): \(fast.prefix(20)) != \(plain.prefix(20))", file: file, line: line) }
                }
            }
        }
        XCTAssertEqual(mismatches, 0, file: file, line: line)
    }

    /// A BPE tokenizer like `finch tokenizer train --type bpe` makes (identity normaliser, no dummy prefix,
    /// whitespace-only pieces allowed), trained on shared text.
    static let bpe: SentencePieceTokenizer = {
        let dir = try! TestSupport.tempDir("bpe")
        let corpus = dir.appendingPathComponent("corpus.txt")
        var text = try! TestSupport.sharedLines("text/tiny-shakespeare.txt", lines: 2500).joined(separator: "\n")
        text += "\n" + (try! TestSupport.sharedLines("instructions/gpteacher-codegen-train.jsonl", lines: 300).joined(separator: "\n"))
        try! text.write(to: corpus, atomically: true, encoding: .utf8)
        return try! TokenizerTrainer.train(TokenizerTrainer.Options(inputs: [corpus], vocabSize: 1200, type: .bpe), into: dir)
    }()

    /// Every string of 400 lines of each shared instruction and preference file (code with indentation runs,
    /// chat transcripts): memoised BPE gives the library's ids.
    func testSameIdsAsTheLibraryOnSharedData() throws {
        let tok = Self.bpe
        XCTAssertTrue(tok.memoizesWords)
        var texts = Self.awkward
        for file in ["instructions/gsm8k-train.jsonl", "instructions/gpteacher-codegen-train.jsonl",
                     "instructions/gpteacher-roleplay-train.jsonl", "preferences/hh-rlhf-harmless-base-train.jsonl"] {
            for line in try TestSupport.sharedLines(file, lines: 400) where !line.isEmpty {
                guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
                texts += object.values.compactMap { $0 as? String }
            }
        }
        XCTAssertGreaterThan(texts.count, 1500)
        try check(tok, texts)
    }

    /// The conformance models: the BPE one has a dummy prefix (cuts must drop the space it stands for); the
    /// unigram one is not memoised.
    func testConformanceModels() throws {
        let dir = TestSupport.packageRoot.deletingLastPathComponent().appendingPathComponent("shared/conformance/sentencepiece")
        let corpus = (try? String(contentsOf: dir.appendingPathComponent("corpus.txt"), encoding: .utf8)) ?? ""
        let texts = Self.awkward + corpus.split(separator: "\n").map(String.init)
        var seen = 0
        for name in ["bpe.model", "unigram.model"] {
            let url = dir.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path) else { continue }
            seen += 1
            let tok = try SentencePieceTokenizer(contentsOf: url)
            XCTAssertEqual(tok.memoizesWords, name == "bpe.model")
            try check(tok, texts)
        }
        if seen == 0 { throw XCTSkip("no ../shared/conformance/sentencepiece models") }
    }

    /// A BPE tokenizer trained with a dummy prefix on awkward whitespace.
    func testDummyPrefixBPE() throws {
        let dir = try TestSupport.tempDir()
        let corpus = dir.appendingPathComponent("corpus.txt")
        let text = try TestSupport.sharedLines("text/tiny-shakespeare.txt", lines: 1500).joined(separator: "\n")
        try text.write(to: corpus, atomically: true, encoding: .utf8)
        var o = TokenizerTrainer.Options(inputs: [corpus], vocabSize: 600, type: .bpe)
        o.addDummyPrefix = true
        let tok = try TokenizerTrainer.train(o, into: dir)
        XCTAssertTrue(tok.memoizesWords)
        try check(tok, Self.awkward + text.split(separator: "\n").prefix(800).map(String.init))
    }

    /// Unigram models are never memoised: the library breaks exact Viterbi ties ("Y"+"YYY" vs "YYY"+"Y") by
    /// float rounding of the running path score, so a word's ids can depend on the text before it.
    func testUnigramIsNotMemoised() throws {
        XCTAssertFalse(TestSupport.tokenizer.memoizesWords)
        try check(TestSupport.tokenizer, Self.awkward)
    }

    /// Threads have their own caches; results must not depend on which thread encodes.
    func testConcurrentEncoding() throws {
        let tok = Self.bpe
        let texts = try TestSupport.sharedLines("text/tiny-shakespeare.txt", lines: 2000)
        let expected = try texts.map { try tok.libraryEncode($0) }
        let failures = UnsafeMutablePointer<Int>.allocate(capacity: 4)
        failures.initialize(repeating: 0, count: 4)
        defer { failures.deallocate() }
        DispatchQueue.concurrentPerform(iterations: 4) { k in
            for (i, t) in texts.enumerated() where (try? tok.encode(t)) != expected[i] { failures[k] += 1 }
        }
        XCTAssertEqual((0..<4).map { failures[$0] }.reduce(0, +), 0)
    }
}
