import Foundation
import XCTest
import FinchData

/// Shared helpers: real files under a fresh temp folder, the shared data folder, one small trained tokenizer.
enum TestSupport {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    /// `$FINCH_DATA`, else `../shared/data` beside the checkout.
    static let sharedData: URL = {
        if let env = ProcessInfo.processInfo.environment["FINCH_DATA"], !env.isEmpty { return URL(fileURLWithPath: env) }
        return packageRoot.deletingLastPathComponent().appendingPathComponent("shared/data")
    }()

    static func tempDir(_ name: String = #function) throws -> URL {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("finch-data-tests/\(safe)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// First `lines` lines of a shared data file (read, never copied into the repo).
    static func sharedLines(_ relative: String, lines: Int) throws -> [String] {
        let text = try String(contentsOf: sharedData.appendingPathComponent(relative), encoding: .utf8)
        return Array(text.split(separator: "\n", omittingEmptySubsequences: false).prefix(lines).map(String.init))
    }

    /// A small unigram tokenizer trained once per test process on shared instruction text + chat symbols.
    static let tokenizer: SentencePieceTokenizer = {
        let dir = try! tempDir("tokenizer")
        let corpus = dir.appendingPathComponent("corpus.txt")
        var text = try! sharedLines("text/tiny-shakespeare.txt", lines: 2500).joined(separator: "\n")
        text += "\n" + (try! sharedLines("instructions/gsm8k-train.jsonl", lines: 300).joined(separator: "\n"))
        try! text.write(to: corpus, atomically: true, encoding: .utf8)
        var o = TokenizerTrainer.Options(inputs: [corpus], vocabSize: 800, type: .unigram)
        o.numThreads = 2
        return try! TokenizerTrainer.train(o, into: dir)
    }()
}
