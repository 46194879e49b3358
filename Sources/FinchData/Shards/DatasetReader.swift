import Foundation

/// Where a reader is in its stream: the next entry to read is `position` of epoch `epoch`'s order.
/// Store it in a checkpoint; setting it back on a reader with the same seed and split resumes exactly.
public struct Cursor: Codable, Equatable, Hashable, Sendable {
    public var epoch: Int
    public var position: Int
    public init(epoch: Int = 0, position: Int = 0) { self.epoch = epoch; self.position = position }
}

/// Streams a packed dataset: one shard mapped at a time, a seeded shuffle of shard order and of entries
/// within each shard (fresh each epoch), a held-out split, and batching.
public final class DatasetReader {
    /// Which entries this reader sees.
    public enum Split: Equatable, Sendable {
        case all
        /// Everything except the held-out fraction.
        case train(heldOut: Double)
        /// Only the held-out fraction (decided by a hash of each entry's first record index, so stable across runs).
        case heldOut(Double)
    }

    public struct Options: Sendable {
        public var seed: UInt64 = 0
        public var shuffle = true
        public var split: Split = .all
        /// Check each shard's sha256 against the manifest the first time it is opened.
        public var verifyChecksums = true
        public init(seed: UInt64 = 0, shuffle: Bool = true, split: Split = .all) {
            self.seed = seed; self.shuffle = shuffle; self.split = split
        }
    }

    public let folder: URL
    public let manifest: DatasetManifest
    public let options: Options
    /// The next entry to read.
    public var cursor: Cursor {
        didSet { if cursor.epoch != orderEpoch { order = [] } }
    }
    /// Entries per epoch in this split.
    public var count: Int { selected.count }
    /// Id written into padding positions.
    public var padID: Int32 { Int32(manifest.tokenizer.padID >= 0 ? manifest.tokenizer.padID : 0) }

    private var indexes: [ShardIndex] = []
    /// Selected entries as (shard, local index), grouped by shard in shard order.
    private var selected: [(shard: Int, entry: Int)] = []
    private var byShard: [[Int]] = []
    private var order: [(shard: Int, entry: Int)] = []
    private var orderEpoch = -1
    private var openShard = -1
    private var shardData = Data()
    private var verified = Set<Int>()
    private let codec = ZstdCodec()
    private let secondCodec = ZstdCodec()

    /// Opens a dataset folder. With `tokenizer`, refuses a dataset packed with a different one.
    public init(_ folder: URL, options: Options = Options(), tokenizer: (any TextTokenizer)? = nil) throws {
        self.folder = folder
        self.options = options
        manifest = try DatasetManifest.read(folder)
        cursor = Cursor()
        if let tokenizer, tokenizer.fingerprint != manifest.tokenizer.sha256 {
            throw ShardError.tokenizerMismatch(dataset: folder.path, expected: manifest.tokenizer.sha256, actual: tokenizer.fingerprint)
        }
        for (s, info) in manifest.shards.enumerated() {
            let idx = try ShardIndex.read(folder.appendingPathComponent(info.index), expectedSHA256: info.indexSHA256)
            guard idx.offsets.count == info.entries else {
                throw ShardError.corrupt(file: folder.appendingPathComponent(info.index).path, message: "\(idx.offsets.count) entries, manifest says \(info.entries)")
            }
            indexes.append(idx)
            var mine: [Int] = []
            for e in 0..<idx.offsets.count where Self.keep(record: Int(idx.firstRecord[e]), split: options.split) { mine.append(e) }
            byShard.append(mine)
            selected += mine.map { (s, $0) }
        }
    }

    static func keep(record: Int, split: Split) -> Bool {
        switch split {
        case .all: return true
        case .train(let f): return !heldOut(record, f)
        case .heldOut(let f): return heldOut(record, f)
        }
    }

    static func heldOut(_ record: Int, _ fraction: Double) -> Bool {
        var r = SplitMix64(seed: UInt64(record) &+ 0x5EED_5EED)
        return Double(r.next() >> 11) / Double(1 << 53) < fraction
    }

    /// The epoch's order: shards shuffled, then entries within each shard shuffled.
    private func ensureOrder() {
        guard orderEpoch != cursor.epoch || order.isEmpty else { return }
        orderEpoch = cursor.epoch
        guard options.shuffle else { order = selected; return }
        var rng = SplitMix64(seed: options.seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(cursor.epoch))
        var shards = Array(0..<byShard.count)
        rng.shuffle(&shards)
        order = []
        order.reserveCapacity(selected.count)
        for s in shards {
            var entries = byShard[s]
            var r = SplitMix64(seed: rng.next() ^ UInt64(s))
            r.shuffle(&entries)
            order += entries.map { (s, $0) }
        }
    }

    /// The next entry (wrapping to the next epoch at the end).
    public func next() throws -> Example {
        guard !selected.isEmpty else { throw ShardError.manifest(file: folder.path, message: "the split holds no entries") }
        if cursor.position >= selected.count { cursor = Cursor(epoch: cursor.epoch + 1, position: 0) }
        ensureOrder()
        let (s, e) = order[cursor.position]
        cursor.position += 1
        return try entry(shard: s, index: e)
    }

    /// Moves the cursor past the next `count` entries without reading them, exactly as `count` calls of `next()`
    /// would (a data-parallel rank skips the rows another rank reads).
    public func skip(_ count: Int) throws {
        guard !selected.isEmpty else { throw ShardError.manifest(file: folder.path, message: "the split holds no entries") }
        var left = count
        while left > 0 {
            if cursor.position >= selected.count { cursor = Cursor(epoch: cursor.epoch + 1, position: 0) }
            let n = min(left, selected.count - cursor.position)
            cursor.position += n
            left -= n
        }
    }

    /// The next `count` entries, in cursor order. Runs of entries from one shard are decoded on two threads.
    public func next(_ count: Int) throws -> [Example] {
        guard !selected.isEmpty else { throw ShardError.manifest(file: folder.path, message: "the split holds no entries") }
        var out: [Example] = []
        out.reserveCapacity(count)
        while out.count < count {
            if cursor.position >= selected.count { cursor = Cursor(epoch: cursor.epoch + 1, position: 0) }
            ensureOrder()
            // The run of upcoming entries in the same shard (and epoch).
            let shard = order[cursor.position].shard
            var end = cursor.position
            while end < selected.count && end - cursor.position < count - out.count && order[end].shard == shard { end += 1 }
            let run = Array(order[cursor.position..<end])
            try open(shard: shard)
            if run.count < 4 {
                for (s, e) in run { out.append(try entry(shard: s, index: e)) }
            } else {
                var decoded = [Example?](repeating: nil, count: run.count)
                var failure: Error? = nil
                let lock = NSLock()
                let codecs = [codec, secondCodec]
                decoded.withUnsafeMutableBufferPointer { slots in
                    let slots = slots
                    DispatchQueue.concurrentPerform(iterations: 2) { w in
                        for i in stride(from: w, to: run.count, by: 2) {
                            do { slots[i] = try decode(shard: shard, index: run[i].entry, codec: codecs[w]) } catch {
                                lock.lock(); if failure == nil { failure = error }; lock.unlock()
                                return
                            }
                        }
                    }
                }
                if let failure { throw failure }
                out += decoded.map { $0! }
            }
            cursor.position = end
        }
        return out
    }

    /// When the next `count` entries all lie in one shard (and epoch): advances the cursor past them, opens the
    /// shard and returns (shard, entries) for decoding with `decode(shard:index:worker:)`; else nil, cursor unchanged.
    func nextRun(_ count: Int) throws -> (Int, [Int])? {
        guard !selected.isEmpty, count > 1 else { return nil }
        if cursor.position >= selected.count { cursor = Cursor(epoch: cursor.epoch + 1, position: 0) }
        ensureOrder()
        let start = cursor.position, end = start + count
        guard end <= selected.count else { return nil }
        let shard = order[start].shard
        guard order[start..<end].allSatisfy({ $0.shard == shard }) else { return nil }
        try open(shard: shard)
        cursor.position = end
        return (shard, order[start..<end].map(\.entry))
    }

    /// Token count of an entry, from the shard index (no decoding).
    func tokens(shard s: Int, index e: Int) -> Int { Int(indexes[s].tokens[e]) }

    /// Decodes an entry of the open shard with worker `worker`'s codec (0 or 1; one thread per worker).
    func decode(shard s: Int, index e: Int, worker: Int) throws -> Example {
        try decode(shard: s, index: e, codec: worker == 0 ? codec : secondCodec)
    }

    /// Random access to entry `index` of shard `shard` (only that frame is decoded).
    public func entry(shard s: Int, index e: Int) throws -> Example {
        try open(shard: s)
        return try decode(shard: s, index: e, codec: codec)
    }

    /// Decodes one entry of the open shard.
    private func decode(shard s: Int, index e: Int, codec: ZstdCodec) throws -> Example {
        let file = folder.appendingPathComponent(manifest.shards[s].file).path
        let idx = indexes[s]
        // Offsets come from the index file: compared as UInt64, so a huge one cannot overflow or wrap.
        guard idx.offsets[e] <= UInt64(shardData.count), UInt64(idx.sizes[e]) <= UInt64(shardData.count) - idx.offsets[e] else {
            throw ShardError.corrupt(file: file, message: "entry \(e) (\(idx.sizes[e]) bytes at offset \(idx.offsets[e])) lies beyond the end of the file (\(shardData.count) bytes; truncated?)")
        }
        let start = Int(idx.offsets[e]), size = Int(idx.sizes[e])
        // An entry of n tokens takes 20 + 16·documents + 8·spans + idBytes·n bytes: a frame that claims far more is corrupt.
        let maxSize = 64 + 32 * (Int(idx.tokens[e]) + 4)
        let raw = try shardData.withUnsafeBytes {
            try codec.decompress(UnsafeRawBufferPointer(rebasing: $0[start..<(start + size)]), file: "\(file) (entry \(e) at offset \(start))", maxSize: maxSize)
        }
        let ex = try ExampleCodec.decode(raw, file: file)
        guard ex.ids.count == Int(idx.tokens[e]) else { throw ShardError.corrupt(file: file, message: "entry \(e) has \(ex.ids.count) tokens, index says \(idx.tokens[e])") }
        return ex
    }

    /// The entry holding global record `record` (searching shard indexes, then decoding candidates).
    public func entry(containingRecord record: Int) throws -> Example? {
        for (s, idx) in indexes.enumerated() {
            for e in 0..<idx.firstRecord.count where Int(idx.firstRecord[e]) <= record && (e + 1 == idx.firstRecord.count || Int(idx.firstRecord[e + 1]) >= record) {
                let ex = try entry(shard: s, index: e)
                if ex.documents.contains(where: { $0.record == record }) { return ex }
            }
        }
        return nil
    }

    private func open(shard s: Int) throws {
        guard s != openShard else { return }
        let info = manifest.shards[s]
        let url = folder.appendingPathComponent(info.file)
        let data: Data
        do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw ShardError.corrupt(file: url.path, message: "cannot read: \(error.localizedDescription)")
        }
        guard data.count == info.bytes else {
            throw ShardError.corrupt(file: url.path, message: "\(data.count) bytes, manifest says \(info.bytes) (truncated?)")
        }
        if options.verifyChecksums && !verified.contains(s) {
            let actual = SHA256.hex(data)
            guard actual == info.sha256 else { throw ShardError.checksum(file: url.path, expected: info.sha256, actual: actual) }
            verified.insert(s)
        }
        shardData = data
        openShard = s
    }
}

/// SplitMix64: small, fast, seedable; the reader's shuffles depend only on (seed, epoch).
public struct SplitMix64: RandomNumberGenerator {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Fisher–Yates with a bias-free bounded draw (independent of the standard library's algorithm).
    mutating func shuffle<T>(_ a: inout [T]) {
        guard a.count > 1 else { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) {
            let j = Int(bounded(UInt64(i + 1)))
            if i != j { a.swapAt(i, j) }
        }
    }
    mutating func bounded(_ n: UInt64) -> UInt64 {
        let limit = UInt64.max - UInt64.max % n
        while true { let x = next(); if x < limit { return x % n } }
    }
}
