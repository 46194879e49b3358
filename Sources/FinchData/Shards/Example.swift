import Foundation

/// Where one document inside a shard entry came from.
public struct DocumentInfo: Equatable, Sendable {
    /// Tokens of this document within the entry.
    public var length: Int
    /// Global index of the record (in input order over all sources).
    public var record: Int
    /// Index into the manifest's `sources`.
    public var source: Int
    /// 1-based line of the record in its source.
    public var line: Int
    public init(length: Int, record: Int, source: Int, line: Int) {
        self.length = length; self.record = record; self.source = source; self.line = line
    }
}

/// One shard entry: a (possibly packed) token sequence with its loss mask and documents.
/// For preference datasets the documents are [prompt, chosen reply, rejected reply] of one record;
/// for prompt datasets a single prompt document.
public struct Example: Equatable, Sendable {
    public var ids: [Int32]
    /// 1 = trained.
    public var mask: [UInt8]
    public var documents: [DocumentInfo]
    public init(ids: [Int32], mask: [UInt8], documents: [DocumentInfo]) {
        self.ids = ids; self.mask = mask; self.documents = documents
    }
    public var trainedCount: Int { mask.reduce(0) { $0 + Int($1) } }

    /// Position ids restarting at 0 at every document boundary.
    public var positionIDs: [Int32] {
        var out: [Int32] = []; out.reserveCapacity(ids.count)
        for d in documents { for p in 0..<d.length { out.append(Int32(p)) } }
        return out
    }

    /// The document index (0-based within the entry) of every token.
    public var documentIDs: [Int32] {
        var out: [Int32] = []; out.reserveCapacity(ids.count)
        for (i, d) in documents.enumerated() { out += repeatElement(Int32(i), count: d.length) }
        return out
    }

    /// The ids of document `i`.
    public func documentSlice(_ i: Int) -> ArraySlice<Int32> {
        let start = documents[..<i].reduce(0) { $0 + $1.length }
        return ids[start..<(start + documents[i].length)]
    }
}

/// Binary layout of an entry before compression (little endian):
/// u32 version(1), u32 tokens, u32 documents, u32 spans, u8 idBytes, 3 pad bytes;
/// per document 4×u32 (length, record, source, line); per trained span 2×u32 (start, length);
/// ids as `idBytes` byte planes (all low bytes, then the next byte of every id, ...), which zstd compresses far better.
enum ExampleCodec {
    static func encode(_ e: Example, idBytes: Int) -> [UInt8] {
        var spans: [(UInt32, UInt32)] = []
        var i = 0
        while i < e.mask.count {
            if e.mask[i] == 0 { i += 1; continue }
            let s = i
            while i < e.mask.count && e.mask[i] != 0 { i += 1 }
            spans.append((UInt32(s), UInt32(i - s)))
        }
        var out: [UInt8] = []
        out.reserveCapacity(20 + 16 * e.documents.count + 8 * spans.count + idBytes * e.ids.count)
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        u32(1); u32(UInt32(e.ids.count)); u32(UInt32(e.documents.count)); u32(UInt32(spans.count))
        out += [UInt8(idBytes), 0, 0, 0]
        for d in e.documents { u32(UInt32(d.length)); u32(UInt32(d.record)); u32(UInt32(d.source)); u32(UInt32(d.line)) }
        for (s, l) in spans { u32(s); u32(l) }
        for plane in 0..<idBytes {
            let shift = UInt32(8 * plane)
            for id in e.ids { out.append(UInt8(truncatingIfNeeded: UInt32(bitPattern: id) >> shift)) }
        }
        return out
    }

    static func decode(_ b: [UInt8], file: String) throws -> Example {
        func bad(_ m: String) -> ShardError { .corrupt(file: file, message: m) }
        guard b.count >= 20 else { throw bad("entry too short") }
        return try b.withUnsafeBytes { raw -> Example in
            func u32(_ at: Int) -> Int { Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self))) }
            guard u32(0) == 1 else { throw bad("unknown entry version \(u32(0))") }
            let n = u32(4), nd = u32(8), ns = u32(12), idBytes = Int(raw[16])
            let need = 20 + 16 * nd + 8 * ns + idBytes * n
            guard idBytes >= 1 && idBytes <= 4, raw.count == need else { throw bad("entry size \(raw.count), expected \(need)") }
            var docs: [DocumentInfo] = []
            docs.reserveCapacity(nd)
            var p = 20
            for _ in 0..<nd { docs.append(DocumentInfo(length: u32(p), record: u32(p + 4), source: u32(p + 8), line: u32(p + 12))); p += 16 }
            var mask = [UInt8](repeating: 0, count: n)
            for _ in 0..<ns {
                let s = u32(p), l = u32(p + 4); p += 8
                guard s + l <= n else { throw bad("mask span out of range") }
                for k in s..<(s + l) { mask[k] = 1 }
            }
            // Byte planes (low bytes of every id, then the next bytes…): the first plane initialises.
            let ids = [Int32](unsafeUninitializedCapacity: n) { dst, count in
                for k in 0..<n { dst[k] = Int32(raw[p + k]) }
                for plane in 1..<max(1, idBytes) {
                    let shift = UInt32(8 * plane)
                    let base = p + plane * n
                    for k in 0..<n { dst[k] = Int32(bitPattern: UInt32(bitPattern: dst[k]) | UInt32(raw[base + k]) << shift) }
                }
                count = n
            }
            guard docs.reduce(0, { $0 + $1.length }) == n else { throw bad("document lengths do not add up to \(n) tokens") }
            return Example(ids: ids, mask: mask, documents: docs)
        }
    }
}
