import XCTest
import FinchKernels
import FinchModel
import FinchConformance

/// A fresh empty folder under the temporary directory, removed when the test ends.
func hfTemporaryFolder(_ test: XCTestCase) -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("finch-hf-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}

/// Every conformance case folder holding a model (`config.json`), discovered from the folder.
func hfConformanceModelFolders() -> [URL] {
    let root = Conformance.root
    let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
    return names.sorted().map { root.appendingPathComponent($0) }
        .filter { FileManager.default.fileExists(atPath: $0.appendingPathComponent("config.json").path) }
}

/// Random parameters for every name of `config.parameterShapes()`.
func hfRandomParameters(_ config: DecoderConfig, seed: UInt64 = 1) -> [String: Tensor] {
    var state = seed
    var out: [String: Tensor] = [:]
    for (name, shape) in config.parameterShapes() {
        let t = Tensor(shape: shape)
        for i in 0..<t.count {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            t[i] = Float(Int((state >> 40) & 0xffff) - 32768) / 16384
        }
        out[name] = t
    }
    return out
}

/// Writes a safetensors file from raw entries (name, dtype, shape, little-endian bytes), as any writer would.
func hfWriteRawSafetensors(_ entries: [(String, String, [Int], [UInt8])], to url: URL) throws {
    var header: [String: Any] = ["__metadata__": ["format": "pt"]]
    var offset = 0
    for (name, dtype, shape, bytes) in entries {
        header[name] = ["dtype": dtype, "shape": shape, "data_offsets": [offset, offset + bytes.count]] as [String: Any]
        offset += bytes.count
    }
    let json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
    var data = Data()
    var n = UInt64(json.count).littleEndian
    withUnsafeBytes(of: &n) { data.append(contentsOf: $0) }
    data.append(json)
    for e in entries { data.append(contentsOf: e.3) }
    try data.write(to: url)
}

func hfFloat32Bytes(_ t: Tensor) -> [UInt8] {
    var out: [UInt8] = []
    for i in 0..<t.count { withUnsafeBytes(of: t[i].bitPattern.littleEndian) { out.append(contentsOf: $0) } }
    return out
}

/// A tiny configuration of each flavour for synthetic folders.
func hfTinyConfig(_ flavour: Flavour, tied: Bool? = nil) -> DecoderConfig {
    flavour == .llama
        ? DecoderConfig(flavour: .llama, vocabSize: 11, hiddenSize: 8, numLayers: 2, numHeads: 2, numKVHeads: 1,
                        intermediateSize: 12, maxPositions: 16, normEps: 1e-6, ropeTheta: 500000, tieWordEmbeddings: tied,
                        bosTokenId: 1, eosTokenId: 2, padTokenId: 0, eosTokenIds: [2, 7])
        : DecoderConfig(flavour: .gpt2, vocabSize: 13, hiddenSize: 8, numLayers: 1, numHeads: 2, intermediateSize: 20,
                        maxPositions: 9, tieWordEmbeddings: tied, bosTokenId: 12, eosTokenId: 12)
}

final class HFImportTests: XCTestCase {
    /// Every conformance model folder loads; config fields match config.json and every tensor matches the file.
    func testConformanceModelFoldersLoad() throws {
        let folders = hfConformanceModelFolders()
        if folders.isEmpty { print("HFImportTests: no conformance model folder under \(Conformance.root.path)"); return }
        for folder in folders {
            let loaded = try HFModelFolder.read(folder)
            let c = loaded.config
            let raw = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("config.json"))) as! [String: Any]
            func int(_ k: String) -> Int? { (raw[k] as? NSNumber)?.intValue }
            func dbl(_ k: String) -> Double? { (raw[k] as? NSNumber)?.doubleValue }
            let arch = (raw["architectures"] as? [String])?.first
            XCTAssertEqual(c.hfArchitecture, arch, folder.lastPathComponent)
            XCTAssertEqual(c.vocabSize, int("vocab_size"))
            XCTAssertEqual(c.bosTokenId, int("bos_token_id"))
            XCTAssertEqual(c.eosTokenId, int("eos_token_id"))
            XCTAssertEqual(c.padTokenId, int("pad_token_id"))
            if let tie = raw["tie_word_embeddings"] as? Bool { XCTAssertEqual(c.tieWordEmbeddings, tie) }
            switch raw["model_type"] as? String {
            case "llama":
                XCTAssertEqual(c.flavour, .llama)
                XCTAssertEqual(c.hiddenSize, int("hidden_size")); XCTAssertEqual(c.intermediateSize, int("intermediate_size"))
                XCTAssertEqual(c.numLayers, int("num_hidden_layers")); XCTAssertEqual(c.numHeads, int("num_attention_heads"))
                XCTAssertEqual(c.numKVHeads, int("num_key_value_heads") ?? c.numHeads)
                XCTAssertEqual(c.headDim, int("head_dim") ?? c.hiddenSize / c.numHeads)
                XCTAssertEqual(c.maxPositions, int("max_position_embeddings"))
                XCTAssertEqual(c.normEps, Float(dbl("rms_norm_eps")!))
                let theta = ((raw["rope_parameters"] as? [String: Any])?["rope_theta"] as? NSNumber)?.doubleValue ?? dbl("rope_theta") ?? 10000
                XCTAssertEqual(c.ropeTheta, Float(theta))
                if arch == "LlamaForSequenceClassification" {
                    XCTAssertEqual(c.numLabels, (raw["id2label"] as? [String: Any])?.count)
                    XCTAssertNotNil(loaded.parameters["score.weight"])
                }
            case "gpt2":
                XCTAssertEqual(c.flavour, .gpt2)
                XCTAssertEqual(c.hiddenSize, int("n_embd")); XCTAssertEqual(c.numLayers, int("n_layer"))
                XCTAssertEqual(c.numHeads, int("n_head")); XCTAssertEqual(c.maxPositions, int("n_positions"))
                XCTAssertEqual(c.intermediateSize, int("n_inner") ?? 4 * c.hiddenSize)
                XCTAssertEqual(c.normEps, Float(dbl("layer_norm_epsilon")!))
            default: XCTFail("\(folder.lastPathComponent): unexpected model_type")
            }
            // Every expected parameter is present with its shape and the file's values.
            let file = try SafeTensors.File(url: folder.appendingPathComponent("model.safetensors"))
            XCTAssertEqual(loaded.parameters.count, c.parameterShapes().count)
            for (name, shape) in c.parameterShapes() {
                let t = try XCTUnwrap(loaded.parameters[name], "\(folder.lastPathComponent): \(name)")
                XCTAssertEqual(t.shape, shape, name)
                XCTAssertEqual(t.array, try file.tensor(name).array, name)
            }
            let hasGen = FileManager.default.fileExists(atPath: folder.appendingPathComponent("generation_config.json").path)
            XCTAssertEqual(loaded.generationConfig != nil, hasGen)
            if let g = loaded.generationConfig {
                let rawGen = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("generation_config.json"))) as! [String: Any]
                XCTAssertEqual(g.bosTokenId, (rawGen["bos_token_id"] as? NSNumber)?.intValue)
                XCTAssertEqual(g.padTokenId, (rawGen["pad_token_id"] as? NSNumber)?.intValue)
            }
            XCTAssertEqual(loaded.storedDTypes, ["F32"])
            print("HFImportTests: loaded \(folder.lastPathComponent) (\(c.hfArchitecture), \(c.parameterCount) parameters)")
        }
    }

    /// BF16 and F16 tensors (bytes written here by hand) are converted to float32 exactly.
    func testBF16AndF16Conversion() throws {
        let dir = hfTemporaryFolder(self)
        let config = hfTinyConfig(.llama, tied: true)
        try HFConfig.save(config, to: dir.appendingPathComponent("config.json"))
        var entries: [(String, String, [Int], [UInt8])] = []
        var expected: [String: [Float]] = [:]
        // Values exact in both half formats: small multiples of 1/8, plus signs and zero.
        for (k, (name, shape)) in config.parameterShapes().enumerated() {
            let count = shape.reduce(1, *)
            let values = (0..<count).map { Float(($0 * 7 + k) % 33 - 16) / 8 }
            expected[name] = values
            var bytes: [UInt8] = []
            let bf16 = k % 2 == 0
            for v in values {
                let bits: UInt16 = bf16 ? UInt16(v.bitPattern >> 16) : Float16(v).bitPattern
                bytes.append(UInt8(bits & 0xff)); bytes.append(UInt8(bits >> 8))
            }
            entries.append((name, bf16 ? "BF16" : "F16", shape, bytes))
        }
        try hfWriteRawSafetensors(entries, to: dir.appendingPathComponent("model.safetensors"))
        let loaded = try HFModelFolder.read(dir)
        XCTAssertEqual(loaded.storedDTypes, ["BF16", "F16"])
        for (name, values) in expected { XCTAssertEqual(loaded.parameters[name]?.array, values, name) }
        // Values only one format holds: bf16 keeps float32's range, f16 its subnormals.
        XCTAssertEqual(SafeTensors.halfToFloat(0x0001), Float(sign: .plus, exponent: -24, significand: 1))
        XCTAssertEqual(SafeTensors.halfToFloat(0x7bff), 65504)
        XCTAssertEqual(SafeTensors.halfToFloat(0xfc00), -.infinity)
    }

    /// An old GPT-2 checkpoint: no `transformer.` prefix, causal-mask buffers, a tied lm_head stored anyway,
    /// split over two shards with an index.
    func testOldGPT2NamesBuffersTiedHeadAndShards() throws {
        let dir = hfTemporaryFolder(self)
        let config = hfTinyConfig(.gpt2)
        let params = hfRandomParameters(config)
        try HFConfig.save(config, to: dir.appendingPathComponent("config.json"))
        var shard1: [(String, String, [Int], [UInt8])] = [], shard2 = shard1
        for (i, (name, shape)) in config.parameterShapes().enumerated() {
            let stored = String(name.dropFirst("transformer.".count))
            let e = (stored, "F32", shape, hfFloat32Bytes(params[name]!))
            if i % 2 == 0 { shard1.append(e) } else { shard2.append(e) }
        }
        shard2.append(("h.0.attn.bias", "F32", [1, 1, 3, 3], [UInt8](repeating: 0, count: 36)))
        shard2.append(("h.0.attn.masked_bias", "F32", [], [0, 0, 0, 0]))
        shard1.append(("lm_head.weight", "F32", [config.vocabSize, config.hiddenSize], hfFloat32Bytes(params["transformer.wte.weight"]!)))
        try hfWriteRawSafetensors(shard1, to: dir.appendingPathComponent("model-00001-of-00002.safetensors"))
        try hfWriteRawSafetensors(shard2, to: dir.appendingPathComponent("model-00002-of-00002.safetensors"))
        var map: [String: String] = [:]
        for e in shard1 { map[e.0] = "model-00001-of-00002.safetensors" }
        for e in shard2 { map[e.0] = "model-00002-of-00002.safetensors" }
        let index = try JSONSerialization.data(withJSONObject: ["metadata": ["total_size": 0], "weight_map": map])
        try index.write(to: dir.appendingPathComponent("model.safetensors.index.json"))

        let (loadedConfig, loaded) = try HFModelFolder.load(dir)
        XCTAssertEqual(loadedConfig, config)
        XCTAssertEqual(Set(loaded.keys), Set(params.keys))
        for (name, t) in params { XCTAssertEqual(loaded[name]!.array, t.array, name) }

        // A stored tied head that differs from the embedding is an error naming both.
        var bad = params["transformer.wte.weight"]!.array; bad[3] += 1
        shard1[shard1.count - 1].3 = hfFloat32Bytes(Tensor(shape: [config.vocabSize, config.hiddenSize], values: bad))
        try hfWriteRawSafetensors(shard1, to: dir.appendingPathComponent("model-00001-of-00002.safetensors"))
        XCTAssertThrowsError(try HFModelFolder.load(dir)) { error in
            XCTAssert("\(error)".contains("lm_head.weight") && "\(error)".contains("transformer.wte.weight"), "\(error)")
        }
    }

    /// Missing tensor, shape mismatch, unexpected tensor: one error naming each tensor, shape and file.
    func testValidationErrorsNameTheTensor() throws {
        let dir = hfTemporaryFolder(self)
        let config = hfTinyConfig(.llama)
        var params = hfRandomParameters(config)
        try HFModelFolder.save(config: config, parameters: params, to: dir)
        // Rewrite the weights behind save's back: drop one, reshape one, add one.
        params["model.layers.1.mlp.up_proj.weight"] = nil
        params["model.layers.0.self_attn.k_proj.weight"] = Tensor(shape: [3, config.hiddenSize])
        params["model.layers.0.self_attn.q_norm.weight"] = Tensor(shape: [4])
        try SafeTensors.write(params, to: dir.appendingPathComponent("model.safetensors"))
        XCTAssertThrowsError(try HFModelFolder.load(dir)) { error in
            let m = "\(error)"
            XCTAssert(m.contains("'model.layers.1.mlp.up_proj.weight'") && m.contains("missing"), m)
            XCTAssert(m.contains("'model.layers.0.self_attn.k_proj.weight' has shape [3, 8]") && m.contains("expects [4, 8]"), m)
            XCTAssert(m.contains("unexpected tensor 'model.layers.0.self_attn.q_norm.weight'"), m)
            XCTAssert(m.contains("model.safetensors"), m)
        }
    }

    /// Unknown architectures and model types are refused with their name and the supported list.
    func testUnknownArchitecture() throws {
        let dir = hfTemporaryFolder(self)
        let url = dir.appendingPathComponent("config.json")
        try #"{"architectures": ["MistralForCausalLM"], "model_type": "mistral", "hidden_size": 8}"#.write(to: url, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try HFModelFolder.load(dir)) { error in
            let m = "\(error)"
            XCTAssert(m.contains("MistralForCausalLM") && m.contains("LlamaForCausalLM") && m.contains("GPT2LMHeadModel"), m)
        }
        try #"{"model_type": "falcon"}"#.write(to: url, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try HFConfig.load(url)) { XCTAssert("\($0)".contains("falcon"), "\($0)") }
        try #"{"architectures": ["GPT2LMHeadModel"], "activation_function": "relu", "n_embd": 8, "n_layer": 1, "n_head": 2, "vocab_size": 5}"#
            .write(to: url, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try HFConfig.load(url)) { XCTAssert("\($0)".contains("relu"), "\($0)") }
    }

    /// Older transformers' fields: top-level rope_theta, eos as a list, absent optional fields get HF defaults.
    func testLlamaConfigDefaultsAndEOSList() throws {
        let json = #"{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64, "intermediate_size": 128,"#
            + #" "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100, "rope_theta": 500000.0, "eos_token_id": [5, 6],"#
            + #" "max_position_embeddings": 256, "rms_norm_eps": 1e-06}"#
        let c = try HFConfig.decode(JSONValue.parse(Data(json.utf8), file: "test"), file: "test")
        XCTAssertEqual(c.numKVHeads, 4); XCTAssertEqual(c.headDim, 16); XCTAssertEqual(c.ropeTheta, 500000)
        XCTAssertEqual(c.eosTokenId, 5); XCTAssertEqual(c.eosTokenIds, [5, 6]); XCTAssertFalse(c.tieWordEmbeddings)
        XCTAssertNil(c.padTokenId)
        let gen = try HFConfig.decode(.object(["architectures": .array([.string("GPT2LMHeadModel")]), "n_embd": .int(8),
                                               "n_layer": .int(1), "n_head": .int(2), "vocab_size": .int(5), "n_inner": .null]), file: "t")
        XCTAssertEqual(gen.intermediateSize, 32); XCTAssertTrue(gen.tieWordEmbeddings)
    }
}
