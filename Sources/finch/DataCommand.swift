import ArgumentParser
import FinchData
import Foundation

/// `finch data pack|inspect|bench`.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Pack record files into sharded, compressed token datasets and inspect them.",
        subcommands: [Pack.self, Inspect.self, Bench.self])

    struct Pack: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Tokenize records with a chat template and write manifest.json + shard-NNNNN.zst into DIR.",
            discussion: "Example: finch data pack --input train.jsonl --tokenizer tok/ --template chatml --max-length 1024 --out data/sft")

        @Option(name: .long, parsing: .upToNextOption, help: "Record files (.jsonl: alpaca, chat, preference, prompt; .txt: plain text).")
        var input: [String]
        @Option(name: .long, help: "A .model file or a folder holding tokenizer.model.") var tokenizer: String
        @Option(name: .long, help: "Chat template name (in prompts/) or path to a template .json.") var template: String?
        @Option(name: .long, help: "Maximum tokens per sequence.") var maxLength: Int
        @Option(name: .long, help: "Output dataset folder.") var out: String
        @Option(name: .long, help: "Target shard size in MB (compressed).") var shardSize: Double = 64
        @Flag(inversion: .prefixedNo, help: "Pack several short examples per sequence (document boundaries kept).") var pack = true
        @Flag(name: .long, help: "Train on prompt tokens too.") var trainOnPrompt = false
        @Option(name: .long, help: "Force the record format: alpaca, chat, preference, prompt, text.") var format: String?
        @Flag(name: .long, help: "Skip bad records (listed in DIR/skipped.txt) instead of stopping at the first.") var skipInvalid = false
        @Option(name: .long, help: "zstd level.") var zstdLevel: Int32 = 6

        func run() throws {
            var o = DatasetPacker.Options(inputs: input.map { URL(fileURLWithPath: $0) }, maxLength: maxLength)
            if let format {
                guard let f = RecordFormat(rawValue: format) else {
                    throw ValidationError("--format must be one of \(RecordFormat.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                o.format = f
            }
            o.pack = pack; o.trainOnPrompt = trainOnPrompt; o.skipInvalid = skipInvalid
            o.shardMegabytes = shardSize; o.zstdLevel = zstdLevel
            let tok = try Tokenizers.load(path: tokenizer)
            let t = try template.map { try ChatTemplate.load($0) }
            let start = Date()
            let m = try DatasetPacker.pack(o, tokenizer: tok, template: t, into: URL(fileURLWithPath: out)) { print($0) }
            let secs = Date().timeIntervalSince(start)
            let inBytes = o.inputs.reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: $1.path)[.size] as? Int) ?? 0) }
            print(DatasetInspector.summary(m))
            print(String(format: "packed %.1f MB of input in %.2f s (%.1f MB/s)", Double(inBytes) / 1e6, secs, Double(inBytes) / 1e6 / secs))
        }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a dataset's counts, length histogram and truncations, and one record with its trained tokens marked.",
            discussion: "Example: finch data inspect data/sft --record 12")
        @Argument(help: "Dataset folder.") var dataset: String
        @Option(name: .long, help: "Record index to render (default 0).") var record: Int = 0
        @Option(name: .long, help: "Tokenizer (default: the dataset's own tokenizer.model).") var tokenizer: String?
        @Flag(name: .long, help: "Mark trained text with [[ ]] even on a terminal (default: bold on a terminal).") var brackets = false

        func run() throws {
            let folder = URL(fileURLWithPath: dataset)
            let reader = try DatasetReader(folder, options: .init(shuffle: false))
            print(DatasetInspector.summary(reader.manifest))
            let tok = try Tokenizers.load(path: tokenizer ?? dataset)
            guard let e = try reader.entry(containingRecord: record) else {
                let total = reader.manifest.records + reader.manifest.skipped
                if record >= total || record < 0 {
                    throw ValidationError("--record \(record) is out of range: the dataset was packed from records 0..<\(total)")
                }
                print("record \(record): skipped when the dataset was packed (see the skip counts above)")
                throw ExitCode.failure
            }
            let bold = isatty(1) != 0 && !brackets
            let mark: (String) -> String = bold ? { "\u{1B}[1m" + $0 + "\u{1B}[0m" } : { "[[" + $0 + "]]" }
            for (i, d) in e.documents.enumerated() where d.record == record {
                let src = d.source < reader.manifest.sources.count ? reader.manifest.sources[d.source].path : "?"
                let trained = e.mask[e.documents[..<i].reduce(0) { $0 + $1.length }...].prefix(d.length).reduce(0) { $0 + Int($1) }
                print("\n--- record \(record) (\(src):\(d.line)), part \(i), \(d.length) tokens, \(trained) trained \(bold ? "(bold)" : "[[marked]]") ---")
                print(try DatasetInspector.render(e, document: i, tokenizer: tok, mark: mark))
            }
        }
    }

    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure pack throughput (MB of input per second) and read throughput (tokens per second through shuffle and batching).",
            discussion: "Example: finch data bench --input ../shared/data/instructions/gsm8k-train.jsonl --tokenizer tok/ --template chatml\nSame as `finch bench data`.")
        @OptionGroup var options: DataBenchOptions
        func run() throws { try options.run() }
    }
}

/// Options and run of the data benchmark (`finch data bench` and `finch bench data`).
struct DataBenchOptions: ParsableArguments {
    @Option(name: .long, parsing: .upToNextOption, help: "Record files.") var input: [String]
    @Option(name: .long, help: "Tokenizer.") var tokenizer: String
    @Option(name: .long, help: "Chat template.") var template: String?
    @Option(name: .long, help: "Maximum tokens per sequence.") var maxLength: Int = 1024
    @Option(name: .long, help: "Batch rows for the read benchmark.") var batch: Int = 8
    @Option(name: .long, help: "Scratch folder (default: a temp folder).") var out: String?
    @Option(name: .long, help: "Runs; each figure is the median.") var repeats: Int = 3
    @Option(name: .long, help: "Python reference run side by side when present (empty: skip; default: tools/sentencepiece_bench.py for SentencePiece models, tools/tokenizers_pack_bench.py for tokenizer.json and GGUF BPE).")
    var reference: String?

    func run() throws {
        let tok = try Tokenizers.load(path: tokenizer)
        let t = try template.map { try ChatTemplate.load($0) }
        let dir = URL(fileURLWithPath: out ?? NSTemporaryDirectory() + "finch-data-bench-\(getpid())")
        defer { if out == nil { try? FileManager.default.removeItem(at: dir) } }
        let r = try DataBenchmark.run(inputs: input.map { URL(fileURLWithPath: $0) }, tokenizer: tok, template: t,
                                      maxLength: maxLength, batchSize: batch, folder: dir, repeats: repeats)
        let spm = tok as? SentencePieceTokenizer
        print("tokenizer: \(tok.source), \(tok.vocabSize) pieces, encoder: \(spm?.encoderDescription ?? "Finch BPE")")
        print(r.description)
        let reference = self.reference ?? (spm != nil ? "tools/sentencepiece_bench.py" : "tools/tokenizers_pack_bench.py")
        guard !reference.isEmpty, FileManager.default.fileExists(atPath: reference) else { return }
        // The Python package encoding the same text, run now on the same machine.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", reference, tok.source] + input
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        try p.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { print("python reference: not run (python3 with sentencepiece or tokenizers needed)"); return }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard let mbs = parts.last.flatMap({ Double($0) }) else { continue }
            print(String(format: "%@ %@: %.2f MB JSONL/s (encode only) → finch pack/python = %.2f×", String(parts[0]) + " " + String(parts[1]),
                         String(parts[2]), mbs, r.packMBPerSecond / mbs))
        }
    }
}
