import ArgumentParser
import Foundation
import FinchData

/// `finch bench tokenizer`: byte-level BPE encode throughput on one thread, side by side with the Rust
/// `tokenizers` package (Python) on the same tokenizer.json and text, as a ratio.
struct BenchTokenizer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Encode throughput of a model's BPE tokenizer (one thread), beside the tokenizers package.",
        discussion: """
        Both sides start from a freshly loaded tokenizer (cold word cache) and keep the best of 3 runs: encode of every \\
        line, and one encode of the whole text. The tokenizers side needs python3 with the `tokenizers` package; \\
        without it only Finch's figures are printed.

        Example: finch bench tokenizer --model SmolLM2-135M-Instruct.Q4_1.gguf --text-file ../shared/data/text/eltec-eng.txt
        """)
    @Option(help: "Model folder, .gguf or tokenizer.json with a BPE tokenizer.") var model: String
    @Option(help: "UTF-8 text to encode (default: ../shared/data/text/eltec-eng.txt).") var textFile: String?
    @Option(help: "Bytes of the text used.") var maxBytes = 4_000_000

    func run() throws {
        guard let bpe = try Tokenizers.load(path: model) as? BPETokenizer else {
            throw ValidationError("\(model): not a BPE tokenizer (SentencePiece models are measured by finch bench data)")
        }
        let path = textFile ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/data/text/eltec-eng.txt").path
        guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("\(path): cannot read") }
        let text = String(decoding: data.prefix(maxBytes), as: UTF8.self)
        let finch = try bpe.benchmark(text: text)
        print("finch      \(finch)")
        // The same tokenizer as tokenizer.json for the Python side.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-bench-tok-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try bpe.save(toFolder: dir)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("tools/tokenizer_bench.py")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", script.path, dir.appendingPathComponent("tokenizer.json").path, path, "--max-bytes", "\(maxBytes)"]
        let pipe = Pipe()
        p.standardOutput = pipe; p.standardError = pipe
        try p.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { print("tokenizers: not measured (\(out.split(separator: "\n").last ?? ""))"); return }
        print(out.trimmingCharacters(in: .whitespacesAndNewlines))
        func rate(_ label: String) -> Double? {
            guard let line = out.split(separator: "\n").first(where: { $0.contains(label) }),
                  let r = line.split(separator: ":").last?.split(separator: " ").first else { return nil }
            return Double(r)
        }
        if let lines = rate("encode_batch(lines)"), let whole = rate("encode(whole text)") {
            print(String(format: "ratio finch / tokenizers: lines %.2f×, whole text %.2f×", finch.linesMBps / lines, finch.wholeMBps / whole))
        }
    }
}
