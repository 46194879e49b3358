import Foundation

/// Writes shard files (`shard-NNNNN.zst`: concatenated zstd frames, one per entry) and their offset
/// indexes (`shard-NNNNN.idx`) into a folder, starting a new shard when the current one reaches `shardBytes`.
///
/// Index layout (little endian): u32 magic "FIDX", u32 entries, then per entry u64 offset, u32 compressed size,
/// u32 tokens, u32 first record index.
final class ShardWriter {
    let folder: URL
    let shardBytes: Int
    let idBytes: Int
    let codec: ZstdCodec
    private(set) var shards: [DatasetManifest.ShardInfo] = []

    private var data = Data()
    private var index: [(offset: UInt64, size: UInt32, tokens: UInt32, record: UInt32)] = []
    private var records = Set<Int>()
    private var tokens = 0

    init(folder: URL, shardBytes: Int, idBytes: Int, level: Int32) {
        self.folder = folder; self.shardBytes = shardBytes; self.idBytes = idBytes
        codec = ZstdCodec(level: level)
    }

    func add(_ e: Example) throws {
        let raw = ExampleCodec.encode(e, idBytes: idBytes)
        try add(compressed: raw.withUnsafeBytes { try codec.compress($0) }, example: e)
    }

    func add(compressed frame: Data, example e: Example) throws {
        index.append((UInt64(data.count), UInt32(frame.count), UInt32(e.ids.count), UInt32(e.documents.first?.record ?? 0)))
        data.append(frame)
        for d in e.documents { records.insert(d.record) }
        tokens += e.ids.count
        if data.count >= shardBytes { try flush() }
    }

    /// Writes the pending shard, if any.
    func flush() throws {
        guard !index.isEmpty else { return }
        let n = shards.count
        let name = String(format: "shard-%05d.zst", n), indexName = String(format: "shard-%05d.idx", n)
        var idx = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { idx.append(contentsOf: $0) } }
        idx.append(contentsOf: Array("FIDX".utf8)); u32(UInt32(index.count))
        for e in index {
            withUnsafeBytes(of: e.offset.littleEndian) { idx.append(contentsOf: $0) }
            u32(e.size); u32(e.tokens); u32(e.record)
        }
        try data.write(to: folder.appendingPathComponent(name), options: .atomic)
        try idx.write(to: folder.appendingPathComponent(indexName), options: .atomic)
        shards.append(.init(file: name, index: indexName, sha256: SHA256.hex(data), indexSHA256: SHA256.hex(idx), bytes: data.count,
                            entries: index.count, records: records.count, tokens: tokens))
        data = Data(); index = []; records = []; tokens = 0
    }
}

/// A shard's offset index.
struct ShardIndex {
    var offsets: [UInt64]
    var sizes: [UInt32]
    var tokens: [UInt32]
    var firstRecord: [UInt32]

    static func read(_ url: URL, expectedSHA256: String?) throws -> ShardIndex {
        guard let d = try? Data(contentsOf: url) else { throw ShardError.corrupt(file: url.path, message: "cannot read the shard index") }
        if let e = expectedSHA256 {
            let a = SHA256.hex(d)
            guard a == e else { throw ShardError.checksum(file: url.path, expected: e, actual: a) }
        }
        return try d.withUnsafeBytes { raw -> ShardIndex in
            guard raw.count >= 8, Array(raw[0..<4]) == Array("FIDX".utf8) else { throw ShardError.corrupt(file: url.path, message: "not a shard index") }
            let n = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
            guard raw.count == 8 + 20 * n else { throw ShardError.corrupt(file: url.path, message: "index size \(raw.count) does not match \(n) entries") }
            var s = ShardIndex(offsets: [], sizes: [], tokens: [], firstRecord: [])
            s.offsets.reserveCapacity(n); s.sizes.reserveCapacity(n); s.tokens.reserveCapacity(n); s.firstRecord.reserveCapacity(n)
            for i in 0..<n {
                let p = 8 + 20 * i
                s.offsets.append(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: p, as: UInt64.self)))
                s.sizes.append(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: p + 8, as: UInt32.self)))
                s.tokens.append(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: p + 12, as: UInt32.self)))
                s.firstRecord.append(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: p + 16, as: UInt32.self)))
            }
            return s
        }
    }
}
