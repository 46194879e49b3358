import Foundation

/// A batch of token rows, row-major `[size, length]`, right-padded.
public struct Batch: Equatable, Sendable {
    /// Rows (B).
    public var size: Int
    /// Columns (T): the longest row, or the requested fixed length.
    public var length: Int
    /// Token ids; padding holds the pad id.
    public var ids: [Int32]
    /// Hugging Face labels (the model shifts them): the id where trained, -100 on untrained tokens, on pads and on
    /// the first token of every document (never predicted across a document boundary).
    public var labels: [Int32]
    /// Next-token targets already shifted: `targets[t] = labels[t + 1]`, -100 at a row's last column.
    public var targets: [Int32]
    /// 1 for real tokens, 0 for pads.
    public var attentionMask: [Int32]
    /// Positions restart at 0 at every document start (packed rows); pads continue counting.
    public var positionIDs: [Int32]
    /// Document index within the row for each token (-1 on pads): attend only within equal ids.
    public var documentIDs: [Int32]
    /// Global record index of each document, per row.
    public var records: [[Int]]
    /// Count of `targets` that are not -100.
    public var trainedTokens: Int
    /// Tokens that are not padding.
    public var realTokens: Int

    public static let ignoreIndex: Int32 = -100

    /// Builds a batch from entries. `length` fixes T (rows longer are cut); nil = the longest row.
    public init(_ examples: [Example], length fixed: Int? = nil, padID: Int32) {
        // Serial: `try` cannot fail here.
        try! self.init(rows: examples.count, length: fixed ?? examples.map(\.ids.count).max() ?? 0, padID: padID,
                       threads: 1) { b, _ in examples[b] }
    }

    /// A batch of `rows` rows of `length` columns whose examples come from `row(b)`, called and written on
    /// `threads` workers (rows are independent, so decoding and filling run in parallel). `row(b, worker)`.
    init(rows: Int, length: Int, padID: Int32, threads: Int, row: (Int, Int) throws -> Example) throws {
        size = rows
        self.length = length
        let n = rows * length
        var ids = [Int32](repeating: padID, count: n)
        var labels = [Int32](repeating: Self.ignoreIndex, count: n)
        var targets = [Int32](repeating: Self.ignoreIndex, count: n)
        var attention = [Int32](repeating: 0, count: n)
        var positions = [Int32](repeating: 0, count: n)
        var documents = [Int32](repeating: -1, count: n)
        var records = [[Int]](repeating: [], count: rows)
        var counts = [(real: Int, trained: Int)](repeating: (0, 0), count: rows)
        var failure: Error? = nil
        let lock = NSLock()
        // One pass per row over raw buffers (subscripting six arrays per token was the reader's main cost).
        ids.withUnsafeMutableBufferPointer { I in
        labels.withUnsafeMutableBufferPointer { L in
        targets.withUnsafeMutableBufferPointer { T in
        attention.withUnsafeMutableBufferPointer { A in
        positions.withUnsafeMutableBufferPointer { P in
        documents.withUnsafeMutableBufferPointer { D in
        records.withUnsafeMutableBufferPointer { R in
        counts.withUnsafeMutableBufferPointer { C in
            let (I, L, T, A, P, D, R, C) = (I, L, T, A, P, D, R, C)
            func fill(_ b: Int, _ worker: Int) throws {
                let ex = try row(b, worker)
                R[b] = ex.documents.map(\.record)
                let rowStart = b * length
                let m = min(ex.ids.count, length)
                ex.ids.withUnsafeBufferPointer { E in
                ex.mask.withUnsafeBufferPointer { M in
                    var t = 0
                    for (d, doc) in ex.documents.enumerated() {
                        var p = 0
                        while p < doc.length && t < m {
                            let k = rowStart + t
                            I[k] = E[t]; A[k] = 1; P[k] = Int32(p); D[k] = Int32(d)
                            if M[t] != 0 && p > 0 { L[k] = E[t] }
                            t += 1; p += 1
                        }
                    }
                }
                }
                var pos = m > 0 ? P[rowStart + m - 1] + 1 : 0
                for k in m..<length { P[rowStart + k] = pos; pos += 1 }
                var trained = 0
                for k in 0..<max(0, length - 1) {
                    let label = L[rowStart + k + 1]
                    T[rowStart + k] = label
                    if label != Self.ignoreIndex { trained += 1 }
                }
                C[b] = (m, trained)
            }
            let workers = max(1, min(threads, rows))
            if workers == 1 {
                do { for b in 0..<rows { try fill(b, 0) } } catch { failure = error }
            } else {
                DispatchQueue.concurrentPerform(iterations: workers) { w in
                    do { for b in stride(from: w, to: rows, by: workers) { try fill(b, w) } } catch {
                        lock.lock(); if failure == nil { failure = error }; lock.unlock()
                    }
                }
            }
        }}}}}}}}
        if let failure { throw failure }
        self.ids = ids; self.labels = labels; self.targets = targets
        attentionMask = attention; positionIDs = positions; documentIDs = documents
        self.records = records
        realTokens = counts.reduce(0) { $0 + $1.real }
        trainedTokens = counts.reduce(0) { $0 + $1.trained }
    }
}

public struct PreferenceBatch: Equatable, Sendable {
    public var chosen: Batch
    public var rejected: Batch
    /// Prompt length of each row (the reply starts there).
    public var promptLengths: [Int]
}

extension DatasetReader {
    /// The next `size` entries as a batch (sequence datasets).
    public func nextBatch(size: Int, length: Int? = nil) throws -> Batch {
        // Fast path: all rows in one shard, decoded and written on two threads.
        if let (shard, entries) = try nextRun(size) {
            let rows = length ?? entries.map { tokens(shard: shard, index: $0) }.max() ?? 0
            return try Batch(rows: entries.count, length: rows, padID: padID, threads: 2) { b, worker in
                try decode(shard: shard, index: entries[b], worker: worker)
            }
        }
        return Batch(try next(size), length: length, padID: padID)
    }

    /// The next `size` preference records.
    public func nextPreferenceBatch(size: Int, length: Int? = nil) throws -> PreferenceBatch {
        guard manifest.kind == .preference else {
            throw ShardError.manifest(file: folder.path, message: "dataset kind is \(manifest.kind.rawValue), not preference")
        }
        var chosen: [Example] = [], rejected: [Example] = [], prompts: [Int] = []
        for e in try next(size) {
            let p = e.documents[0], c = e.documents[1], r = e.documents[2]
            let pIDs = Array(e.documentSlice(0)), cIDs = Array(e.documentSlice(1)), rIDs = Array(e.documentSlice(2))
            let one = DocumentInfo(length: 0, record: p.record, source: p.source, line: p.line)
            func row(_ reply: [Int32], _ info: DocumentInfo) -> Example {
                var d = one; d.length = pIDs.count + reply.count
                return Example(ids: pIDs + reply, mask: Array(repeating: 0, count: pIDs.count) + Array(repeating: 1, count: reply.count), documents: [d])
            }
            chosen.append(row(cIDs, c)); rejected.append(row(rIDs, r)); prompts.append(pIDs.count)
        }
        return PreferenceBatch(chosen: Batch(chosen, length: length, padID: padID), rejected: Batch(rejected, length: length, padID: padID),
                               promptLengths: prompts)
    }

    /// The next `count` prompts (prompt datasets; for other kinds, the first document of each entry).
    public func nextPrompts(_ count: Int) throws -> [[Int32]] {
        try (0..<count).map { _ in Array(try next().documentSlice(0)) }
    }
}
