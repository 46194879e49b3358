import ArgumentParser

/// `finch bench …`: performance measurements printed as small tables (or one JSON object).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure kernel, training and decoding speed against the reference figures.",
        subcommands: [BenchGemm.self, BenchAttention.self, BenchQuant.self, BenchTrain.self, BenchLoRA.self, BenchDecode.self, BenchRollout.self, BenchData.self, BenchTokenizer.self, BenchRanks.self])
}

/// `finch bench data`: the dataset pack/read benchmark (also `finch data bench`).
struct BenchData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Pack throughput (MB of JSONL per second, tokenizer on both cores) and read throughput (tokens per second through shuffle and batching), beside the Python sentencepiece package.",
        discussion: "Example: finch bench data --input ../shared/data/instructions/*.jsonl --tokenizer tok/ --template chatml")
    @OptionGroup var options: DataBenchOptions
    func run() throws { try options.run() }
}
