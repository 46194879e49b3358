import Foundation
import XCTest
import FinchData

final class PackReaderTests: XCTestCase {
    /// The first `n` lines of a shared file, written to a temp file (the shared file itself is never copied into the repo).
    func subset(_ relative: String, _ n: Int, in dir: URL) throws -> URL {
        let url = dir.appendingPathComponent((relative as NSString).lastPathComponent)
        try (TestSupport.sharedLines(relative, lines: n).joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    func packGSM(_ dir: URL, records: Int = 300, pack: Bool = true, maxLength: Int = 2048, shardMB: Double = 0.02) throws -> (URL, DatasetManifest) {
        let input = try subset("instructions/gsm8k-train.jsonl", records, in: dir)
        var o = DatasetPacker.Options(inputs: [input], maxLength: maxLength)
        o.pack = pack
        o.shardMegabytes = shardMB
        let out = dir.appendingPathComponent(pack ? "packed" : "unpacked")
        let m = try DatasetPacker.pack(o, tokenizer: TestSupport.tokenizer, template: try ChatTemplate.load("chatml"), into: out)
        return (out, m)
    }

    func testPackAndReadBackExactly() throws {
        let dir = try TestSupport.tempDir()
        let (out, m) = try packGSM(dir)
        XCTAssertEqual(m.kind, .sequences)
        XCTAssertEqual(m.records, 300)
        XCTAssertEqual(m.tokenizer.sha256, TestSupport.tokenizer.fingerprint)
        XCTAssertEqual(m.template?.name, "chatml")
        XCTAssertGreaterThan(m.shards.count, 1)
        XCTAssertEqual(m.shards.reduce(0) { $0 + $1.entries }, m.entries)
        XCTAssertLessThan(m.entries, 300)   // packing put several records per entry
        let files = try FileManager.default.contentsOfDirectory(atPath: out.path).sorted()
        XCTAssertTrue(files.contains("manifest.json") && files.contains("tokenizer.model") && files.contains("shard-00000.zst"))
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: dir.path).contains { $0.contains("partial") })

        // Every record comes back with exactly the tokens and mask the encoder gives.
        let records = try RecordReader.read(dir.appendingPathComponent("gsm8k-train.jsonl")).records
        let enc = try ChatEncoder(tokenizer: TestSupport.tokenizer, template: try ChatTemplate.load("chatml"))
        let reader = try DatasetReader(out, options: .init(shuffle: false), tokenizer: TestSupport.tokenizer)
        XCTAssertEqual(reader.count, m.entries)
        var seen: [Int] = []
        var tokens = 0
        for _ in 0..<reader.count {
            let e = try reader.next()
            XCTAssertLessThanOrEqual(e.ids.count, 2048)
            tokens += e.ids.count
            var start = 0
            for d in e.documents {
                let want = try enc.encodeConversation(records[d.record].messages)
                XCTAssertEqual(Array(e.ids[start..<(start + d.length)]), want.ids)
                XCTAssertEqual(Array(e.mask[start..<(start + d.length)]), want.mask)
                XCTAssertEqual(d.line, d.record + 1)
                start += d.length
                seen.append(d.record)
            }
        }
        XCTAssertEqual(seen, Array(0..<300))
        XCTAssertEqual(tokens, m.tokens)
        XCTAssertEqual(reader.cursor, Cursor(epoch: 0, position: reader.count))
    }

    func testPackedBatchCarriesDocumentBoundaries() throws {
        let dir = try TestSupport.tempDir()
        let (out, m) = try packGSM(dir, records: 60)
        let reader = try DatasetReader(out, options: .init(seed: 3))
        let batch = try reader.nextBatch(size: 3)
        XCTAssertEqual(batch.ids.count, 3 * batch.length)
        XCTAssertEqual(m.packed, true)
        for b in 0..<3 {
            let row = b * batch.length
            for t in 0..<batch.length {
                let i = row + t
                if batch.attentionMask[i] == 0 { XCTAssertEqual(batch.documentIDs[i], -1); XCTAssertEqual(batch.labels[i], -100); continue }
                let docStart = t == 0 || batch.documentIDs[i - 1] != batch.documentIDs[i]
                XCTAssertEqual(batch.positionIDs[i] == 0, docStart)
                if docStart { XCTAssertEqual(batch.labels[i], -100) }
                if t + 1 < batch.length { XCTAssertEqual(batch.targets[i], batch.labels[i + 1]) }
            }
            XCTAssertEqual(batch.targets[row + batch.length - 1], -100)
        }
        XCTAssertGreaterThan(batch.trainedTokens, 0)
        XCTAssertTrue(batch.records.contains { $0.count > 1 })   // rows hold several documents

        // Unpacked: one record per row, padded at batch time.
        let (out2, m2) = try packGSM(dir, records: 60, pack: false)
        XCTAssertEqual(m2.entries, 60)
        let b2 = try DatasetReader(out2).nextBatch(size: 4)
        XCTAssertTrue(b2.records.allSatisfy { $0.count == 1 })
        XCTAssertEqual(b2.attentionMask.filter { $0 == 0 }.count, 4 * b2.length - b2.realTokens)
    }

    func testShuffleResumeAndSplit() throws {
        let dir = try TestSupport.tempDir()
        let (out, _) = try packGSM(dir, records: 200, pack: false, shardMB: 0.01)
        let opts = DatasetReader.Options(seed: 42)
        let a = try DatasetReader(out, options: opts)
        var straight: [Batch] = []
        var saved = Cursor()
        for i in 0..<40 {   // 40 × 7 = 280 entries: crosses into epoch 1
            straight.append(try a.nextBatch(size: 7))
            if i == 24 { saved = a.cursor }
        }
        XCTAssertEqual(a.cursor.epoch, 1)
        // Resume from a cursor that went through JSON (as a checkpoint would store it).
        let restored = try JSONDecoder().decode(Cursor.self, from: JSONEncoder().encode(saved))
        let b = try DatasetReader(out, options: opts)
        b.cursor = restored
        for i in 25..<40 { XCTAssertEqual(try b.nextBatch(size: 7), straight[i], "batch \(i)") }

        // Each epoch is a permutation; epochs and seeds differ.
        func epochRecords(_ seed: UInt64, _ epoch: Int) throws -> [Int] {
            let r = try DatasetReader(out, options: .init(seed: seed))
            r.cursor = Cursor(epoch: epoch, position: 0)
            return try (0..<r.count).map { _ in try r.next().documents[0].record }
        }
        let e0 = try epochRecords(42, 0), e1 = try epochRecords(42, 1)
        XCTAssertEqual(e0.sorted(), Array(0..<200))
        XCTAssertEqual(e1.sorted(), Array(0..<200))
        XCTAssertNotEqual(e0, e1)
        XCTAssertEqual(e0, try epochRecords(42, 0))
        XCTAssertNotEqual(e0, try epochRecords(7, 0))

        // Held-out split by fraction: disjoint, complete, stable.
        let train = try DatasetReader(out, options: .init(split: .train(heldOut: 0.1)))
        let held = try DatasetReader(out, options: .init(split: .heldOut(0.1)))
        XCTAssertEqual(train.count + held.count, 200)
        XCTAssertGreaterThan(held.count, 5); XCTAssertLessThan(held.count, 40)
        let heldSet = Set(try (0..<held.count).map { _ in try held.next().documents[0].record })
        let trainSet = Set(try (0..<train.count).map { _ in try train.next().documents[0].record })
        XCTAssertTrue(heldSet.isDisjoint(with: trainSet))
    }

    func testCorruptShardAndWrongTokenizerAreNamed() throws {
        let dir = try TestSupport.tempDir()
        let (out, m) = try packGSM(dir, records: 80, pack: false, shardMB: 0.01)
        let shard = out.appendingPathComponent(m.shards[1].file)
        var bytes = try Data(contentsOf: shard)
        bytes[bytes.count / 2] ^= 0x55
        try bytes.write(to: shard)
        func readAll(_ r: DatasetReader) throws { for _ in 0..<r.count { _ = try r.next() } }
        XCTAssertThrowsError(try readAll(DatasetReader(out, options: .init(shuffle: false)))) { e in
            XCTAssertTrue("\(e)".contains("shard-00001.zst") && "\(e)".contains("checksum"), "\(e)")
        }
        var noVerify = DatasetReader.Options(shuffle: false); noVerify.verifyChecksums = false
        XCTAssertThrowsError(try readAll(DatasetReader(out, options: noVerify))) { e in
            XCTAssertTrue("\(e)".contains("shard-00001.zst"), "\(e)")
        }
        try bytes.prefix(bytes.count - 10).write(to: shard)
        XCTAssertThrowsError(try readAll(DatasetReader(out, options: noVerify))) { e in
            XCTAssertTrue("\(e)".contains("shard-00001.zst") && "\(e)".contains("truncated"), "\(e)")
        }
        let corpus = dir.appendingPathComponent("c.txt")
        try TestSupport.sharedLines("text/tiny-shakespeare.txt", lines: 300).joined(separator: "\n").write(to: corpus, atomically: true, encoding: .utf8)
        let other = try TokenizerTrainer.train(TokenizerTrainer.Options(inputs: [corpus], vocabSize: 400))
        XCTAssertThrowsError(try DatasetReader(out, tokenizer: other)) { e in
            XCTAssertTrue("\(e)".contains(out.path) && "\(e)".contains("tokenizer"), "\(e)")
        }
    }

    func testRefusalsNameTheRecordAndSkipInvalidReports() throws {
        let dir = try TestSupport.tempDir()
        let input = try subset("instructions/gsm8k-train.jsonl", 20, in: dir)
        // Every record is longer than 24 tokens: dropped by default, so nothing is left, and the error names the
        // option and the longest record; --overlong error names the first record; truncate keeps no reply either.
        var o = DatasetPacker.Options(inputs: [input], maxLength: 24)
        XCTAssertThrowsError(try DatasetPacker.pack(o, tokenizer: TestSupport.tokenizer, template: try ChatTemplate.load("chatml"),
                                                    into: dir.appendingPathComponent("short"))) { e in
            XCTAssertTrue("\(e)".contains("--overlong is drop") && "\(e)".contains("gsm8k-train.jsonl:"), "\(e)")
        }
        o.overlong = .error
        XCTAssertThrowsError(try DatasetPacker.pack(o, tokenizer: TestSupport.tokenizer, template: try ChatTemplate.load("chatml"),
                                                    into: dir.appendingPathComponent("short"))) { e in
            XCTAssertTrue("\(e)".contains("gsm8k-train.jsonl:1:") && "\(e)".contains("--overlong error"), "\(e)")
        }
        o.overlong = .truncate
        XCTAssertThrowsError(try DatasetPacker.pack(o, tokenizer: TestSupport.tokenizer, template: try ChatTemplate.load("chatml"),
                                                    into: dir.appendingPathComponent("short"))) { e in
            XCTAssertTrue("\(e)".contains("no records left"), "\(e)")
        }
        o.overlong = .drop
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("short").path))
        // Bad lines skipped with a report.
        var text = try String(contentsOf: input, encoding: .utf8)
        text += "{\"instruction\":\"x\",\"input\":\"\"}\nnot json\n"
        try text.write(to: input, atomically: true, encoding: .utf8)
        o.maxLength = 1024
        o.skipInvalid = true
        let out = dir.appendingPathComponent("skip")
        let m = try DatasetPacker.pack(o, tokenizer: TestSupport.tokenizer, template: try ChatTemplate.load("chatml"), into: out)
        XCTAssertEqual(m.skipped, 2)
        XCTAssertEqual(m.records, 20)
        let report = try String(contentsOf: out.appendingPathComponent("skipped.txt"), encoding: .utf8)
        XCTAssertTrue(report.contains("gsm8k-train.jsonl:21: missing field \"output\""), report)
        XCTAssertTrue(report.contains("gsm8k-train.jsonl:22: malformed JSON"), report)
        // Repacking over a dataset replaces it; over a foreign folder is refused.
        _ = try DatasetPacker.pack(o, tokenizer: TestSupport.tokenizer, template: try ChatTemplate.load("chatml"), into: out)
        let foreign = dir.appendingPathComponent("foreign")
        try FileManager.default.createDirectory(at: foreign, withIntermediateDirectories: true)
        try Data("keep".utf8).write(to: foreign.appendingPathComponent("notes.txt"))
        XCTAssertThrowsError(try DatasetPacker.pack(o, tokenizer: TestSupport.tokenizer, template: try ChatTemplate.load("chatml"), into: foreign))
        XCTAssertTrue(FileManager.default.fileExists(atPath: foreign.appendingPathComponent("notes.txt").path))
    }

    func testPreferenceAndPromptDatasets() throws {
        let dir = try TestSupport.tempDir()
        let input = try subset("preferences/hh-rlhf-harmless-base-train.jsonl", 40, in: dir)
        let template = try ChatTemplate.load("zephyr")
        var o = DatasetPacker.Options(inputs: [input], maxLength: 256)
        o.overlong = .truncate   // some pairs are longer: exercise the cut
        let m = try DatasetPacker.pack(o, tokenizer: TestSupport.tokenizer, template: template, into: dir.appendingPathComponent("pref"))
        XCTAssertEqual(m.kind, .preference)
        XCTAssertEqual(m.entries, 40)
        XCTAssertGreaterThan(m.truncated, 0)
        let reader = try DatasetReader(dir.appendingPathComponent("pref"), options: .init(shuffle: false))
        let pb = try reader.nextPreferenceBatch(size: 4)
        let enc = try ChatEncoder(tokenizer: TestSupport.tokenizer, template: template)
        let records = try RecordReader.read(input).records
        for b in 0..<4 {
            guard case .preference(let p, let c, _) = records[b].body else { return XCTFail() }
            let pl = pb.promptLengths[b]
            let row = Array(pb.chosen.ids[(b * pb.chosen.length)..<(b * pb.chosen.length + pb.chosen.length)])
            let prompt = try enc.generationPrompt(p), reply = try enc.encodeReply(c)
            if prompt.count + reply.count <= 256 {
                XCTAssertEqual(Array(row[..<pl]), prompt)
                XCTAssertEqual(Array(row[pl..<(pl + reply.count)]), reply)
            }
            XCTAssertEqual(pb.chosen.labels[b * pb.chosen.length + pl - 1], -100)
            XCTAssertEqual(pb.chosen.labels[b * pb.chosen.length + pl], row[pl])
        }
        // RL prompts.
        o.format = .prompt
        let mp = try DatasetPacker.pack(o, tokenizer: TestSupport.tokenizer, template: template, into: dir.appendingPathComponent("rl"))
        XCTAssertEqual(mp.kind, .prompts)
        let prompts = try DatasetReader(dir.appendingPathComponent("rl"), options: .init(shuffle: false)).nextPrompts(2)
        XCTAssertEqual(prompts[0].suffix(try enc.encode("<|assistant|>\n").count), ArraySlice(try enc.encode("<|assistant|>\n")))
    }

    func testPlainTextDatasetSplitsLongText() throws {
        let dir = try TestSupport.tempDir()
        let text = dir.appendingPathComponent("shakespeare.txt")
        try TestSupport.sharedLines("text/tiny-shakespeare.txt", lines: 600).joined(separator: "\n").write(to: text, atomically: true, encoding: .utf8)
        let o = DatasetPacker.Options(inputs: [text], maxLength: 128)
        let m = try DatasetPacker.pack(o, tokenizer: TestSupport.tokenizer, template: nil, into: dir.appendingPathComponent("lm"))
        XCTAssertEqual(m.truncated, 0)
        XCTAssertEqual(m.trainedTokens, m.tokens)
        XCTAssertNil(m.template)
        let r = try DatasetReader(dir.appendingPathComponent("lm"), options: .init(shuffle: false))
        var all: [Int32] = []
        for _ in 0..<r.count { all += try r.next().ids }
        XCTAssertEqual(try TestSupport.tokenizer.decode(all).replacingOccurrences(of: "\n\n", with: "\n").count > 1000, true)
    }
}

extension PackReaderTests {
    /// `nextBatch` decodes a batch lying in one shard on two threads, straight into the batch; it must equal
    /// the batch built from the same entries read one by one, across shard boundaries and epochs, with and
    /// without a fixed length.
    func testParallelBatchesEqualEntryByEntryBatches() throws {
        let dir = try TestSupport.tempDir()
        let (out, m) = try packGSM(dir, records: 160, pack: false, shardMB: 0.01)
        XCTAssertGreaterThan(m.shards.count, 2)
        let fast = try DatasetReader(out, options: .init(seed: 5))
        let slow = try DatasetReader(out, options: .init(seed: 5))
        for round in 0..<60 {
            let size = [1, 3, 8, 13][round % 4]
            let length: Int? = round % 3 == 0 ? 96 : nil
            let a = try fast.nextBatch(size: size, length: length)
            let b = Batch(try (0..<size).map { _ in try slow.next() }, length: length, padID: slow.padID)
            XCTAssertEqual(a, b, "round \(round)")
            XCTAssertEqual(fast.cursor, slow.cursor)
        }
        XCTAssertGreaterThan(fast.cursor.epoch, 0, "the rounds crossed an epoch")
    }
}
