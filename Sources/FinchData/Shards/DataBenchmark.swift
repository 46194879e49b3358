import Foundation

/// Pack and read throughput on real files (`finch data bench`; `finch bench data` can call this too).
public enum DataBenchmark {
    public struct Result: CustomStringConvertible, Sendable {
        public var inputBytes: Int
        public var packSeconds: Double
        public var tokens: Int
        public var shardBytes: Int
        public var readTokens: Int
        public var readSeconds: Double
        /// Process CPU seconds (all threads) spent packing and reading: the machine may be shared, so wall
        /// time alone can mislead.
        public var packCPUSeconds: Double
        public var readCPUSeconds: Double
        /// A second epoch through the same reader (shard checksums already verified, shuffle reseeded).
        public var secondEpochCPUSeconds: Double
        public var secondEpochSeconds: Double
        /// Runs behind each figure (medians).
        public var repeats = 1
        public var secondEpochTokens: Int
        public var packMBPerSecond: Double { Double(inputBytes) / 1e6 / packSeconds }
        public var readTokensPerSecond: Double { Double(readTokens) / readSeconds }
        /// Shard bytes over the bytes of the same tokens as raw 32-bit ids.
        public var sizeRatio: Double { Double(shardBytes) / Double(4 * tokens) }
        public var description: String {
            (repeats > 1 ? "median of \(repeats) runs\n" : "") + String(format: "pack: %.1f MB in %.2f s wall = %.2f MB/s (%d tokens); %.2f CPU s = %.2f MB per CPU second\nshards: %d bytes = %.1f%% of raw 32-bit ids\nread: %d tokens in %.3f s wall = %.1f M tokens/s; %.3f CPU s = %.1f M tokens per CPU second (shuffle + batching, checksums verified)\nread, 2nd epoch: %.1f M tokens/s wall; %.1f M tokens per CPU second (checksums already verified)",
                   Double(inputBytes) / 1e6, packSeconds, packMBPerSecond, tokens, packCPUSeconds, Double(inputBytes) / 1e6 / packCPUSeconds,
                   shardBytes, 100 * sizeRatio, readTokens, readSeconds, readTokensPerSecond / 1e6, readCPUSeconds,
                   Double(readTokens) / readCPUSeconds / 1e6, Double(secondEpochTokens) / secondEpochSeconds / 1e6,
                   Double(secondEpochTokens) / secondEpochCPUSeconds / 1e6)
        }
    }

    /// Runs the benchmark `repeats` times and keeps the median of each timing. Every run loads the tokenizer
    /// afresh, so its word cache starts empty as in a real pack.
    public static func run(inputs: [URL], tokenizer: any TextTokenizer, template: ChatTemplate?, maxLength: Int,
                           batchSize: Int, folder: URL, repeats: Int) throws -> Result {
        var runs: [Result] = []
        for _ in 0..<max(1, repeats) {
            let fresh: any TextTokenizer = try (tokenizer as? SentencePieceTokenizer)
                .map { try SentencePieceTokenizer(modelBytes: $0.modelBytes, source: $0.source) } ?? Tokenizers.load(path: tokenizer.source)
            runs.append(try run(inputs: inputs, tokenizer: fresh, template: template, maxLength: maxLength,
                                batchSize: batchSize, folder: folder))
        }
        func median(_ key: KeyPath<Result, Double>) -> Double {
            let v = runs.map { $0[keyPath: key] }.sorted()
            return v[v.count / 2]
        }
        var r = runs[0]
        r.packSeconds = median(\.packSeconds); r.packCPUSeconds = median(\.packCPUSeconds)
        r.readSeconds = median(\.readSeconds); r.readCPUSeconds = median(\.readCPUSeconds)
        r.secondEpochSeconds = median(\.secondEpochSeconds); r.secondEpochCPUSeconds = median(\.secondEpochCPUSeconds)
        r.repeats = runs.count
        return r
    }

    public static func run(inputs: [URL], tokenizer: any TextTokenizer, template: ChatTemplate?, maxLength: Int,
                           batchSize: Int, folder: URL) throws -> Result {
        let inBytes = inputs.reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: $1.path)[.size] as? Int) ?? 0) }
        var o = DatasetPacker.Options(inputs: inputs, maxLength: maxLength)
        o.pack = true
        let t0 = Date(), c0 = cpuSeconds()
        let m = try DatasetPacker.pack(o, tokenizer: tokenizer, template: template, into: folder)
        let packSeconds = Date().timeIntervalSince(t0), packCPU = cpuSeconds() - c0
        let t1 = Date(), c1 = cpuSeconds()
        let reader = try DatasetReader(folder, options: .init(seed: 1))
        var tokens = 0
        let batches = max(1, reader.count / batchSize)
        if m.kind == .preference {
            for _ in 0..<batches { let b = try reader.nextPreferenceBatch(size: batchSize); tokens += b.chosen.realTokens + b.rejected.realTokens }
        } else {
            for _ in 0..<batches { tokens += try reader.nextBatch(size: batchSize).realTokens }
        }
        let readSeconds = Date().timeIntervalSince(t1), readCPU = cpuSeconds() - c1
        reader.cursor = Cursor(epoch: 1, position: 0)
        let c2 = cpuSeconds(), t2 = Date()
        var tokens2 = 0
        if m.kind == .preference {
            for _ in 0..<batches { let b = try reader.nextPreferenceBatch(size: batchSize); tokens2 += b.chosen.realTokens + b.rejected.realTokens }
        } else {
            for _ in 0..<batches { tokens2 += try reader.nextBatch(size: batchSize).realTokens }
        }
        let epoch2CPU = cpuSeconds() - c2, epoch2 = Date().timeIntervalSince(t2)
        return Result(inputBytes: inBytes, packSeconds: packSeconds, tokens: m.tokens, shardBytes: m.shards.reduce(0) { $0 + $1.bytes },
                      readTokens: tokens, readSeconds: readSeconds, packCPUSeconds: packCPU, readCPUSeconds: readCPU,
                      secondEpochCPUSeconds: max(epoch2CPU, 1e-9), secondEpochSeconds: max(epoch2, 1e-9),
                      secondEpochTokens: tokens2)
    }

    /// User + system CPU seconds of this process, all threads.
    static func cpuSeconds() -> Double {
        var u = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
        return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
    }
}
