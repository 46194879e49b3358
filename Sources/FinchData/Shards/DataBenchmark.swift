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
        public var packMBPerSecond: Double { Double(inputBytes) / 1e6 / packSeconds }
        public var readTokensPerSecond: Double { Double(readTokens) / readSeconds }
        /// Shard bytes over the bytes of the same tokens as raw 32-bit ids.
        public var sizeRatio: Double { Double(shardBytes) / Double(4 * tokens) }
        public var description: String {
            String(format: "pack: %.1f MB in %.2f s = %.2f MB/s (%d tokens, %.0f tokens/s)\nshards: %d bytes = %.1f%% of raw 32-bit ids\nread: %d tokens in %.3f s = %.1f M tokens/s (shuffle + batching, checksums verified)",
                   Double(inputBytes) / 1e6, packSeconds, packMBPerSecond, tokens, Double(tokens) / packSeconds,
                   shardBytes, 100 * sizeRatio, readTokens, readSeconds, readTokensPerSecond / 1e6)
        }
    }

    public static func run(inputs: [URL], tokenizer: SentencePieceTokenizer, template: ChatTemplate?, maxLength: Int,
                           batchSize: Int, folder: URL) throws -> Result {
        let inBytes = inputs.reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: $1.path)[.size] as? Int) ?? 0) }
        var o = DatasetPacker.Options(inputs: inputs, maxLength: maxLength)
        o.pack = true
        let t0 = Date()
        let m = try DatasetPacker.pack(o, tokenizer: tokenizer, template: template, into: folder)
        let packSeconds = Date().timeIntervalSince(t0)
        let reader = try DatasetReader(folder, options: .init(seed: 1))
        let t1 = Date()
        var tokens = 0
        let batches = max(1, reader.count / batchSize)
        if m.kind == .preference {
            for _ in 0..<batches { let b = try reader.nextPreferenceBatch(size: batchSize); tokens += b.chosen.realTokens + b.rejected.realTokens }
        } else {
            for _ in 0..<batches { tokens += try reader.nextBatch(size: batchSize).realTokens }
        }
        let readSeconds = Date().timeIntervalSince(t1)
        return Result(inputBytes: inBytes, packSeconds: packSeconds, tokens: m.tokens, shardBytes: m.shards.reduce(0) { $0 + $1.bytes },
                      readTokens: tokens, readSeconds: readSeconds)
    }
}
