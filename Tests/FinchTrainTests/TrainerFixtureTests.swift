import Foundation
import XCTest
import FinchKernels
import FinchModel
import FinchData
import FinchTrain

/// Shared fixtures of the trainer tests: a tokenizer trained on generated text, a few instruction records
/// packed with it, tiny decoders from `Decoder(config:seed:)`, temp folders.
enum TrainerFixture {
    static func tempDir(_ name: String = #function) throws -> URL {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("finch-trainer-tests/\(safe)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static let colours = ["red", "green", "blue", "yellow", "black", "white", "orange", "purple"]
    static let things = ["cat", "dog", "bird", "fish", "house", "tree", "car", "boat"]

    /// Deterministic text with learnable regularities.
    static func corpus(lines: Int) -> String {
        var out: [String] = []
        for i in 0..<lines {
            let c = colours[i % colours.count], t = things[(i * 3) % things.count]
            out.append("the \(c) \(t) sat on the mat number \(i % 10). a \(t) is \(c).")
        }
        return out.joined(separator: "\n")
    }

    /// Instruction records: "What colour is the X?" → "The X is C."
    static func records(_ n: Int) -> String {
        (0..<n).map { i -> String in
            let c = colours[i % colours.count], t = things[(i * 5 + 1) % things.count]
            return "{\"instruction\": \"What colour is the \(t) number \(i % 7)?\", \"input\": \"\", \"output\": \"The \(t) is \(c).\"}"
        }.joined(separator: "\n") + "\n"
    }

    static let root: URL = try! tempDir("fixture")

    /// A small unigram tokenizer (trained once per process).
    static let tokenizer: SentencePieceTokenizer = {
        let corpusURL = root.appendingPathComponent("corpus.txt")
        try! (corpus(lines: 400) + "\n" + records(40)).write(to: corpusURL, atomically: true, encoding: .utf8)
        var o = TokenizerTrainer.Options(inputs: [corpusURL], vocabSize: 330, type: .unigram)
        o.numThreads = 2
        return try! TokenizerTrainer.train(o, into: root.appendingPathComponent("tok"))
    }()

    static var tokenizerURL: URL { _ = tokenizer; return root.appendingPathComponent("tok/tokenizer.model") }

    /// ChatML without a default system prompt (keeps the tiny test rows short).
    static let template: ChatTemplate = {
        let url = root.appendingPathComponent("chatml-short.json")
        let json = """
        {"name": "chatml-short", "description": "test", "bos": false,
         "system": {"prefix": "<|im_start|>system\\n", "suffix": "<|im_end|>\\n"},
         "user": {"prefix": "<|im_start|>user\\n", "suffix": "<|im_end|>\\n"},
         "assistant": {"prefix": "<|im_start|>assistant\\n", "suffix": "<|im_end|>\\n"},
         "end_of_turn": "<|im_end|>", "special_tokens": ["<|im_start|>", "<|im_end|>"]}
        """
        try! json.write(to: url, atomically: true, encoding: .utf8)
        return try! ChatTemplate.load(url.path)
    }()

    /// `records(n)` written to a JSONL file.
    static func recordsFile(_ n: Int, in dir: URL) throws -> URL {
        let u = dir.appendingPathComponent("train.jsonl")
        try records(n).write(to: u, atomically: true, encoding: .utf8)
        return u
    }

    /// `n` records packed one per entry (chatml) into `dir/data`.
    static func dataset(_ n: Int, in dir: URL, maxLength: Int = 96, pack: Bool = false) throws -> URL {
        let file = try recordsFile(n, in: dir)
        var o = DatasetPacker.Options(inputs: [file], maxLength: maxLength)
        o.pack = pack
        o.threads = 1
        let out = dir.appendingPathComponent("data")
        try DatasetPacker.pack(o, tokenizer: tokenizer, template: template, into: out)
        return out
    }

    static func config(_ flavour: Flavour = .llama, layers: Int = 2) -> DecoderConfig {
        DecoderConfig(flavour: flavour, vocabSize: tokenizer.vocabSize, hiddenSize: 32, numLayers: layers, numHeads: 4,
                      numKVHeads: flavour == .llama ? 2 : nil, intermediateSize: 64, maxPositions: 128,
                      tieWordEmbeddings: flavour == .gpt2, eosTokenId: tokenizer.eosID)
    }

    static func decoder(_ flavour: Flavour = .llama, seed: UInt64 = 7) -> Decoder {
        Decoder(config: config(flavour), seed: seed)
    }

    static func trainerConfig(steps: Int, method: String = "full") -> TrainerConfig {
        var c = TrainerConfig()
        c.maxSteps = steps
        c.batchSize = 4
        c.seqLen = 96
        c.lr = 3e-3
        c.warmup = 2
        c.evalEvery = -1
        c.method = method
        c.seed = 3
        return c
    }

    /// Copies of every parameter (for before/after comparisons).
    static func snapshot(_ d: Decoder) -> [String: [Float]] { d.parameters.mapValues(\.array) }
}

final class TrainerFixtureTests: XCTestCase {
    func testFixtureDatasetHasEntries() throws {
        let dir = try TrainerFixture.tempDir()
        let data = try TrainerFixture.dataset(12, in: dir)
        let r = try DatasetReader(data, tokenizer: TrainerFixture.tokenizer)
        XCTAssertEqual(r.count, 12)
    }
}
