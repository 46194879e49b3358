import FinchKernels

/// Keys and values of every layer for incremental decoding, preallocated to `maxLength` positions.
/// Keys are stored after RoPE. Layout per layer: [batch, maxLength, kvDim]; `keyMask` [batch, maxLength]
/// (1 = attend). `length` positions are filled (the same for every row). `keepRows` drops rows (a finished
/// generation row), moving the rest to the front: the first `batch` rows of the buffers are in use.
public final class KVCache {
    public private(set) var batch: Int
    public let maxLength: Int
    public let kvDim: Int
    public let keys: [Tensor]
    public let values: [Tensor]
    public let keyMask: Tensor
    public internal(set) var length = 0

    public init(config: DecoderConfig, batch: Int = 1, maxLength: Int) {
        self.batch = batch
        self.maxLength = maxLength
        self.kvDim = config.kvDim
        keys = (0..<config.numLayers).map { _ in Tensor(shape: [batch, maxLength, config.kvDim]) }
        values = (0..<config.numLayers).map { _ in Tensor(shape: [batch, maxLength, config.kvDim]) }
        keyMask = Tensor(shape: [batch, maxLength])
    }

    /// Forgets every position (buffers are kept).
    public func reset() { length = 0 }

    /// Drops positions after `newLength` (e.g. to rewind a conversation).
    public func truncate(to newLength: Int) { length = min(length, max(0, newLength)) }

    /// Places per-layer prefix keys/values (prefix tuning) at positions 0..<P of every row, no RoPE.
    public func loadPrefix(_ prefix: PrefixKeyValues) {
        precondition(prefix.keys.count == keys.count, "KVCache.loadPrefix: \(prefix.keys.count) layers, cache has \(keys.count)")
        precondition(prefix.length <= maxLength, "KVCache.loadPrefix: prefix of \(prefix.length) > capacity \(maxLength)")
        for l in 0..<keys.count {
            for b in 0..<batch {
                (keys[l].ptr + b * maxLength * kvDim).update(from: prefix.keys[l].ptr, count: prefix.length * kvDim)
                (values[l].ptr + b * maxLength * kvDim).update(from: prefix.values[l].ptr, count: prefix.length * kvDim)
            }
        }
        for b in 0..<batch { (keyMask.ptr + b * maxLength).update(repeating: 1, count: prefix.length) }
        length = prefix.length
    }

    /// Keeps only the rows `rows` (ascending indices), moved to the front in that order; `batch` becomes `rows.count`.
    public func keepRows(_ rows: [Int]) {
        precondition(!rows.isEmpty && zip(rows, rows.dropFirst()).allSatisfy { $0 < $1 } && rows.last! < batch,
                     "KVCache.keepRows: \(rows) is not an ascending list of rows of 0..<\(batch)")
        let M = maxLength, kv = kvDim
        for (to, from) in rows.enumerated() where to != from {
            for l in 0..<keys.count {
                (keys[l].ptr + to * M * kv).update(from: keys[l].ptr + from * M * kv, count: length * kv)
                (values[l].ptr + to * M * kv).update(from: values[l].ptr + from * M * kv, count: length * kv)
            }
            (keyMask.ptr + to * M).update(from: keyMask.ptr + from * M, count: length)
        }
        batch = rows.count
    }

}
