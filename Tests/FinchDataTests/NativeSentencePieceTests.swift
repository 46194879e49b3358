import Foundation
import XCTest
import FinchData
import FinchTokenizerKernels

/// Finch's native SentencePiece encoder must give libsentencepiece's ids, string for string: every string of
/// the shared data and adversarial ones, on unigram and BPE models of several sizes and normalisers, the
/// conformance models, and real Llama-family vocabularies.
final class NativeSentencePieceTests: XCTestCase {
    /// Edge cases: empty, whitespace runs, unicode normalisation (NFKC folds, combining marks, full-width forms),
    /// characters outside small vocabularies, malformed-looking text, very long words, exact unigram ties.
    static let adversarial: [String] = {
        var s = WordCacheTests.awkward + [
            "YYYY", "YYYYYYYY", "Y YYYY YYYYY", String(repeating: "Y", count: 64), "aaaa aaaaa aaaaaaa", "ababababab",
            "\t", "\n", "\n\n\n", " \t \n ", "   ", "a\u{3000}b", "\u{FEFF}bom", "x\u{200B}y\u{200D}z",
            "ﬁ ﬂ ﬃ", "①②③ ⑴ ㈱", "Ｆｕｌｌ　ｗｉｄｔｈ ＡＢＣ １２３", "ｶﾀｶﾅ ﾊﾝｶｸ", "é e\u{301} Å A\u{30A} ñ n\u{303}",
            "가각 \u{1100}\u{1161}", "ℌℍ ℵ ℃ ™ ㎏ ¼", "Ω Ω", "\u{0301}leading mark", "x\u{0301}\u{0302}\u{0303}\u{0304}",
            "中文测试，标点。「引号」", "日本語のテキストです。", "한국어 텍스트", "Русский текст, ёЁ", "Ελληνικά κείμενα",
            "العربية النص", "עברית", "हिन्दी पाठ", "ไทย ภาษา", "Tiếng Việt có dấu", "🦜🦜 👩‍👩‍👧 🏳️‍🌈 🇫🇷", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛",
            "\u{FFFD} replacement", "\u{10FFFF}\u{E000}", "nul\u{0}byte", "ctrl\u{1}\u{7F}\u{9F}", "▁", "▁▁", " ▁ ", "▁x ▁",
            "<unk> <s> </s> <pad>", "<0x41> <0x0A>", "<|im_start|><|im_end|>", "<|im_start|> user", "<<SYS>>\n<</SYS>>",
            String(repeating: "supercalifragilistic", count: 60), String(repeating: "ab ", count: 400),
            String(repeating: "🦜", count: 200), String(repeating: " ", count: 300) + "x" + String(repeating: " ", count: 300),
            "def f(x):\n\treturn x  # comment\n\n\n    if x:\n        pass", "1234567890 3.14159 -42 1e-9 0x1F",
            "http://example.com/path?q=1&r=2#frag", "snake_case camelCase PascalCase kebab-case",
        ]
        // Tie-prone words after long prefixes: a memoised unigram word met at a large path score.
        for k in [1, 10, 100, 1000, 3000] {
            s.append(String(repeating: "the word ", count: k) + "YYYY YYYYYY yyyy aaaa")
            s.append(String(repeating: "中文 ", count: k) + "YYYY")
        }
        // Deterministic random strings over a mixed alphabet.
        var g = SplitMix64(seed: 7)
        let alphabet = Array("aabbcdeeeY  \t\n.,é中🦜ｱ①\u{301}▁<>|_0123") as [Character]
        for length in [1, 2, 3, 5, 8, 13, 40, 200] {
            for _ in 0..<12 { s.append(String((0..<length).map { _ in alphabet[Int(g.next() % UInt64(alphabet.count))] })) }
        }
        return s
    }()

    /// Every string of a shared JSONL file (all string fields), or every line of a text file.
    static func sharedStrings(_ relative: String, lines: Int = .max) throws -> [String] {
        let text = try String(contentsOf: TestSupport.sharedData.appendingPathComponent(relative), encoding: .utf8)
        var out: [String] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).prefix(lines) {
            if !relative.hasSuffix(".jsonl") { out.append(String(line)); continue }
            guard !line.isEmpty, let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
            out += o.keys.sorted().compactMap { o[$0] as? String }
        }
        return out
    }

    static let jsonlFiles = ["instructions/gsm8k-train.jsonl", "instructions/gpteacher-roleplay-train.jsonl",
                             "instructions/gpteacher-codegen-train.jsonl", "instructions/gpteacher-toolformer-train.jsonl",
                             "preferences/hh-rlhf-harmless-base-train.jsonl"]

    /// All shared instruction and preference strings, tiny-shakespeare's lines, and the first 20,000 lines of eltec.
    static let allShared: [String] = {
        var t: [String] = []
        for f in jsonlFiles { t += try! sharedStrings(f) }
        t += try! sharedStrings("text/tiny-shakespeare.txt")
        t += try! sharedStrings("text/eltec-eng.txt", lines: 20_000)
        return t
    }()

    /// Native and library ids of every text, compared on both cores; returns the number of texts checked.
    @discardableResult
    func check(_ tok: SentencePieceTokenizer, _ texts: [String], _ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> Int {
        guard let native = tok.native else {
            XCTFail("\(name): native encoder refused the model: \(tok.nativeFallbackReason ?? "")", file: file, line: line)
            return 0
        }
        let lock = NSLock()
        var bad: [String] = []
        let parts = 2
        DispatchQueue.concurrentPerform(iterations: parts) { p in
            for i in stride(from: p, to: texts.count, by: parts) {
                let got = native.encode(texts[i])
                let want = try? tok.libraryEncode(texts[i])
                if got != want {
                    lock.lock(); bad.append("\(texts[i].prefix(60).debugDescription): \(got.prefix(16)) != \(want.map { Array($0.prefix(16)) } ?? [])"); lock.unlock()
                }
            }
        }
        for b in bad.prefix(5) { XCTFail("\(name): \(b)", file: file, line: line) }
        XCTAssertEqual(bad.count, 0, "\(name): \(bad.count) of \(texts.count) texts differ", file: file, line: line)
        return texts.count
    }

    static func train(_ name: String, vocab: Int, type: TokenizerTrainer.ModelType, configure: (inout TokenizerTrainer.Options) -> Void = { _ in }) throws -> SentencePieceTokenizer {
        let dir = try TestSupport.tempDir(name)
        let corpus = dir.appendingPathComponent("corpus.txt")
        var text = try TestSupport.sharedLines("text/tiny-shakespeare.txt", lines: 3000).joined(separator: "\n")
        for f in jsonlFiles { text += "\n" + (try sharedStrings(f, lines: 250)).joined(separator: "\n") }
        text += "\n" + adversarial.joined(separator: "\n")
        try text.write(to: corpus, atomically: true, encoding: .utf8)
        var o = TokenizerTrainer.Options(inputs: [corpus], vocabSize: vocab, type: type)
        configure(&o)
        return try TokenizerTrainer.train(o, into: dir)
    }

    /// Finch's default trainer settings (identity, byte fallback, chat symbols), unigram and BPE, three sizes.
    func testTrainedModelsOnAllSharedData() throws {
        let shared = Self.allShared
        XCTAssertGreaterThan(shared.count, 100_000)
        var checked = 0
        for type in [TokenizerTrainer.ModelType.unigram, .bpe] {
            for vocab in [400, 2000, 8000] {
                let tok = try Self.train("\(type)\(vocab)", vocab: vocab, type: type)
                // The largest models see every string; the others the adversarial set and a quarter of the data.
                let texts = Self.adversarial + (vocab == 8000 ? shared : stride(from: 0, to: shared.count, by: 4).map { shared[$0] })
                checked += try check(tok, texts, "\(type) \(vocab)")
            }
        }
        print("native SentencePiece: \(checked) texts over 6 trained models give the library's ids")
    }

    /// nmt_nfkc with extra-whitespace removal, a dummy prefix, no byte fallback (runs of unknowns become one
    /// id), whitespace as suffix, no escaping: the normaliser's other paths.
    func testNormaliserVariants() throws {
        let sample = stride(from: 0, to: Self.allShared.count, by: 16).map { Self.allShared[$0] }
        var variants: [(String, SentencePieceTokenizer)] = []
        for type in [TokenizerTrainer.ModelType.unigram, .bpe] {
            variants.append(("\(type) nfkc", try Self.train("\(type)nfkc", vocab: 1500, type: type) {
                $0.normalization = "nmt_nfkc"; $0.removeExtraWhitespaces = true; $0.addDummyPrefix = true
            }))
            variants.append(("\(type) no byte fallback", try Self.train("\(type)nobytes", vocab: 700, type: type) {
                $0.byteFallback = false; $0.characterCoverage = 0.98; $0.addDummyPrefix = true
            }))
            variants.append(("\(type) ws suffix", try Self.train("\(type)suffix", vocab: 900, type: type) {
                $0.extra = ["treat_whitespace_as_suffix": "true"]; $0.addDummyPrefix = true; $0.removeExtraWhitespaces = true
            }))
            variants.append(("\(type) nfkc_cf", try Self.train("\(type)nfkccf", vocab: 900, type: type) {
                $0.normalization = "nmt_nfkc_cf"; $0.splitDigits = false
            }))
        }
        for (name, tok) in variants { try check(tok, Self.adversarial + sample, name) }
    }

    /// Bytes that are not UTF-8 (lone continuation bytes, truncated sequences, surrogates, overlongs) become
    /// U+FFFD one byte at a time, as in the library.
    func testMalformedUTF8() throws {
        let tok = TestSupport.tokenizer
        let native = try XCTUnwrap(tok.native)
        let cases: [[UInt8]] = [[0x80], [0xC3], [0xE4, 0xB8], [0xF0, 0x9F, 0xA6], [0xED, 0xA0, 0x80], [0xC0, 0xAF],
                                [0xF8, 0x88, 0x80, 0x80, 0x80], [0x61, 0xFF, 0x62], [0xE2, 0x96], Array("ok".utf8) + [0xC3]]
        for bytes in cases {
            try bytes.withUnsafeBytes { b in
                var got: [Int32] = []
                native.encode(b, appendingTo: &got)
                XCTAssertEqual(got, try tok.libraryEncode(utf8: b), "\(bytes)")
            }
        }
    }

    /// The conformance models and real Llama-family vocabularies (llama.cpp's llama-spm GGUF, cached
    /// tokenizer.model files).
    func testConformanceAndRealModels() throws {
        var models: [(String, SentencePieceTokenizer)] = []
        let conformance = TestSupport.packageRoot.deletingLastPathComponent().appendingPathComponent("shared/conformance/sentencepiece")
        for name in ["bpe.model", "unigram.model"] {
            let url = conformance.appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: url.path) { models.append((name, try SentencePieceTokenizer(contentsOf: url))) }
        }
        let gguf = GGUFSentencePieceTests.folder.appendingPathComponent("ggml-vocab-llama-spm.gguf")
        if FileManager.default.fileExists(atPath: gguf.path), let tok = try Tokenizers.load(path: gguf.path) as? SentencePieceTokenizer {
            models.append(("llama-spm gguf", tok))
        }
        guard !models.isEmpty else { throw XCTSkip("no conformance or real SentencePiece models here") }
        let sample = stride(from: 0, to: Self.allShared.count, by: 8).map { Self.allShared[$0] }
        for (name, tok) in models { try check(tok, Self.adversarial + sample, name) }
        // Whatever other tokenizer.model files this machine has cached (other tests write them): native where
        // supported, otherwise the library with a stated reason; either way the library's ids.
        let cache = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/finch/gguf-tokenizers")
        for dir in (try? FileManager.default.contentsOfDirectory(atPath: cache.path)) ?? [] {
            let url = cache.appendingPathComponent(dir).appendingPathComponent("tokenizer.model")
            guard let tok = try? SentencePieceTokenizer(contentsOf: url) else { continue }
            print("\(url.path): \(tok.vocabSize) pieces, \(tok.encoderDescription)")
            for text in Self.adversarial + sample.prefix(2000) {
                XCTAssertEqual(try tok.encode(text), try tok.libraryEncode(text), "\(url.path): \(text.prefix(60).debugDescription)")
            }
        }
        print("native SentencePiece: \(models.count) conformance/real models checked")
    }

    /// Models the native encoder does not implement fall back to the library and say why.
    func testUnsupportedModelsFallBack() throws {
        let tok = try Self.train("charmodel", vocab: 300, type: .unigram) { $0.extra = ["model_type": "char"] }
        XCTAssertNil(tok.native)
        XCTAssertTrue(tok.encoderDescription.contains("libsentencepiece"), tok.encoderDescription)
        XCTAssertEqual(try tok.encode("hello there"), try tok.libraryEncode("hello there"))
        XCTAssertThrowsError(try SentencePieceEncoder(modelBytes: [UInt8]([0x0A, 0x05, 0x01])))
    }
}

/// The double-array trie against a dictionary, on random keys over small and full byte alphabets.
final class ByteTrieTests: XCTestCase {
    func testLookupsMatchADictionary() {
        var g = SplitMix64(seed: 3)
        for (alphabet, count) in [(2, 50), (4, 3000), (256, 20000), (256, 1)] {
            var dict: [[UInt8]: Int32] = [:]
            var keys: [([UInt8], Int32)] = []
            for i in 0..<count {
                let key = (0..<Int(1 + g.next() % 12)).map { _ in UInt8(g.next() % UInt64(alphabet)) &+ (alphabet == 256 ? 0 : 97) }
                if dict[key] == nil { dict[key] = Int32(i) }
                keys.append((key, Int32(i)))
            }
            let trie = ByteTrie(keys.map { (bytes: $0.0, value: $0.1) })
            for (key, _) in keys { XCTAssertEqual(trie.lookup(key), dict[key]) }
            for _ in 0..<2000 {   // random probes, mostly absent, and prefixes of keys
                let probe = (0..<Int(g.next() % 14)).map { _ in UInt8(g.next() % UInt64(alphabet)) &+ (alphabet == 256 ? 0 : 97) }
                XCTAssertEqual(trie.lookup(probe), dict[probe] ?? -1, "\(probe)")
                let k = keys[Int(g.next() % UInt64(keys.count))].0
                let prefix = Array(k.prefix(Int(g.next() % UInt64(k.count + 1))))
                XCTAssertEqual(trie.lookup(prefix), dict[prefix] ?? -1)
            }
        }
    }

    /// A 262,144-piece vocabulary (Gemma's size) builds in seconds, not minutes.
    func testLargeVocabularyBuildsQuickly() {
        var g = SplitMix64(seed: 5)
        let keys = (0..<262_144).map { i in (bytes: (0..<Int(2 + g.next() % 10)).map { _ in UInt8(32 + g.next() % 200) }, value: Int32(i)) }
        let t0 = Date()
        let trie = ByteTrie(keys)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 20)
        XCTAssertEqual(trie.lookup(keys[1000].bytes) >= 0, true)
    }
}
