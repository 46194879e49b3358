import Foundation
import XCTest
import FinchData

/// Inputs that crashed, hung or exhausted memory under `tools/fuzz.sh` (libFuzzer harnesses in tools/fuzz): each must
/// now be refused with a thrown error. The inputs live in tools/fuzz/regressions/TARGET (made by
/// tools/fuzz/make_corpus.py) and are also seeds of the fuzz corpora.
final class FuzzRegressionTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let regressions = root.appendingPathComponent("tools/fuzz/regressions")

    func inputs(_ target: String) throws -> [URL] {
        let dir = Self.regressions.appendingPathComponent(target)
        let files = try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        XCTAssertFalse(files.isEmpty, "no regression inputs in \(dir.path)")
        return files
    }

    // MARK: chat templates (stack overflows, out of memory, hangs)

    let messages: [JinjaValue] = [
        .dict(JinjaDict([("role", .string("user")), ("content", .string("hi"))])),
        .dict(JinjaDict([("role", .string("assistant")), ("content", .string("hello"))])),
    ]

    func testHostileTemplatesAreRefusedWithAnError() throws {
        for url in try inputs("template") {
            let source = try String(contentsOf: url, encoding: .utf8)
            let started = Date()
            XCTAssertThrowsError(try HFChatTemplate(source: source, name: url.lastPathComponent, bosToken: "<s>", eosToken: "</s>")
                .renderTracking(messages: messages, addGenerationPrompt: true), url.lastPathComponent) { error in
                guard let e = error as? JinjaError else { return XCTFail("\(url.lastPathComponent): \(error)") }
                XCTAssertEqual(e.kind, .security, "\(url.lastPathComponent): \(e)")
                XCTAssertTrue(e.description.contains(url.lastPathComponent), "the error names the template: \(e)")
            }
            XCTAssertLessThan(Date().timeIntervalSince(started), 20, "\(url.lastPathComponent) took too long to be refused")
        }
    }

    func testTemplateLimitsLeaveRealTemplatesAlone() throws {
        // Recursion, loops and strings well within what chat templates do still render.
        let source = """
            {%- macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{% endif %}x{% endmacro -%}
            {{ f(60) | length }} {{ ('ab' * 1000) | length }} {{ ([0] * 1000) | length }}
            {%- set ns = namespace(n=0, inner=namespace(k=1)) %}{% for i in range(300) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}{% endfor %} {{ ns.n }} {{ ns.inner.k }}
            """
        let text = try HFChatTemplate(source: source, name: "ok.jinja", bosToken: nil, eosToken: nil)
            .renderTracking(messages: messages, addGenerationPrompt: false).text
        XCTAssertEqual(text, "61 2000 1000 600 1")
    }

    // MARK: packed datasets (segfault on a hostile index, 8 GB allocation for a 14-byte frame)

    /// Lays a fuzz input out as the harness does: manifest.json, shard-00000.idx, shard-00000.zst separated by
    /// "@@FUZZ@@", with the manifest's checksum placeholders filled in.
    func datasetFolder(_ input: Data, _ name: String) throws -> URL {
        let sep = Data("@@FUZZ@@".utf8)
        var parts: [Data] = []
        var rest = input[...]
        while let r = rest.range(of: sep) { parts.append(Data(rest[..<r.lowerBound])); rest = rest[r.upperBound...] }
        parts.append(Data(rest))
        XCTAssertEqual(parts.count, 3)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-fuzz-regression-\(name)-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var manifest = String(decoding: parts[0], as: UTF8.self)
        manifest = manifest.replacingOccurrences(of: "@SHARD_SHA@", with: SHA256.hex(parts[2]))
            .replacingOccurrences(of: "@INDEX_SHA@", with: SHA256.hex(parts[1]))
            .replacingOccurrences(of: "@SHARD_BYTES@", with: "\(parts[2].count)")
        try Data(manifest.utf8).write(to: dir.appendingPathComponent("manifest.json"))
        try parts[1].write(to: dir.appendingPathComponent("shard-00000.idx"))
        try parts[2].write(to: dir.appendingPathComponent("shard-00000.zst"))
        return dir
    }

    func testHostileShardIndexesAndFramesAreRefusedWithAnError() throws {
        for url in try inputs("manifest") {
            let dir = try datasetFolder(try Data(contentsOf: url), url.deletingPathExtension().lastPathComponent)
            defer { try? FileManager.default.removeItem(at: dir) }
            XCTAssertThrowsError(try {
                let reader = try DatasetReader(dir, options: DatasetReader.Options(shuffle: false))
                for s in 0..<reader.manifest.shards.count {
                    for e in 0..<reader.manifest.shards[s].entries { _ = try reader.entry(shard: s, index: e) }
                }
            }(), url.lastPathComponent) { error in
                guard let e = error as? ShardError else { return XCTFail("\(url.lastPathComponent): \(error)") }
                XCTAssertTrue(e.description.contains("shard-00000.zst"), "the error names the shard: \(e)")
            }
        }
    }

    func testTheValidSeedDatasetStillReads() throws {
        let seed = Self.root.appendingPathComponent("tools/fuzz/corpus/manifest/packed.bin")
        let dir = try datasetFolder(try Data(contentsOf: seed), "seed")
        defer { try? FileManager.default.removeItem(at: dir) }
        let reader = try DatasetReader(dir, options: DatasetReader.Options(shuffle: false))
        let all = try reader.next(reader.count)
        XCTAssertEqual(all.map(\.ids.count), [5, 7, 3])
    }

    // MARK: tokenizers (libsentencepiece aborted on an out-of-range id)

    func testOutOfRangeIdsAreNotControlTokens() throws {
        let corpus = Self.root.appendingPathComponent("tools/fuzz/corpus/tokenizer")
        for name in ["vocab-spm.gguf", "vocab-gpt2.gguf", "bytelevel.json"] {
            let tok = try Tokenizers.load(path: corpus.appendingPathComponent(name).path)
            for id in [-1, tok.vocabSize, Int(Int32.max)] {
                XCTAssertFalse(tok.isControl(id), "\(name): id \(id)")
                XCTAssertNil(tok.piece(id), "\(name): id \(id)")
            }
            if let spm = tok as? SentencePieceTokenizer {
                XCTAssertEqual(spm.score(-1), 0)
                XCTAssertEqual(spm.type(spm.vocabSize), .unused)
                XCTAssertTrue(spm.isControl(1), "<s> is still a control token")
            }
        }
    }
}
