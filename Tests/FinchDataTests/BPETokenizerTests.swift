import FinchData
import FinchGGUF
import Foundation
import XCTest

/// BPETokenizer against the real runtimes: llama.cpp's own test vectors for its GGUF vocabularies, and the
/// `tokenizers` package on a varied corpus. Vectors: `python3 tools/vectors/tokenizer_vectors.py`.
final class BPETokenizerTests: XCTestCase {
    struct Entry: Decodable {
        let name: String
        let gguf: String?
        let kind: String
        let lossless: Bool
    }
    struct Expected: Decodable {
        let ids: [[Int32]]
        let decoded: [String]
    }

    static let assets: URL = {
        let env = ProcessInfo.processInfo.environment["FINCH_TEST_ASSETS"]
        let base = (env?.isEmpty == false) ? URL(fileURLWithPath: env!)
            : FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/finch/test-assets")
        return base.appendingPathComponent("tokenizer_vectors")
    }()

    struct Missing: Error, CustomStringConvertible {
        var description: String {
            "tokenizer test vectors are missing at \(BPETokenizerTests.assets.path): run python3 tools/vectors/tokenizer_vectors.py"
        }
    }

    func requireAssets() throws {
        if !FileManager.default.fileExists(atPath: Self.assets.appendingPathComponent("manifest.json").path) {
            XCTFail(Missing().description)
            throw Missing()
        }
    }

    // JSONDecoder, not JSONSerialization: the latter drops a raw U+FEFF inside strings.
    func load<T: Decodable>(_ type: T.Type, _ relative: String) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(contentsOf: Self.assets.appendingPathComponent(relative)))
    }

    var manifest: [Entry] { get throws { try load([Entry].self, "manifest.json") } }
    var corpus: [String] { get throws { try load([String].self, "corpus.json") } }

    func jsonTokenizer(_ name: String) throws -> BPETokenizer {
        try BPETokenizer(contentsOf: Self.assets.appendingPathComponent("\(name)/tokenizer.json"))
    }

    func ggufTokenizer(_ relative: String) throws -> BPETokenizer {
        try BPETokenizer(gguf: GGUFFile(contentsOf: Self.assets.appendingPathComponent(relative)))
    }

    /// llama.cpp's tests/test-tokenizer-0 format: inputs split by "\n__ggml_vocab_test__\n", one line of ids each.
    func llamaCppTests(_ gguf: URL) throws -> [(String, [Int32])] {
        let inp = try String(contentsOf: URL(fileURLWithPath: gguf.path + ".inp"), encoding: .utf8)
        let out = try String(contentsOf: URL(fileURLWithPath: gguf.path + ".out"), encoding: .utf8)
        var texts = inp.components(separatedBy: "\n__ggml_vocab_test__\n")
        if texts.last == "" { texts.removeLast() }
        let lines = out.components(separatedBy: "\n")
        guard lines.count >= texts.count else { XCTFail("\(gguf.path).out has \(lines.count) lines for \(texts.count) inputs"); return [] }
        return texts.enumerated().map { i, t in
            (t, lines[i].split(separator: " ").map { Int32($0)! })
        }
    }

    func testLlamaCppVectors() throws {
        try requireAssets()
        var checked = 0
        for e in try manifest {
            guard let g = e.gguf else { continue }
            let url = Self.assets.appendingPathComponent(g)
            guard FileManager.default.fileExists(atPath: url.path + ".inp") else { continue }
            let tok = try ggufTokenizer(g)
            var bad = 0
            let tests = try llamaCppTests(url)
            for (text, ids) in tests {
                let got = try tok.encode(text)
                if got != ids {
                    bad += 1
                    if bad <= 3 { XCTFail("\(e.name): \(text.prefix(60).debugDescription): \(got.prefix(24)) != \(ids.prefix(24))") }
                }
            }
            XCTAssertEqual(bad, 0, "\(e.name): \(bad) of \(tests.count) llama.cpp vectors differ")
            checked += tests.count
            print("llama.cpp vectors \(e.name) (pre \(tok.preTokenizer)): \(tests.count - bad)/\(tests.count) equal")
        }
        XCTAssertGreaterThan(checked, 100)
    }

    func compare(_ tok: BPETokenizer, _ label: String, _ texts: [String], _ expected: Expected, lossless: Bool) throws {
        var bad = 0, badDecode = 0, badRound = 0
        let added = tok.addedTokens.map(\.content)
        for (i, text) in texts.enumerated() {
            let got = try tok.encode(text)
            if got != expected.ids[i] {
                bad += 1
                if bad <= 3 { XCTFail("\(label): \(text.prefix(60).debugDescription): \(got.prefix(24)) != \(expected.ids[i].prefix(24))") }
            }
            let decoded = try tok.decode(expected.ids[i])
            if decoded != expected.decoded[i] {
                badDecode += 1
                if badDecode <= 3 { XCTFail("\(label) decode: \(decoded.prefix(60).debugDescription) != \(expected.decoded[i].prefix(60).debugDescription)") }
            }
            if lossless && !added.contains(where: { text.contains($0) }) {
                if try tok.decode(got) != text {
                    badRound += 1
                    if badRound <= 3 { XCTFail("\(label) round trip: \(text.prefix(60).debugDescription)") }
                }
            }
        }
        XCTAssertEqual(bad, 0, "\(label): \(bad) of \(texts.count) texts encode differently from tokenizers")
        XCTAssertEqual(badDecode, 0, "\(label): \(badDecode) decodes differ")
        XCTAssertEqual(badRound, 0, "\(label): \(badRound) round trips differ")
        print("tokenizers corpus \(label): \(texts.count - bad)/\(texts.count) encode equal, \(texts.count - badDecode) decode equal")
    }

    func testTokenizersCorpus() throws {
        try requireAssets()
        let texts = try corpus
        XCTAssertGreaterThan(texts.count, 500)
        for e in try manifest {
            let expected = try load(Expected.self, "\(e.name)/expected.json")
            guard expected.ids.count == texts.count, expected.decoded.count == texts.count else {
                XCTFail("\(e.name): stale vectors (\(expected.ids.count) for \(texts.count) texts), rerun the script"); continue
            }
            try compare(jsonTokenizer(e.name), "\(e.name) tokenizer.json", texts, expected, lossless: e.lossless)
            if let g = e.gguf { try compare(ggufTokenizer(g), "\(e.name) gguf", texts, expected, lossless: e.lossless) }
        }
    }

    func testStreamingDecoder() throws {
        try requireAssets()
        let texts = try corpus.filter { !$0.contains("<|") && !$0.contains("<s>") && !$0.contains("</s>") }
        for name in ["gpt-2", "llama-bpe", "spm-llama2", "spm-metaspace", "spm-metaspace-split", "spm-gemma"] {
            let tok = try jsonTokenizer(name)
            var bad = 0
            for text in texts.prefix(400) {
                let ids = try tok.encode(text)
                var stream = StreamingDecoder(tokenizer: tok)
                var out = ""
                for id in ids {
                    let piece = try stream.append(id)
                    if piece.unicodeScalars.contains("\u{FFFD}") && !text.unicodeScalars.contains("\u{FFFD}") { bad += 1 }
                    out += piece
                }
                out += try stream.finish()
                if out != (try tok.decode(ids)) {
                    bad += 1
                    if bad <= 3 { XCTFail("\(name) stream: \(out.prefix(60).debugDescription) != \(text.prefix(60).debugDescription)") }
                }
            }
            XCTAssertEqual(bad, 0, name)
        }
        // a 4-byte emoji split over byte tokens comes out whole, once
        let tok = try jsonTokenizer("gpt-2")
        var stream = StreamingDecoder(tokenizer: tok)
        let ids = try tok.encode("🦙")
        XCTAssertGreaterThan(ids.count, 1)
        var pieces: [String] = []
        for id in ids { pieces.append(try stream.append(id)) }
        XCTAssertEqual(pieces.dropLast().joined(), "")
        XCTAssertEqual(pieces.last, "🦙")
    }

    func testSpecialTokensAndMetadata() throws {
        try requireAssets()
        let data = try Data(contentsOf: Self.assets.appendingPathComponent("smollm2/tokenizer.json"))
        let tok = try jsonTokenizer("smollm2")
        XCTAssertEqual(tok.fingerprint, SHA256.hex(data))
        let imEnd = try XCTUnwrap(tok.id(of: "<|im_end|>"))
        XCTAssertTrue(tok.isControl(imEnd))
        XCTAssertFalse(tok.isControl(try XCTUnwrap(tok.id(of: "Ġthe"))))
        XCTAssertEqual(try tok.encode("a<|im_end|>b"), [Int32(try tok.encode("a")[0]), Int32(imEnd), try tok.encode("b")[0]])
        XCTAssertEqual(try tok.decode(try tok.encode("Hi<|im_end|>")), "Hi")
        XCTAssertEqual(tok.piece(imEnd), "<|im_end|>")

        let smol = try ggufTokenizer("gguf/smollm2.gguf")
        XCTAssertEqual(smol.piece(smol.eosID), "<|im_end|>")
        XCTAssertEqual(smol.piece(smol.bosID), "<|im_start|>")
        XCTAssertTrue(smol.isControl(smol.eosID))
        XCTAssertEqual(smol.preTokenizer, .gpt2Digits)

        let llama = try ggufTokenizer("gguf/ggml-vocab-llama-bpe.gguf")
        XCTAssertEqual(llama.preTokenizer, .llama3)
        XCTAssertTrue(llama.addsBOS)
        XCTAssertEqual(llama.piece(llama.bosID), "<|begin_of_text|>")
        XCTAssertEqual(llama.fingerprint.count, 64)
        XCTAssertNotEqual(llama.fingerprint, smol.fingerprint)
        XCTAssertEqual(try llama.encode("<|start_header_id|>user<|end_header_id|>").first, Int32(try XCTUnwrap(llama.id(of: "<|start_header_id|>"))))
    }

    /// A GGUF-born tokenizer writes a tokenizer.json that Finch and `tokenizers` load to the same ids.
    func testSaveGGUFBornTokenizerJSON() throws {
        try requireAssets()
        let texts = try corpus
        for (name, g) in [("llama-bpe", "gguf/ggml-vocab-llama-bpe.gguf"), ("smollm2", "gguf/smollm2.gguf"), ("qwen2", "gguf/ggml-vocab-qwen2.gguf")] {
            let tok = try ggufTokenizer(g)
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-bpe-\(name)-\(UUID().uuidString.prefix(8))")
            defer { try? FileManager.default.removeItem(at: dir) }
            try tok.save(toFolder: dir)
            let json = dir.appendingPathComponent("tokenizer.json")
            let back = try BPETokenizer(contentsOf: json)
            XCTAssertEqual(back.vocabSize, tok.vocabSize)
            let expected = try load(Expected.self, "\(name)/expected.json")
            guard expected.ids.count == texts.count else { XCTFail("\(name): stale vectors, rerun the script"); continue }
            var bad = 0
            for (i, t) in texts.enumerated() where try back.encode(t) != expected.ids[i] { bad += 1 }
            XCTAssertEqual(bad, 0, "\(name): reloaded tokenizer.json differs on \(bad) texts")
            // the tokenizers package on the written file
            let corpusURL = Self.assets.appendingPathComponent("corpus.json")
            let outURL = dir.appendingPathComponent("ids.json")
            let script = """
            import json, sys
            from tokenizers import Tokenizer
            tok = Tokenizer.from_file(sys.argv[1])
            texts = json.load(open(sys.argv[2], encoding="utf-8"))
            json.dump([e.ids for e in tok.encode_batch(texts, add_special_tokens=False)], open(sys.argv[3], "w"))
            """
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["python3", "-c", script, json.path, corpusURL.path, outURL.path]
            try p.run()
            p.waitUntilExit()
            guard p.terminationStatus == 0 else {
                throw XCTSkip("python3 with the tokenizers package is needed to check the written tokenizer.json")
            }
            let ids = try JSONDecoder().decode([[Int32]].self, from: Data(contentsOf: outURL))
            guard ids.count == texts.count else { XCTFail("\(name): tokenizers gave \(ids.count) results"); continue }
            var badPy = 0
            for i in texts.indices where ids[i] != expected.ids[i] { badPy += 1 }
            XCTAssertEqual(badPy, 0, "\(name): tokenizers on the written tokenizer.json differs on \(badPy) texts")
        }
    }

    func testConcurrentEncode() throws {
        try requireAssets()
        let tok = try jsonTokenizer("llama-bpe")
        let texts = Array(try corpus.prefix(300))
        let expected = try texts.map { try tok.encode($0) }
        tok.clearCache()
        let failures = NSLock()
        var bad = 0
        DispatchQueue.concurrentPerform(iterations: 4) { k in
            for (i, t) in texts.enumerated() where (i + k) % 2 == 0 {
                if (try? tok.encode(t)) != expected[i] { failures.lock(); bad += 1; failures.unlock() }
            }
        }
        XCTAssertEqual(bad, 0)
    }

    // MARK: bad input

    func expectError(_ json: String, contains parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try BPETokenizer(json: Data(json.utf8), source: "bad/tokenizer.json")
            XCTFail("no error for \(json.prefix(80))", file: file, line: line)
        } catch {
            let message = "\(error)"
            for p in parts + ["bad/tokenizer.json"] {
                XCTAssertTrue(message.contains(p), "\"\(message)\" lacks \"\(p)\"", file: file, line: line)
            }
        }
    }

    func testMalformedTokenizerJSON() {
        let vocab = #""vocab": {"a": 0, "b": 1, "ab": 2}"#
        expectError("{", contains: ["JSON"])
        expectError("[]", contains: ["(root)"])
        expectError(#"{"pre_tokenizer": null}"#, contains: ["model", "missing"])
        expectError(#"{"model": {"type": "WordPiece", "vocab": {}}}"#, contains: ["model.type", "unsupported", "WordPiece"])
        expectError(#"{"model": {"type": "Unigram", "vocab": []}}"#, contains: ["model.type", "unsupported", "Unigram"])
        expectError(#"{"model": {"type": "BPE", "merges": []}}"#, contains: ["model.vocab"])
        expectError(#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 5}, "merges": []}}"#, contains: ["model.vocab", "dense"])
        expectError(#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 0}, "merges": []}}"#, contains: ["model.vocab", "dense"])
        expectError(#"{"model": {"type": "BPE", \#(vocab), "merges": ["a c"]}}"#, contains: ["model.merges[0]", "\"c\""])
        expectError(#"{"model": {"type": "BPE", \#(vocab), "merges": ["b a"]}}"#, contains: ["model.merges[0]", "\"ba\""])
        expectError(#"{"model": {"type": "BPE", \#(vocab), "merges": [["a"]]}}"#, contains: ["model.merges[0]"])
        expectError(#"{"model": {"type": "BPE", \#(vocab), "merges": [], "unk_token": "<unk>"}}"#, contains: ["model.unk_token"])
        expectError(#"{"model": {"type": "BPE", \#(vocab), "merges": []}, "pre_tokenizer": {"type": "Whitespace"}}"#,
                    contains: ["pre_tokenizer", "unsupported", "Whitespace"])
        expectError(#"{"model": {"type": "BPE", \#(vocab), "merges": []}, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Isolated", "invert": false}, {"type": "ByteLevel", "use_regex": false}]}}"#,
                    contains: ["pattern", "unsupported"])
        expectError(#"{"model": {"type": "BPE", \#(vocab), "merges": []}, "normalizer": {"type": "NFKD"}}"#, contains: ["normalizer.type", "NFKD"])
        expectError(#"{"model": {"type": "BPE", \#(vocab), "merges": []}, "added_tokens": [{"id": 1, "content": "a"}]}"#,
                    contains: ["added_tokens[0]"])
        // a minimal valid one
        XCTAssertEqual(try BPETokenizer(json: Data(#"{"model": {"type": "BPE", \#(vocab), "merges": ["a b"]}, "pre_tokenizer": {"type": "ByteLevel"}}"#.utf8)).encode("ab"), [2])
    }

    func testGGUFVocabularyErrors() {
        var v = GGUFBPEVocabulary(tokens: ["a", "b", "ab"], types: [1, 1, 1], merges: ["a b"], pre: "no-such-pre")
        XCTAssertThrowsError(try BPETokenizer(vocabulary: v, source: "x.gguf")) { e in
            XCTAssertTrue("\(e)".contains("tokenizer.ggml.pre") && "\(e)".contains("no-such-pre"), "\(e)")
        }
        v.pre = "gpt-2"
        v.merges = ["a c"]
        XCTAssertThrowsError(try BPETokenizer(vocabulary: v, source: "x.gguf")) { e in
            XCTAssertTrue("\(e)".contains("tokenizer.ggml.merges[0]"), "\(e)")
        }
        v.merges = ["a b"]
        v.types = [1]
        XCTAssertThrowsError(try BPETokenizer(vocabulary: v, source: "x.gguf")) { e in
            XCTAssertTrue("\(e)".contains("tokenizer.ggml.token_type"), "\(e)")
        }
        v.types = [1, 1, 1]
        XCTAssertEqual(try BPETokenizer(vocabulary: v, source: "x.gguf").encode("ab"), [2])
    }

    /// Throughput (printed; compare with `python3 tools/tokenizer_bench.py <tokenizer.json>`).
    func testBenchmark() throws {
        try requireAssets()
        let url = TestSupport.sharedData.appendingPathComponent("text/eltec-eng.txt")
        let data = try Data(contentsOf: url).prefix(2_000_000)
        let text = String(decoding: data, as: UTF8.self)
        for name in ["gpt-2", "llama-bpe", "qwen2", "smollm2", "spm-llama2"] {
            let r = try jsonTokenizer(name).benchmark(text: text, repeats: 1)
            print("BPETokenizer benchmark \(name): \(r)")
            XCTAssertGreaterThan(r.lineTokens, 100_000)
        }
    }
}
