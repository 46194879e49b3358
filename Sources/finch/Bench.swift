import ArgumentParser

/// `finch bench …`: performance measurements printed as small tables (or one JSON object).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure kernel, training and decoding speed against the reference figures.",
        subcommands: [BenchGemm.self, BenchTrain.self, BenchDecode.self])
}
