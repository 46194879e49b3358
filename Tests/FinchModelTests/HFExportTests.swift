import XCTest
import FinchKernels
import FinchModel
import FinchConformance

final class HFExportTests: XCTestCase {
    private func assertSameParameters(_ a: [String: Tensor], _ b: [String: Tensor], _ what: String) {
        XCTAssertEqual(Set(a.keys), Set(b.keys), what)
        for (name, t) in a {
            XCTAssertEqual(t.shape, b[name]?.shape, "\(what): \(name)")
            XCTAssertEqual(t.array.map { $0.bitPattern }, b[name]?.array.map { $0.bitPattern }, "\(what): \(name)")
        }
    }

    /// Every conformance model folder, written by Finch and read back, is identical; the config.json Finch
    /// writes agrees with the one transformers wrote on every key both have.
    func testConformanceFoldersRoundTrip() throws {
        let folders = hfConformanceModelFolders()
        if folders.isEmpty { print("HFExportTests: no conformance model folder"); return }
        for folder in folders {
            let original = try HFModelFolder.read(folder)
            let out = hfTemporaryFolder(self)
            try HFModelFolder.save(config: original.config, parameters: original.parameters, to: out,
                                   generationConfig: original.generationConfig)
            let back = try HFModelFolder.read(out)
            XCTAssertEqual(back.config, original.config, folder.lastPathComponent)
            assertSameParameters(back.parameters, original.parameters, folder.lastPathComponent)
            XCTAssertEqual(back.finchInfo?.flavour, original.config.flavour)
            if let g = original.generationConfig { XCTAssertEqual(back.generationConfig, g) }

            let theirs = try JSONValue.read(folder.appendingPathComponent("config.json")).object!
            let ours = try JSONValue.read(out.appendingPathComponent("config.json")).object!
            for (key, value) in theirs where key != "transformers_version" {
                guard let mine = ours[key] else { continue }
                XCTAssert(mine == value || (mine.double != nil && mine.double == value.double),
                          "\(folder.lastPathComponent): config.json '\(key)': ours \(mine.text()) theirs \(value.text())")
            }
            // Keys transformers needs to pick the class and its shapes.
            for key in ["architectures", "model_type", "vocab_size", "tie_word_embeddings", "dtype", "torch_dtype"] {
                XCTAssertNotNil(ours[key], key)
            }
        }
    }

    /// A tiny shard size forces shards and an index like transformers'; reading gives the same model back;
    /// saving again unsharded into the same folder removes the shards and the index.
    func testShardedRoundTripAndResave() throws {
        for flavour in [Flavour.llama, .gpt2] {
            let config = hfTinyConfig(flavour, tied: false)
            let params = hfRandomParameters(config, seed: 7)
            let dir = hfTemporaryFolder(self)
            let shardSize = 1024
            try HFModelFolder.save(config: config, parameters: params, to: dir, shardSize: shardSize)
            let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
            let shards = files.filter { $0.hasPrefix("model-") }
            XCTAssertGreaterThan(shards.count, 1)
            XCTAssertEqual(shards.last, String(format: "model-%05d-of-%05d.safetensors", shards.count, shards.count))
            XCTAssertFalse(files.contains("model.safetensors"))
            XCTAssertFalse(files.contains { $0.hasPrefix(".") }, "temporary files left: \(files)")
            let index = try JSONValue.read(dir.appendingPathComponent("model.safetensors.index.json"))
            let total = params.values.reduce(0) { $0 + 4 * $1.count }
            XCTAssertEqual(index["metadata"]?["total_size"]?.int, total)
            XCTAssertEqual(Set(index["weight_map"]!.object!.keys), Set(params.keys))
            for shard in shards {
                let f = try SafeTensors.File(url: dir.appendingPathComponent(shard))
                let bytes = f.entries.values.reduce(0) { $0 + $1.range.count }
                XCTAssert(bytes <= shardSize || f.entries.count == 1, "\(shard) holds \(bytes) bytes")
            }
            let (c, p) = try HFModelFolder.load(dir)
            XCTAssertEqual(c, config)
            assertSameParameters(p, params, "sharded \(flavour)")

            try HFModelFolder.save(config: config, parameters: params, to: dir)
            let after = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
            XCTAssertEqual(after, ["config.json", "finch.json", "generation_config.json", "model.safetensors"])
            assertSameParameters(try HFModelFolder.load(dir).parameters, params, "re-saved \(flavour)")
        }
    }

    /// Tied models: a given lm_head is dropped; generation config, finch.json and the tokenizer are written.
    func testTiedHeadAndExtraFiles() throws {
        let config = hfTinyConfig(.llama, tied: true)
        var params = hfRandomParameters(config)
        params["lm_head.weight"] = params["model.embed_tokens.weight"]
        let dir = hfTemporaryFolder(self)
        let tok = dir.appendingPathComponent("source.model")
        try Data([1, 2, 3]).write(to: tok)
        let out = dir.appendingPathComponent("model")
        let gen = HFGenerationConfig(bosTokenId: 1, eosTokenIds: [2, 7], padTokenId: 0, maxNewTokens: 64, temperature: 0.7)
        try HFModelFolder.save(config: config, parameters: params, to: out, generationConfig: gen,
                               finchInfo: FinchModelInfo(flavour: .llama, chatTemplate: "chatml"), tokenizerModel: tok)
        XCTAssertNil(try SafeTensors.File(url: out.appendingPathComponent("model.safetensors")).entries["lm_head.weight"])
        let back = try HFModelFolder.read(out)
        XCTAssertEqual(back.generationConfig, gen)
        XCTAssertEqual(back.finchInfo, FinchModelInfo(flavour: .llama, chatTemplate: "chatml"))
        XCTAssertEqual(try Data(contentsOf: XCTUnwrap(back.tokenizerModel)), Data([1, 2, 3]))
        let json = try JSONValue.read(out.appendingPathComponent("config.json"))
        XCTAssertEqual(json["eos_token_id"], .array([.int(2), .int(7)]))
        XCTAssertEqual(json["rope_parameters"]?["rope_theta"]?.double, 500000)
        XCTAssertEqual(json["rope_theta"]?.double, 500000)
        XCTAssertEqual(json["rms_norm_eps"], .double(1e-06))
        let summary = try HFModelSummary.inspect(out)
        XCTAssertNil(summary.problem)
        XCTAssertTrue(summary.hasTokenizer)
        XCTAssertEqual(summary.parameterCount, config.parameterCount)
    }

    /// Saving without finchInfo keeps what other writers put in finch.json; extra files are copied by name.
    func testFinchJSONKeptAndExtraFilesCopied() throws {
        let config = hfTinyConfig(.gpt2)
        let dir = hfTemporaryFolder(self)
        let out = dir.appendingPathComponent("model")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try #"{"chat_template": "alpaca", "note": 1}"#.write(to: out.appendingPathComponent("finch.json"), atomically: true, encoding: .utf8)
        let extra = dir.appendingPathComponent("chat_template.json")
        try "{}".write(to: extra, atomically: true, encoding: .utf8)
        try HFModelFolder.save(config: config, parameters: hfRandomParameters(config), to: out, extraFiles: [extra])
        let finch = try JSONValue.read(out.appendingPathComponent("finch.json"))
        XCTAssertEqual(finch["chat_template"], .string("alpaca"))
        XCTAssertEqual(finch["note"], .int(1))
        XCTAssertEqual(finch["flavour"], .string("gpt2"))
        XCTAssertEqual(try String(contentsOf: out.appendingPathComponent("chat_template.json"), encoding: .utf8), "{}")
        XCTAssertEqual(try HFModelFolder.read(out).finchInfo?.chatTemplate, "alpaca")
    }

    /// save refuses parameters that do not match the configuration, naming the tensor.
    func testSaveRejectsMismatchedParameters() throws {
        let config = hfTinyConfig(.gpt2)
        var params = hfRandomParameters(config)
        params["transformer.h.0.mlp.c_fc.weight"] = Tensor(shape: [20, 8])   // Linear layout instead of Conv1D
        params["transformer.ln_f.bias"] = nil
        let dir = hfTemporaryFolder(self)
        XCTAssertThrowsError(try HFModelFolder.save(config: config, parameters: params, to: dir)) { error in
            let m = "\(error)"
            XCTAssert(m.contains("'transformer.h.0.mlp.c_fc.weight' has shape [20, 8]") && m.contains("[8, 20]"), m)
            XCTAssert(m.contains("'transformer.ln_f.bias'"), m)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("config.json").path))
    }
}
