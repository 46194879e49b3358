import Foundation
import XCTest
import FinchKernels
import FinchModel
import FinchData
import FinchTrain

/// `finch eval` pieces on a tiny random model folder written to disk (real tokenizer, real files).
final class EvalTests: XCTestCase {
    static func modelFolder(seed: UInt64 = 7) throws -> URL {
        let dir = try TrainerFixture.tempDir("evalmodel\(seed)")
        try JobSupport.writeModel(TrainerFixture.decoder(seed: seed), to: dir, tokenizer: TrainerFixture.tokenizerURL,
                                  template: try ChatTemplate.load("chatml"))
        return dir
    }

    static func evalFile(in dir: URL) throws -> URL {
        let u = dir.appendingPathComponent("eval.jsonl")
        try """
        {"instruction": "What colour is the cat number 1?", "input": "", "output": "The cat is red.", "task": "colour", "answer": "The cat is red."}
        {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5", "task": "add", "answer": "5"}

        {"instruction": "Describe a tree.", "input": "", "output": "a green tree sat on the mat.", "task": "open_ended"}
        """.write(to: u, atomically: true, encoding: .utf8)
        return u
    }

    func testRowsParseEveryFormatAndNameTheLine() throws {
        let dir = try TrainerFixture.tempDir()
        let rows = try EvalRow.read(try Self.evalFile(in: dir))
        XCTAssertEqual(rows.count, 3)
        XCTAssertEqual(rows[1].prompt, "Add the numbers.\n\n2 and 3")
        XCTAssertTrue(rows[1].isCheckable)
        XCTAssertTrue(rows[2].isOpenEnded)
        XCTAssertEqual(rows[2].location, "eval.jsonl:4")
        let bad = dir.appendingPathComponent("bad.jsonl")
        try "{\"text\": \"sunny\", \"label\": \"weather\"}\n{\"foo\": 1}\n".write(to: bad, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try EvalRow.read(bad)) { XCTAssertTrue("\($0)".contains("bad.jsonl:2"), "\($0)") }
    }

    func testBatchedGreedyEqualsOneAtATime() throws {
        let d = TrainerFixture.decoder(seed: 11)
        let prompts = [[1, 5, 9, 20], [1, 7], [1, 30, 31, 32, 33, 34, 35], [2]]
        let batched = BatchGenerator(decoder: d, maxBatch: 3).generate(prompts, options: GenerationOptions(maxNewTokens: 6))
        for (p, got) in zip(prompts, batched) {
            let single = d.generate(prompt: p, options: GenerationOptions(maxNewTokens: 6, sampling: SamplingOptions(temperature: 0)))
            XCTAssertEqual(got, single)
        }
    }

    /// Sampled batched decoding: row i equals batch-1 generation with the row's own seed, whatever its batch-mates.
    func testBatchedSamplingEqualsOneAtATimeWithTheRowSeed() throws {
        let d = TrainerFixture.decoder(seed: 11)
        let prompts = [[1, 5, 9, 20], [1, 7], [1, 30, 31, 32, 33, 34, 35], [2], [1, 5, 9, 20]]
        let seeds: [UInt64] = [3, 99, 4, 12, 77]
        let o = SamplingOptions(temperature: 1.3, topP: 0.95)
        let batched = BatchGenerator(decoder: d, maxBatch: 2).generate(prompts, options: GenerationOptions(maxNewTokens: 7, sampling: o),
                                                                       seeds: seeds).map(\.tokens)
        for (i, p) in prompts.enumerated() {
            var one = o
            one.seed = seeds[i]
            let single = d.generate(prompt: p, options: GenerationOptions(maxNewTokens: 7, sampling: one))
            XCTAssertEqual(batched[i], single.tokens, "row \(i)")
        }
        XCTAssertNotEqual(batched[0], batched[4], "same prompt, other seed: another sample (at temperature 1.3)")
    }

    /// --temperature/--samples: each row's exact match and reward are the mean over its replies; the same seed
    /// gives the same scores, and the table says how replies were chosen.
    func testSampledEvaluationAveragesRepliesPerRow() throws {
        let dir = try TrainerFixture.tempDir()
        let data = try Self.evalFile(in: dir)
        let rows = try EvalRow.read(data)
        let a = try EvalModel(folder: try Self.modelFolder(seed: 7), name: "a")
        // Reward: the reply's length in characters (differs between samples).
        let rewards = try EvalRewards(command: "python3 -u -c 'import sys, json\nfor l in sys.stdin: print(len(json.loads(l)[\"response\"]), flush=True)'")
        defer { rewards.close() }
        let settings = EvalSettings(maxTokens: 5, batch: 3, temperature: 1.5, samples: 4, seed: 5)
        let s1 = try ModelEvaluation.evaluate(a, rows: rows, settings: settings, reward: rewards, log: { _ in })
        let s2 = try ModelEvaluation.evaluate(a, rows: rows, settings: settings, reward: rewards, log: { _ in })
        XCTAssertEqual(s1.rowRewards, s2.rowRewards)
        let gen = rows.filter { $0.label == nil }
        XCTAssertEqual(s1.rowRewards?.count, gen.count)
        XCTAssertEqual(s1.rowResponses?.count, gen.count)
        // Non-integer per-row means show that replies were averaged (lengths are integers).
        XCTAssertTrue(s1.rowRewards!.contains { $0 != $0.rounded() }, "\(s1.rowRewards!)")
        for em in s1.rowExactMatch ?? [] { XCTAssertTrue([0, 0.25, 0.5, 0.75, 1].contains(em)) }
        let greedy = try ModelEvaluation.evaluate(a, rows: rows, settings: EvalSettings(maxTokens: 5, batch: 3), reward: rewards, log: { _ in })
        XCTAssertTrue(greedy.rowRewards!.allSatisfy { $0 == $0.rounded() })
        XCTAssertEqual(settings.decodingDescription, "sampled at temperature 1.5, 4 per prompt, scores averaged per prompt")
        let cmp = EvalComparison(data: data.path, models: [s1], decoding: settings.decodingDescription)
        try cmp.write(to: dir.appendingPathComponent("out"))
        let md = try String(contentsOf: dir.appendingPathComponent("out/eval.md"), encoding: .utf8)
        XCTAssertTrue(md.hasPrefix("Replies: sampled at temperature 1.5"), md)
        XCTAssertEqual(try EvalComparison.read(dir.appendingPathComponent("out/eval.json")).decoding, settings.decodingDescription)
    }

    func testNLLMatchesFullForwardAndSelfKLIsZero() throws {
        let d = TrainerFixture.decoder(seed: 5)
        let ids = [1, 4, 8, 15, 16, 23, 42, 7, 9]
        let r = SequenceScoring.nll(d, ids: ids, from: 3)
        // Scalar reference from the inference logits of every position.
        let V = d.config.vocabSize
        let logits = d.prefill(ids, cache: KVCache(config: d.config, batch: 1, maxLength: ids.count), allPositions: true)
        var ref = 0.0
        for t in 3..<ids.count {
            let row = (0..<V).map { Double(logits.ptr[(t - 1) * V + $0]) }
            let m = row.max()!
            ref -= row[ids[t]] - (m + log(row.reduce(0) { $0 + exp($1 - m) }))
        }
        XCTAssertEqual(r.count, 6)
        XCTAssertEqual(r.sum, ref, accuracy: 1e-6 * max(1, abs(ref)))
        let kl = SequenceScoring.kl(policy: d, reference: d, ids: ids, from: 3)
        XCTAssertEqual(kl.sum, 0, accuracy: 1e-9)
        let other = TrainerFixture.decoder(seed: 6)
        XCTAssertGreaterThan(SequenceScoring.kl(policy: d, reference: other, ids: ids, from: 3).sum, 0)
    }

    func testEvaluateTwoModelsWritesReloadableReport() throws {
        let dir = try TrainerFixture.tempDir()
        let data = try Self.evalFile(in: dir)
        let rows = try EvalRow.read(data)
        let a = try EvalModel(folder: try Self.modelFolder(seed: 7), name: "a")
        let b = try EvalModel(folder: try Self.modelFolder(seed: 8), name: "b")
        // A reward program: 1 for every reply that mentions "cat", else 0.
        let rewards = try EvalRewards(command: "while read -r l; do case \"$l\" in *'\"response\":\"'*cat*) echo 1;; *) echo 0;; esac; done")
        defer { rewards.close() }
        let settings = EvalSettings(maxTokens: 5, fewShot: 0, batch: 2)
        let sa = try ModelEvaluation.evaluate(a, rows: rows, settings: settings, reward: rewards, klReference: b, log: { _ in })
        let sb = try ModelEvaluation.evaluate(b, rows: rows, settings: EvalSettings(maxTokens: 5, fewShot: 2), fewShotPool: rows,
                                              reward: rewards, klReference: b, log: { _ in })
        XCTAssertNotNil(sa.perplexity); XCTAssertNotNil(sa.exactMatch); XCTAssertNotNil(sa.bleu); XCTAssertNotNil(sa.rougeL)
        XCTAssertNotNil(sa.meanReward)
        XCTAssertGreaterThan(sa.klToReference ?? 0, 0)
        XCTAssertEqual(sb.fewShot, 2)
        XCTAssertEqual(sa.samples.count, 3)
        let cmp = EvalComparison(data: data.path, models: [sa, sb])
        XCTAssertTrue(cmp.textTable().contains("exact match"))
        try cmp.write(to: dir.appendingPathComponent("out"))
        let back = try EvalComparison.read(dir.appendingPathComponent("out/eval.json"))
        XCTAssertEqual(back.models.map(\.name), ["a", "b"])
        XCTAssertEqual(back.models[0].perplexity!, sa.perplexity!, accuracy: 1e-9)
        XCTAssertTrue(try String(contentsOf: dir.appendingPathComponent("out/eval.svg"), encoding: .utf8).hasPrefix("<svg"))
    }

    func testClassificationRowsGetALabelReport() throws {
        let dir = try TrainerFixture.tempDir()
        let u = dir.appendingPathComponent("c.jsonl")
        try "{\"text\": \"the red cat\", \"label\": \"cat\"}\n{\"text\": \"the blue dog\", \"label\": \"dog\"}\n"
            .write(to: u, atomically: true, encoding: .utf8)
        let m = try EvalModel(folder: try Self.modelFolder(), name: "m")
        let s = try ModelEvaluation.evaluate(m, rows: try EvalRow.read(u), settings: EvalSettings(), log: { _ in })
        XCTAssertEqual(s.classification?.classes, ["cat", "dog"])
        XCTAssertNotNil(s.accuracy)
        XCTAssertNil(s.exactMatch)
    }
}
