import FinchKernels

/// Finch's one token generator: evaluation, `finch generate`, chat and PPO rollouts all decode through it.
///
/// The prompts of a batch are left-padded to one length (padding masked out of attention, positions counting
/// real tokens only), prefilled together, then decoded one step for the whole batch; each row has its own rows
/// of the KV cache. A row stops on its own — a stop token, the `stopWhen` predicate, the per-token callback,
/// `maxNewTokens`, or the model's position limit — and then leaves the batch, so finished rows cost no more
/// compute. Every row samples with its own `Sampler`, seeded per row (`rowSeed`), so its tokens never depend on
/// its batch-mates; temperature 0 is greedy. Longer prompt lists run in batches of at most `maxBatch` rows, in order.
///
/// Rows of a batch of two or more get bit-identical logits whatever their batch-mates (the matrix kernels compute
/// each row alike); a lone row runs the matrix-vector kernels, which round differently in the last bits, so a
/// batch never shrinks below two rows and a list is split into even batches.
///
///     let generator = BatchGenerator(decoder: decoder)
///     let options = GenerationOptions(maxNewTokens: 64, sampling: SamplingOptions(temperature: 1, seed: 7), stopTokenIds: [2])
///     let replies = generator.generate(prompts, options: options).map(\.tokens)
public struct BatchGenerator {
    public let decoder: Decoder
    /// A prompt- or prefix-tuning module: its virtual tokens (prefix keys/values) fill the first positions of every
    /// row's cache before the prompt, as in training. LoRA and bottleneck adapters need nothing here (they act
    /// through the decoder's hooks).
    public var adapter: PEFTModule?
    /// Rows decoded together at most.
    public var maxBatch: Int

    public init(decoder: Decoder, adapter: PEFTModule? = nil, maxBatch: Int = 8) {
        self.decoder = decoder; self.adapter = adapter; self.maxBatch = maxBatch
    }

    /// The default sampling seed of row `row` (its index in the prompt list) under base seed `seed`.
    public static func rowSeed(_ seed: UInt64, row: Int) -> UInt64 { seed &+ UInt64(row) &* 0x9E37_79B9_7F4A_7C15 }

    /// `prompt` cut to its most recent tokens so that `newTokens` more fit in `positions` (at least one token kept).
    public static func keepingRecent(_ prompt: [Int], newTokens: Int, positions: Int) -> [Int] {
        let room = max(1, positions - newTokens)
        return prompt.count > room ? Array(prompt.suffix(room)) : prompt
    }

    /// Generates for every prompt (each non-empty); one result per prompt, in order.
    ///
    /// - Parameters:
    ///   - seeds: row i's sampling seed (one per prompt); nil = `rowSeed(options.sampling.seed, row: i)`.
    ///   - stopWhen: called with a row's new tokens after each token that is not a stop token; true ends the row.
    ///   - onToken: called with (row index in `prompts`, token) as soon as the token is chosen, before any stop
    ///     check (stop tokens included); false ends that row (`.callback`). A caller whose work can fail keeps the
    ///     error and returns false.
    public func generate(_ prompts: [[Int]], options: GenerationOptions, seeds: [UInt64]? = nil,
                         stopWhen: (_ tokens: [Int]) -> Bool = { _ in false },
                         onToken: (_ row: Int, _ token: Int) -> Bool = { _, _ in true }) -> [GenerationResult] {
        precondition(seeds == nil || seeds!.count == prompts.count, "BatchGenerator: \(seeds?.count ?? 0) seeds for \(prompts.count) prompts")
        var out: [GenerationResult] = []
        out.reserveCapacity(prompts.count)
        // Batches as even as possible (9 prompts at 8 a batch: 5 + 4), so no row is left to a batch of its own.
        let batches = (prompts.count + max(1, maxBatch) - 1) / max(1, maxBatch)
        var start = 0
        for k in 0..<batches {
            let rows = start..<(start + prompts.count / batches + (k < prompts.count % batches ? 1 : 0))
            let samplers = rows.map { i -> Sampler in
                var o = options.sampling
                o.seed = seeds?[i] ?? Self.rowSeed(options.sampling.seed, row: i)
                return Sampler(o)
            }
            out += decode(rows.map { prompts[$0] }, firstRow: start, cache: nil, samplers: samplers, options: options,
                          stopWhen: stopWhen, onToken: onToken)
            start = rows.upperBound
        }
        return out
    }

    /// Continues one row after the positions already in a batch-1 `cache` (the chat keeps earlier turns there,
    /// and primes it with its adapter itself): `prompt` is prefilled at position `cache.length` on, and sampled
    /// with `options.sampling.seed` as it is. The last token is not fed, so the cache ends up holding the prompt
    /// and every new token but the last.
    public func generate(_ prompt: [Int], after cache: KVCache, options: GenerationOptions,
                         onToken: (_ token: Int) -> Bool = { _ in true }) -> GenerationResult {
        precondition(cache.batch == 1, "BatchGenerator: a batch-1 cache expected, got batch \(cache.batch)")
        return decode([prompt], firstRow: 0, cache: cache, samplers: [Sampler(options.sampling)], options: options,
                      stopWhen: { _ in false }, onToken: { _, token in onToken(token) })[0]
    }

    /// One batch: prefill, then one step at a time until every row has stopped.
    private func decode(_ prompts: [[Int]], firstRow: Int, cache given: KVCache?, samplers: [Sampler], options: GenerationOptions,
                        stopWhen: ([Int]) -> Bool, onToken: (Int, Int) -> Bool) -> [GenerationResult] {
        precondition(prompts.allSatisfy { !$0.isEmpty }, "BatchGenerator: empty prompt")
        var results = prompts.map { _ in GenerationResult(tokens: [], stop: .maxNewTokens) }
        guard options.maxNewTokens > 0 else { return results }
        let limit = decoder.config.maxPositions, V = decoder.config.vocabSize
        // Positions before the prompts: the given cache's, or the adapter's virtual tokens.
        let base = given?.length ?? adapter.map { $0.enabled ? $0.virtualTokens : 0 } ?? 0
        let fits = prompts.indices.filter { base + prompts[$0].count <= min(limit, given?.maxLength ?? limit) }
        for b in Set(prompts.indices).subtracting(fits) { results[b].stop = .contextFull }
        guard !fits.isEmpty else { return results }

        let lengths = fits.map { prompts[$0].count }, T = lengths.max()!
        let cache: KVCache
        if let given { cache = given } else {
            // Rows step together, so the cache needs room for the longest prompt plus the most tokens any row can feed.
            let feeds = max(0, min(options.maxNewTokens - 1, limit - base - lengths.min()!))
            cache = KVCache(config: decoder.config, batch: fits.count, maxLength: base + T + feeds)
            adapter?.primeCache(decoder, cache: cache)
            precondition(cache.length == base, "BatchGenerator: the adapter primed \(cache.length) positions, expected \(base)")
        }
        var ids: [Int] = [], mask: [Int] = [], positions: [Int] = []
        for b in fits {
            let p = prompts[b], pad = T - p.count
            ids += [Int](repeating: 0, count: pad) + p
            mask += [Int](repeating: 0, count: pad) + [Int](repeating: 1, count: p.count)
            positions += [Int](repeating: 0, count: pad) + Array(base..<(base + p.count))
        }
        var logits = decoder.prefill(ids, cache: cache, attentionMask: mask, positionIds: positions)

        var samplers = samplers
        var histories = prompts   // what the repetition penalty sees: the prompt and the new tokens
        /// The prompt index of each cache row; -1 = a finished row kept as a passenger.
        var slots = fits
        while true {
            let picked = sample(&samplers, logits: logits, V: V, slots: slots, histories: histories)
            var live: [Int] = []
            for (s, b) in slots.enumerated() where b >= 0 {
                let token = picked[s]
                results[b].tokens.append(token)
                histories[b].append(token)
                let n = results[b].tokens.count
                if !onToken(firstRow + b, token) { results[b].stop = .callback }
                else if options.stopTokenIds.contains(token) { results[b].stop = .stopToken(token) }
                else if stopWhen(results[b].tokens) { results[b].stop = .stopWhen }
                else if n >= options.maxNewTokens { results[b].stop = .maxNewTokens }
                else if base + prompts[b].count + n - 1 >= limit || cache.length >= cache.maxLength { results[b].stop = .contextFull }
                else { live.append(s) }
            }
            if live.isEmpty { break }
            // Finished rows leave the batch. A batch never shrinks below two rows, though: a one-row step runs the
            // matrix-vector kernel, whose sums round differently from the matrix kernel's, and a row's tokens must
            // not depend on when its batch-mates finish. A finished row stays as a passenger instead.
            var kept = live
            if kept.count == 1, slots.count > 1 { kept = (kept + [slots.indices.first { $0 != live[0] }!]).sorted() }
            if kept.count < slots.count { cache.keepRows(kept) }
            slots = kept.map { live.contains($0) ? slots[$0] : -1 }
            let feed = slots.map { $0 >= 0 ? results[$0].tokens.last! : 0 }
            let at = slots.map { $0 >= 0 ? base + prompts[$0].count + results[$0].tokens.count - 1 : 0 }
            logits = decoder.prefill(feed, cache: cache, positionIds: at)
        }
        return results
    }

    /// The next token of every live cache row (`slots[s] >= 0`) from its logits row, each with its own sampler;
    /// rows are independent, so they are sampled in parallel.
    private func sample(_ samplers: inout [Sampler], logits: Tensor, V: Int, slots: [Int], histories: [[Int]]) -> [Int] {
        var picked = [Int](repeating: 0, count: slots.count)
        samplers.withUnsafeMutableBufferPointer { sp in
            picked.withUnsafeMutableBufferPointer { pp in
                ThreadPool.shared.parallelFor(slots.count) { _, range in
                    for s in range where slots[s] >= 0 {
                        pp[s] = sp[slots[s]].next(logits: logits.ptr + s * V, vocab: V, history: histories[slots[s]])
                    }
                }
            }
        }
        return picked
    }
}
