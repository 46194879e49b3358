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
        size = examples.count
        length = fixed ?? examples.map(\.ids.count).max() ?? 0
        let n = size * length, length = self.length
        var ids = [Int32](repeating: padID, count: n)
        var labels = [Int32](repeating: Self.ignoreIndex, count: n)
        var targets = [Int32](repeating: Self.ignoreIndex, count: n)
        var attention = [Int32](repeating: 0, count: n)
        var positions = [Int32](repeating: 0, count: n)
        var documents = [Int32](repeating: -1, count: n)
        records = examples.map { $0.documents.map(\.record) }
        var trained = 0, real = 0
        // One pass per row over raw buffers (subscripting six arrays per token was the reader's main cost).
        ids.withUnsafeMutableBufferPointer { I in
        labels.withUnsafeMutableBufferPointer { L in
        targets.withUnsafeMutableBufferPointer { T in
        attention.withUnsafeMutableBufferPointer { A in
        positions.withUnsafeMutableBufferPointer { P in
        documents.withUnsafeMutableBufferPointer { D in
            for (b, ex) in examples.enumerated() {
                let row = b * length
                let m = min(ex.ids.count, length)
                ex.ids.withUnsafeBufferPointer { E in
                ex.mask.withUnsafeBufferPointer { M in
                    var t = 0
                    for (d, doc) in ex.documents.enumerated() {
                        var p = 0
                        while p < doc.length && t < m {
                            let k = row + t
                            I[k] = E[t]; A[k] = 1; P[k] = Int32(p); D[k] = Int32(d)
                            if M[t] != 0 && p > 0 { L[k] = E[t] }
                            t += 1; p += 1
                        }
                    }
                }
                }
                var pos = m > 0 ? P[row + m - 1] + 1 : 0
                for k in m..<length { P[row + k] = pos; pos += 1 }
                real += m
                for k in 0..<max(0, length - 1) {
                    let label = L[row + k + 1]
                    T[row + k] = label
                    if label != Self.ignoreIndex { trained += 1 }
                }
            }
        }}}}}}
        self.ids = ids; self.labels = labels; self.targets = targets
        attentionMask = attention; positionIDs = positions; documentIDs = documents
        trainedTokens = trained; realTokens = real
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
        Batch(try next(size), length: length, padID: padID)
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
