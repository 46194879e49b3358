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
        let hd = s.headDim, group = s.heads / s.kvHeads
        let scale = s.scoreScale
        let tasks = s.batch * s.heads
        ThreadPool.shared.parallelFor(tasks * s.queries, minChunk: 8) { _, range in
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: max(s.keys, 1))
            defer { scores.deallocate() }
            for task in range {
                let i = task % s.queries, bh = task / s.queries
                let b = bh / s.heads, h = bh % s.heads, kvh = h / group
                let qi = q.row(b, i) + h * hd
                let o = out.row(b, i) + h * hd
                let n = s.visible(i), j0 = s.firstVisible(i)
                let mask = keyMask.map { $0 + b * (maskStride ?? s.keys) }
                let docs = documents?.row(b, keys: s.keys)
                let qd = docs?[s.queryOffset + i] ?? 0
                var mx = -Float.infinity
                for j in j0..<n {
                    if let m = mask, m[j] == 0 { scores[j] = -.infinity; continue }
                    if let d = docs, !sameDocument(qd, d[j]) { scores[j] = -.infinity; continue }
                    let sc = VectorMath.dot(qi, k.row(b, j) + kvh * hd, hd) * scale
                    scores[j] = sc
                    if sc > mx { mx = sc }
                }
                o.update(repeating: 0, count: hd)
                if mx == -.infinity { lse[bh * s.queries + i] = .infinity; continue }
                var sum: Float = 0
                for j in j0..<n where scores[j] != -.infinity {
                    let e = expf(scores[j] - mx); scores[j] = e; sum += e
                }
                let inv = 1 / sum
                for j in j0..<n where scores[j] != -.infinity {
                    VectorMath.axpy(scores[j] * inv, v.row(b, j) + kvh * hd, o, hd)
                }
                lse[bh * s.queries + i] = mx + logf(sum)
            }
        }
    }

    /// Backward of `forward`. Overwrites dq (for every query) and dk, dv (for every key, including
    /// keys no query sees, which get 0). Work is split by (batch, kv head) so no two threads write
    /// the same dk/dv rows.
    public static func backward(_ s: AttentionShape, q: StridedRows, k: StridedRows, v: StridedRows,
                                out: StridedRows, dOut: StridedRows, keyMask: UnsafePointer<Float>?, maskStride: Int? = nil,
                                documents: DocumentIDs? = nil, lse: UnsafePointer<Float>, dq: StridedRows, dk: StridedRows, dv: StridedRows) {
        let hd = s.headDim, group = s.heads / s.kvHeads
        let scale = s.scoreScale
        ThreadPool.shared.parallelFor(s.batch * s.kvHeads) { _, range in
            for task in range {
                let b = task / s.kvHeads, kvh = task % s.kvHeads
                for j in 0..<s.keys {
                    (dk.row(b, j) + kvh * hd).update(repeating: 0, count: hd)
                    (dv.row(b, j) + kvh * hd).update(repeating: 0, count: hd)
                }
                let mask = keyMask.map { $0 + b * (maskStride ?? s.keys) }
                let docs = documents?.row(b, keys: s.keys)
                for h in (kvh * group)..<((kvh + 1) * group) {
                    for i in 0..<s.queries {
                        let qi = q.row(b, i) + h * hd, dqi = dq.row(b, i) + h * hd
                        dqi.update(repeating: 0, count: hd)
                        let l = lse[(b * s.heads + h) * s.queries + i]
                        if l == .infinity { continue }
                        let doi = dOut.row(b, i) + h * hd
                        let delta = VectorMath.dot(doi, out.row(b, i) + h * hd, hd)
                        let n = s.visible(i), j0 = s.firstVisible(i)
                        let qd = docs?[s.queryOffset + i] ?? 0
                        for j in j0..<n {
                            if let m = mask, m[j] == 0 { continue }
                            if let d = docs, !sameDocument(qd, d[j]) { continue }
                            let kj = k.row(b, j) + kvh * hd, vj = v.row(b, j) + kvh * hd
                            let pj = expf(VectorMath.dot(qi, kj, hd) * scale - l)
                            VectorMath.axpy(pj, doi, dv.row(b, j) + kvh * hd, hd)
                            let ds = pj * (VectorMath.dot(doi, vj, hd) - delta) * scale
                            VectorMath.axpy(ds, kj, dqi, hd)
                            VectorMath.axpy(ds, qi, dk.row(b, j) + kvh * hd, hd)
                        }
                    }
                }
            }
        }
    }
}
