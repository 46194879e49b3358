import XCTest
import FinchKernels
import FinchModel

/// The batched generator: left-padded rows give what each prompt gives alone, finished rows leave the batch without
/// changing the others, each row stops on its own, adapters with virtual tokens serve every row.
final class BatchGeneratorTests: XCTestCase {
    static let prompts = [[1, 5, 9, 20], [1, 7], [1, 30, 31, 32, 33, 34, 35], [2], [1, 5, 9, 20], [4, 4, 4], [6, 1, 8, 2, 9], [3, 3]]

    /// Greedy ids by recomputing the whole sequence every step (no cache, no batch, no padding): the reference.
    func recomputed(_ d: Decoder, module: PEFTModule? = nil, prompt: [Int], steps: Int, stop: Set<Int>) -> [Int] {
        var seq = prompt, out: [Int] = []
        let V = d.config.vocabSize
        for _ in 0..<steps {
            let logits: Tensor
            if let module {
                _ = module.forwardHidden(d, ids: seq, batch: 1, length: seq.count, attentionMask: nil, positionIds: nil)
                logits = module.logits(d)
            } else {
                logits = d.forward(ids: seq, batch: 1, length: seq.count)
            }
            let last = logits.ptr + (seq.count - 1) * V
            var best = 0
            for v in 1..<V where last[v] > last[best] { best = v }
            out.append(best)
            if stop.contains(best) { break }
            seq.append(best)
        }
        return out
    }

    func testGreedyRowsEqualRecomputationWhateverTheBatch() {
        for flavour in [Flavour.gpt2, .llama] {
            let d = Decoder(config: PEFTLoRATests.tinyConfig(flavour), seed: 5)
            let stop: Set<Int> = [3, 11]
            let options = GenerationOptions(maxNewTokens: 9, stopTokenIds: stop)
            for maxBatch in [3, 8] {
                let got = BatchGenerator(decoder: d, maxBatch: maxBatch).generate(Self.prompts, options: options)
                for (p, r) in zip(Self.prompts, got) {
                    let want = recomputed(d, prompt: p, steps: 9, stop: stop)
                    XCTAssertEqual(r.tokens, want, "\(flavour) batch \(maxBatch) prompt \(p)")
                    XCTAssertEqual(r.stop, stop.contains(want.last!) ? .stopToken(want.last!) : .maxNewTokens)
                }
            }
        }
    }

    /// Sampled rows: a row's tokens depend on its prompt and seed only — not on the order, the chunking, or which
    /// batch-mates stop early and leave the batch.
    func testSampledRowsDoNotDependOnTheirBatchMates() {
        let d = Decoder(config: PEFTLoRATests.tinyConfig(.llama), seed: 8)
        let options = GenerationOptions(maxNewTokens: 24, sampling: SamplingOptions(temperature: 1.5, topP: 0.95, seed: 17),
                                        stopTokenIds: [3, 7, 11])
        let seeds = Self.prompts.indices.map { UInt64(100 + $0) }
        let all = BatchGenerator(decoder: d).generate(Self.prompts, options: options, seeds: seeds)
        XCTAssertGreaterThan(Set(all.map(\.tokens.count)).count, 2, "rows finish at different steps")
        let reversed = BatchGenerator(decoder: d).generate(Self.prompts.reversed(), options: options, seeds: seeds.reversed())
        XCTAssertEqual(all, Array(reversed.reversed()))
        for maxBatch in [2, 3] {
            XCTAssertEqual(BatchGenerator(decoder: d, maxBatch: maxBatch).generate(Self.prompts, options: options, seeds: seeds), all)
        }
        let some = [0, 2, 5]
        XCTAssertEqual(BatchGenerator(decoder: d).generate(some.map { Self.prompts[$0] }, options: options, seeds: some.map { seeds[$0] }),
                       some.map { all[$0] })
        // Default seeds: row i gets rowSeed(seed, i).
        let byDefault = BatchGenerator(decoder: d).generate(Self.prompts, options: options)
        XCTAssertEqual(byDefault, BatchGenerator(decoder: d).generate(Self.prompts, options: options,
                                                                       seeds: Self.prompts.indices.map { BatchGenerator.rowSeed(17, row: $0) }))
        XCTAssertNotEqual(byDefault, all)
    }

    func testEachRowStopsOnItsOwn() {
        let d = Decoder(config: PEFTLoRATests.tinyConfig(.llama), seed: 9)   // 64 positions
        let long = Array(repeating: 5, count: 62), full = Array(repeating: 6, count: 64), over = Array(repeating: 7, count: 65)
        let prompts = [[1, 2, 3], [4, 5], long, full, over, [8]]
        let options = GenerationOptions(maxNewTokens: 6)
        let alone = prompts.map { BatchGenerator(decoder: d).generate([$0, [1, 2, 3]], options: options)[0] }
        var seen = [[Int]](repeating: [], count: prompts.count)
        let got = BatchGenerator(decoder: d).generate(prompts, options: options, stopWhen: { $0 == Array(alone[5].tokens.prefix(2)) }) { row, token in
            seen[row].append(token)
            return !(row == 1 && seen[row].count == 4)
        }
        XCTAssertEqual(got[0], alone[0])
        XCTAssertEqual(got[1].tokens, Array(alone[1].tokens.prefix(4)))
        XCTAssertEqual(got[1].stop, .callback)
        XCTAssertEqual(got[2].tokens, Array(alone[2].tokens.prefix(3)))
        XCTAssertEqual(got[2].stop, .contextFull, "positions 62 and 63 are fed, then the context is full")
        XCTAssertEqual(got[3].tokens.count, 1)
        XCTAssertEqual(got[3].stop, .contextFull)
        XCTAssertEqual(got[4], GenerationResult(tokens: [], stop: .contextFull), "a prompt past the positions gets nothing")
        XCTAssertEqual(got[5].tokens, Array(alone[5].tokens.prefix(2)))
        XCTAssertEqual(got[5].stop, .stopWhen)
        XCTAssertEqual(seen.map(\.count), got.map(\.tokens.count), "every token passes the callback")
        XCTAssertEqual(BatchGenerator(decoder: d).generate(prompts, options: GenerationOptions(maxNewTokens: 0)),
                       prompts.map { _ in GenerationResult(tokens: [], stop: .maxNewTokens) })
        XCTAssertEqual(GenerationResult(tokens: [4, 9], stop: .stopToken(9)).tokensBeforeStop, [4])
    }

    /// The chat's path: a second prompt continued in the cache after the first reply equals the whole sequence fresh.
    func testContinuingACacheEqualsAFreshPrompt() {
        let d = Decoder(config: PEFTLoRATests.tinyConfig(.llama), seed: 10)
        let g = BatchGenerator(decoder: d)
        let options = GenerationOptions(maxNewTokens: 5)
        let cache = KVCache(config: d.config, batch: 1, maxLength: 64)
        let first = g.generate([1, 5, 9], after: cache, options: options)
        XCTAssertEqual(first.tokens.count, 5)
        XCTAssertEqual(cache.length, 3 + 5 - 1, "the last token is not fed")
        let whole = [1, 5, 9] + first.tokens + [2, 6]
        let next = g.generate(Array(whole[cache.length...]), after: cache, options: options)
        XCTAssertEqual(next, g.generate([whole], options: options, seeds: [options.sampling.seed])[0])
        XCTAssertEqual(next, d.generate(prompt: whole, options: options))
    }

    /// Prompt and prefix tuning through the generator: every left-padded row sees the virtual tokens, as training does.
    func testVirtualTokenAdaptersServeEveryRow() {
        for kind in ["prompt", "prefix"] {
            let d = Decoder(config: PEFTLoRATests.tinyConfig(.llama), seed: 11)
            let module: PEFTModule = kind == "prompt" ? PromptTuningModule(virtualTokens: 5, decoder: d, seed: 3)
                : PrefixTuningModule(virtualTokens: 4, decoder: d, seed: 3)
            module.attach(to: d)
            let got = BatchGenerator(decoder: d, adapter: module).generate(Self.prompts, options: GenerationOptions(maxNewTokens: 6))
            for (p, r) in zip(Self.prompts, got) {
                XCTAssertEqual(r.tokens, recomputed(d, module: module, prompt: p, steps: 6, stop: []), "\(kind) \(p)")
            }
            let plain = BatchGenerator(decoder: d).generate(Self.prompts, options: GenerationOptions(maxNewTokens: 6))
            XCTAssertNotEqual(got, plain, "\(kind): the adapter changes the replies")
        }
    }

    func testKeepRowsMovesTheKeptRowsToTheFront() {
        let config = PEFTLoRATests.tinyConfig(.llama)
        let cache = KVCache(config: config, batch: 4, maxLength: 5)
        let d = Decoder(config: config, seed: 12)
        d.prefill([1, 2, 3, 4, 5, 6, 7, 8], cache: cache, attentionMask: [1, 1, 0, 1, 1, 1, 0, 1])
        let M = 5, kv = config.kvDim
        let before = (cache.keys[1].array, cache.values[0].array, cache.keyMask.array)
        cache.keepRows([1, 3])
        XCTAssertEqual(cache.batch, 2)
        XCTAssertEqual(cache.length, 2)
        for (to, from) in [(0, 1), (1, 3)] {
            XCTAssertEqual(Array(cache.keys[1].array[(to * M * kv)..<(to * M * kv + 2 * kv)]), Array(before.0[(from * M * kv)..<(from * M * kv + 2 * kv)]))
            XCTAssertEqual(Array(cache.values[0].array[(to * M * kv)..<(to * M * kv + 2 * kv)]), Array(before.1[(from * M * kv)..<(from * M * kv + 2 * kv)]))
            XCTAssertEqual(Array(cache.keyMask.array[(to * M)..<(to * M + 2)]), Array(before.2[(from * M)..<(from * M + 2)]))
        }
        // A step over the kept rows equals the same step in the full batch.
        let full = KVCache(config: config, batch: 4, maxLength: 5)
        d.prefill([1, 2, 3, 4, 5, 6, 7, 8], cache: full, attentionMask: [1, 1, 0, 1, 1, 1, 0, 1])
        let all = d.step([9, 10, 11, 12], cache: full), kept = d.step([10, 12], cache: cache)
        let V = config.vocabSize
        XCTAssertEqual(Array(kept.array[0..<V]), Array(all.array[V..<(2 * V)]))
        XCTAssertEqual(Array(kept.array[V..<(2 * V)]), Array(all.array[(3 * V)..<(4 * V)]))
    }
}
