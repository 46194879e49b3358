import Foundation

/// Where the rows of a [batch, length, heads·headDim] operand live: element (b, t, h, d) is at
/// `base + b·batchStride + t·rowStride + h·headDim + d`. Lets q/k/v be column slices of one fused
/// projection output, or rows of a KV cache.
public struct StridedRows {
    public var base: UnsafeMutablePointer<Float>
    public var rowStride: Int
    public var batchStride: Int
    public init(_ base: UnsafeMutablePointer<Float>, rowStride: Int, batchStride: Int) {
        self.base = base; self.rowStride = rowStride; self.batchStride = batchStride
    }
    @inline(__always) func row(_ b: Int, _ t: Int) -> UnsafeMutablePointer<Float> { base + b * batchStride + t * rowStride }
}

/// Shapes of one attention call. Queries are `queries` consecutive positions whose absolute key index
/// starts at `queryOffset`; query i sees key j iff `j <= queryOffset + i` and the key mask allows j.
/// Keys may be longer than queries (a KV cache, or prefix-tuning keys placed before the real ones).
public struct AttentionShape {
    public var batch: Int
    public var queries: Int
    public var keys: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var queryOffset: Int
    /// Sliding window: query i (absolute key index `queryOffset + i`) sees key j only when
    /// `queryOffset + i − j < window`; nil = no window.
    public var window: Int?
    /// Score scale; nil = 1/√headDim.
    public var scale: Float?
    public init(batch: Int, queries: Int, keys: Int, heads: Int, kvHeads: Int, headDim: Int, queryOffset: Int? = nil,
                window: Int? = nil, scale: Float? = nil) {
        precondition(heads % kvHeads == 0, "attention: \(heads) heads not a multiple of \(kvHeads) kv heads")
        precondition(window.map { $0 > 0 } ?? true, "attention: window must be positive")
        self.batch = batch; self.queries = queries; self.keys = keys; self.heads = heads
        self.kvHeads = kvHeads; self.headDim = headDim; self.queryOffset = queryOffset ?? (keys - queries)
        self.window = window; self.scale = scale
    }
    /// How many keys query i may see (causal bound), before the key mask.
    @inline(__always) func visible(_ i: Int) -> Int { Swift.min(keys, queryOffset + i + 1) }
    /// The first key query i may see (the sliding window's lower bound; 0 without a window).
    @inline(__always) func firstVisible(_ i: Int) -> Int {
        guard let w = window else { return 0 }
        return Swift.min(Swift.max(0, queryOffset + i - w + 1), visible(i))
    }
    @inline(__always) var scoreScale: Float { scale ?? 1 / Float(headDim).squareRoot() }
}

/// Per-key document ids for packed rows: [batch, keys] (row stride `stride`, default `keys`). Query i's
/// document is the id of key `queryOffset + i` (the queries are the last keys of the row), and it sees
/// key j only when the ids are equal or key j's id is `Attention.everyDocument` (prefix keys, virtual
/// prompt tokens). Padding is still hidden by the key mask.
public struct DocumentIDs {
    public var base: UnsafePointer<Int32>
    public var stride: Int?
    public init(_ base: UnsafePointer<Int32>, stride: Int? = nil) { self.base = base; self.stride = stride }
    @inline(__always) func row(_ b: Int, keys: Int) -> UnsafePointer<Int32> { base + b * (stride ?? keys) }
}

/// Causal multi-head self-attention with grouped-query heads (query head h uses kv head
/// h / (heads/kvHeads)), a key padding mask, and scale 1/√headDim. The forward saves one
/// log-sum-exp per (batch, head, query) so the backward recomputes the probabilities instead of
/// storing the [T, T] attention matrix.
public enum Attention {
    /// The document id of keys every query may see (prefix-tuning keys, prompt-tuning virtual tokens).
    public static let everyDocument = Int32.min

    /// Whether a query of document `qd` may see a key of document `kd`.
    @inline(__always) static func sameDocument(_ qd: Int32, _ kd: Int32) -> Bool { kd == qd || kd == everyDocument }

    /// out = softmax(q kᵀ/√hd + mask) v. `keyMask`: [batch, keys] (row stride `maskStride`, default `keys`),
    /// 0 = never attend (nil: all real).
    /// `documents`: packed rows, a query sees only keys of its own document (nil: one document per row).
    /// `lse`: [batch, heads, queries] (written). A query that sees no key gets a zero output.
    public static func forward(_ s: AttentionShape, q: StridedRows, k: StridedRows, v: StridedRows,
                               keyMask: UnsafePointer<Float>?, maskStride: Int? = nil, documents: DocumentIDs? = nil,
                               out: StridedRows, lse: UnsafeMutablePointer<Float>) {
        // A few queries (decoding) cannot repay transposing the keys for the tiles: one query row at a time.
        if s.queries < rowPathQueries {
            forwardRows(s, q: q, k: k, v: v, keyMask: keyMask, maskStride: maskStride, documents: documents, out: out, lse: lse)
        } else {
            forwardTiled(s, q: q, k: k, v: v, keyMask: keyMask, maskStride: maskStride, documents: documents, out: out, lse: lse)
        }
    }

    /// Backward of `forward`. Overwrites dq (for every query) and dk, dv (for every key, including
    /// keys no query sees, which get 0). Tasks own disjoint dk/dv rows (see `backwardTiled`).
    public static func backward(_ s: AttentionShape, q: StridedRows, k: StridedRows, v: StridedRows,
                                out: StridedRows, dOut: StridedRows, keyMask: UnsafePointer<Float>?, maskStride: Int? = nil,
                                documents: DocumentIDs? = nil, lse: UnsafePointer<Float>, dq: StridedRows, dk: StridedRows, dv: StridedRows) {
        backwardTiled(s, q: q, k: k, v: v, out: out, dOut: dOut, keyMask: keyMask, maskStride: maskStride, documents: documents,
                      lse: lse, dq: dq, dk: dk, dv: dv)
    }
}
