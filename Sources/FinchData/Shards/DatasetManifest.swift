import Foundation

/// What a dataset's entries hold.
public enum DatasetKind: String, Codable, Sendable {
    /// Token sequences with loss masks (SFT conversations or pretraining text), packed or one record each.
    case sequences
    /// (prompt, chosen, rejected) token triples, one record per entry.
    case preference
    /// Prompts for generation (RL), one record per entry.
    case prompts
}

/// `manifest.json` of a packed dataset folder.
public struct DatasetManifest: Codable, Equatable, Sendable {
    public static let currentFormatVersion = 1

    public struct TokenizerInfo: Codable, Equatable, Sendable {
        public var sha256: String
        public var vocabSize: Int
        public var bosID: Int, eosID: Int, padID: Int, unkID: Int
        enum CodingKeys: String, CodingKey {
            case sha256, vocabSize = "vocab_size", bosID = "bos_id", eosID = "eos_id", padID = "pad_id", unkID = "unk_id"
        }
    }
    public struct SourceInfo: Codable, Equatable, Sendable {
        public var path: String
        public var format: RecordFormat
        public var records: Int
        public var skipped: Int
    }
    public struct HistogramBin: Codable, Equatable, Sendable {
        /// Lengths in `from...to` (tokens).
        public var from: Int, to: Int, count: Int
    }
    public struct LengthStats: Codable, Equatable, Sendable {
        public var min: Int, max: Int, mean: Double, p50: Int, p90: Int, p99: Int
        public var histogram: [HistogramBin]
    }
    public struct ShardInfo: Codable, Equatable, Sendable {
        public var file: String
        public var index: String
        public var sha256: String
        public var indexSHA256: String
        public var bytes: Int
        public var entries: Int
        public var records: Int
        public var tokens: Int
        enum CodingKeys: String, CodingKey {
            case file, index, sha256, indexSHA256 = "index_sha256", bytes, entries, records, tokens
        }
    }

    enum CodingKeys: String, CodingKey {
        case format, formatVersion = "format_version", kind, tokenizer, template, maxLength = "max_length", packed
        case trainOnPrompt = "train_on_prompt", idBytes = "id_bytes", zstdLevel = "zstd_level", sources, records, entries
        case tokens, trainedTokens = "trained_tokens", truncated, skipped, lengths, shards, createdBy = "created_by", overlong
    }

    public var format = "finch-dataset"
    public var formatVersion = DatasetManifest.currentFormatVersion
    public var kind: DatasetKind
    public var tokenizer: TokenizerInfo
    /// The chat template used (nil for plain text).
    public var template: ChatTemplate?
    public var maxLength: Int
    public var packed: Bool
    public var trainOnPrompt: Bool
    /// Bytes per stored id (2 when the vocabulary fits in 16 bits).
    public var idBytes: Int
    public var zstdLevel: Int
    public var sources: [SourceInfo]
    /// Records written (after skipping).
    public var records: Int
    /// Shard entries (packed sequences, or records).
    public var entries: Int
    public var tokens: Int
    public var trainedTokens: Int
    /// Records cut to `maxLength`.
    public var truncated: Int
    /// Records skipped with `--skip-invalid` (listed in `skipped.txt`).
    public var skipped: Int
    /// Token lengths of records before truncation.
    public var lengths: LengthStats
    public var shards: [ShardInfo]
    public var createdBy: String
    /// Records dropped or cut for length, per file (absent in datasets packed before `--overlong` existed).
    public var overlong: OverlongReport? = nil

    static let fileName = "manifest.json"

    public static func read(_ folder: URL) throws -> DatasetManifest {
        let url = folder.appendingPathComponent(fileName)
        guard let data = try? Data(contentsOf: url) else { throw ShardError.manifest(file: url.path, message: "cannot read the manifest (not a packed dataset?)") }
        let d = JSONDecoder()
        let m: DatasetManifest
        do { m = try d.decode(DatasetManifest.self, from: data) } catch { throw ShardError.manifest(file: url.path, message: "invalid manifest: \(error)") }
        guard m.format == "finch-dataset" else { throw ShardError.manifest(file: url.path, message: "not a finch dataset manifest") }
        guard m.formatVersion <= currentFormatVersion else {
            throw ShardError.manifest(file: url.path, message: "format version \(m.formatVersion) is newer than this finch (\(currentFormatVersion))")
        }
        return m
    }

    func jsonData() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try e.encode(self)
    }

    /// Length statistics and a power-of-two histogram.
    static func stats(_ lengths: [Int]) -> LengthStats {
        guard !lengths.isEmpty else { return LengthStats(min: 0, max: 0, mean: 0, p50: 0, p90: 0, p99: 0, histogram: []) }
        let s = lengths.sorted()
        func q(_ p: Double) -> Int { s[Swift.min(s.count - 1, Int(Double(s.count - 1) * p + 0.5))] }
        var bins: [HistogramBin] = []
        var lo = 0, hi = 15
        while lo <= s.last! {
            bins.append(HistogramBin(from: lo, to: hi, count: 0))
            lo = hi + 1; hi = hi * 2 + 1
        }
        for l in s { if let i = bins.firstIndex(where: { l <= $0.to }) { bins[i].count += 1 } }
        return LengthStats(min: s.first!, max: s.last!, mean: Double(s.reduce(0, +)) / Double(s.count), p50: q(0.5), p90: q(0.9), p99: q(0.99), histogram: bins)
    }
}
