import FinchKernels

extension Decoder {
    /// Runs `ids` ([batch, length] row-major, batch = `cache.batch`) after the positions already in
    /// `cache`, appending their keys/values. Positions continue from `cache.length` unless given.
    /// Returns logits [batch, length, V] when `allPositions`, else the last position's [batch, V].
    /// Inference only: uses its own buffers, so a training forward's saved activations are untouched.
    @discardableResult
    public func prefill(_ ids: [Int], cache: KVCache, attentionMask: [Int]? = nil, positionIds: [Int]? = nil,
                        allPositions: Bool = false) -> Tensor {
        let B = cache.batch
        precondition(ids.count % B == 0 && !ids.isEmpty, "Decoder.prefill: \(ids.count) ids for batch \(B)")
        let T = ids.count / B
        precondition(cache.length + T <= cache.maxLength, "KVCache full: \(cache.length) + \(T) > \(cache.maxLength) positions")
        let bf = inferenceBuffers(batch: B, length: T)
        inferring = true
        defer { inferring = false }
        let past = cache.length
        load(bf, ids: ids, attentionMask: attentionMask,
             positionIds: positionIds ?? (0..<(B * T)).map { past + $0 % T })
        runTrunk(bf, cache: cache)
        let C = config.hiddenSize, V = config.vocabSize
        if allPositions {
            let logits = Tensor(shape: [B, T, V])
            inferenceHeadForward(bf, rows: B * T, hidden: bf.hidden.ptr, logits: logits.ptr)
            return logits
        }
        let last = Tensor(shape: [B, C])
        for b in 0..<B { (last.ptr + b * C).update(from: bf.hidden.ptr + (b * T + T - 1) * C, count: C) }
        let logits = Tensor(shape: [B, V])
        inferenceHeadForward(bf, rows: B, hidden: last.ptr, logits: logits.ptr)
        return logits
    }

    /// One decoding step: feeds one token per row and returns the next-token logits [batch, V].
    @discardableResult
    public func step(_ ids: [Int], cache: KVCache) -> Tensor {
        prefill(ids, cache: cache)
    }

    func inferenceBuffers(batch: Int, length: Int) -> DecoderBuffers {
        if let b = stepBuffers, b.batch == batch, b.length == length { return b }
        if let b = inferenceBuffers, b.batch == batch, b.length == length { return b }
        let b = DecoderBuffers(config: config, batch: batch, length: length, keepSubLayerOutputs: false)   // no backward
        if length == 1 { stepBuffers = b } else { inferenceBuffers = b }
        return b
    }
}
