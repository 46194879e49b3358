import Foundation
import XCTest
import FinchKernels
import FinchGGUF
import FinchData
import FinchModel

/// `GGUFModelExport` / `GGUFAdapterExport`: GGUF → Finch → GGUF keeps tensors and metadata; an exported model read
/// back by Finch gives the source's logits; the file passes gguf-py's reader (tools/gguf_export_check.py).
final class GGUFExportTests: XCTestCase {
    static var assets: URL {
        ProcessInfo.processInfo.environment["FINCH_TEST_ASSETS"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/finch/test-assets")
    }
    static var repo: URL { URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent() }

    var temp: URL!
    override func setUpWithError() throws {
        temp = FileManager.default.temporaryDirectory.appendingPathComponent("finch-gguf-export-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: temp, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: temp) }

    func realModel(_ name: String) throws -> URL {
        let paths = Self.assets.appendingPathComponent("real_models/paths.json")
        guard let data = try? Data(contentsOf: paths), let obj = try JSONSerialization.jsonObject(with: data) as? [String: String],
              let p = obj[name] else {
            throw XCTSkip("missing \(paths.path): run tools/test_assets.sh")   // reported as a failure below
        }
        return URL(fileURLWithPath: p)
    }

    /// Runs tools/gguf_export_check.py; returns its JSON line, failing the test with its problems.
    @discardableResult
    func pythonCheck(_ file: URL, _ extra: [String] = []) throws -> [String: Any] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", Self.repo.appendingPathComponent("tools/gguf_export_check.py").path, file.path] + extra
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: o, as: UTF8.self)
        XCTAssertEqual(p.terminationStatus, 0, "gguf_export_check \(file.lastPathComponent): \(text)\(String(decoding: e, as: UTF8.self))")
        print("gguf_export_check \(file.lastPathComponent): \(text.trimmingCharacters(in: .whitespacesAndNewlines))")
        return (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    func logits(_ f: HFModelFolder, ids: [Int]) throws -> [Float] {
        let d = try Decoder(config: f.config, parameters: f.parameters)
        d.forwardHidden(ids: ids, batch: 1, length: ids.count)
        return d.lmHead().array
    }

    // MARK: GGUF → Finch → GGUF

    /// The real SmolLM2 (Q4_1) and Gemma 3 (Q4_K_M) files, read by Finch and written back in their own mix of types:
    /// every metadata key kept and every tensor bit-identical, K-quants included (unchanged weights keep the source's
    /// blocks; gguf-py and ggml's C reference check the file again in the Python check).
    func testRealModelsRoundTripThroughFinch() throws {
        for name in ["smollm2", "gemma3"] {
            let src = try realModel(name)
            let model = try HFModelFolder.read(src)
            let out = temp.appendingPathComponent("\(name).gguf")
            let t0 = Date()
            let summary = try GGUFModelExport.write(model, to: out, options: GGUFExportOptions(type: .q8_0, typeOverrides: GGUFModelExport.sourceTypes(of: src)))
            print(String(format: "%@ → GGUF (source types): %.1f s, %d bytes", name, Date().timeIntervalSince(t0), summary.fileSize))
            let a = try GGUFFile(contentsOf: src), b = try GGUFFile(contentsOf: out)
            for key in a.metadataKeys where key != "general.quantization_version" {
                XCTAssertEqual(b.metadata[key], a.metadata[key], "\(name): key \(key)")
            }
            XCTAssertEqual(b.tensors.map(\.name), a.tensors.map(\.name), name)
            var identical = 0, reference = 0
            for t in a.tensors {
                let u = try XCTUnwrap(b.tensor(named: t.name))
                XCTAssertEqual(u.shape, t.shape, t.name)
                XCTAssertEqual(u.type, t.type, t.name)
                XCTAssertTrue([UInt8](b.bytes(of: u)) == [UInt8](a.bytes(of: t)), "\(name) \(t.name) \(t.type.name): bytes differ")
                identical += 1
                // Where the source's blocks are not what ggml's reference quantiser makes of its values (an imatrix
                // quantisation), they were copied, not re-quantised.
                if try GGMLQuantizer.quantize(t.type, try a.dequantize(t)) == [UInt8](a.bytes(of: t)) { reference += 1 }
            }
            print("\(name): \(identical) tensors bit-identical (\(reference) of them are also what the reference quantiser gives)")
            try pythonCheck(out, ["--source", src.path])
        }
    }

    /// The tiny llama.cpp-converted models of every architecture (qwen2, qwen3, llama3 RoPE with rope_freqs, llama
    /// with biases, gemma3): GGUF → Finch → f32 GGUF → Finch gives the same parameters and logits, bit for bit.
    func testArchitecturesRoundTripWithIdenticalLogits() throws {
        for name in ["qwen2", "qwen3", "llama3-rope", "llama-bias", "gemma3"] {
            let src = Self.assets.appendingPathComponent("arch_gguf/\(name).gguf")
            guard FileManager.default.fileExists(atPath: src.path) else {
                XCTFail("\(src.path) missing: run tools/test_assets.sh"); continue
            }
            let model = try HFModelFolder.read(src)
            let out = temp.appendingPathComponent("\(name).f32.gguf")
            try GGUFModelExport.write(model, to: out, options: GGUFExportOptions(type: .f32))
            let back = try HFModelFolder.read(out)
            XCTAssertEqual(back.config, model.config, name)
            for (k, t) in model.parameters {
                XCTAssertEqual(back.parameters[k]?.array.map(\.bitPattern), t.array.map(\.bitPattern), "\(name) \(k)")
            }
            let ids = (0..<10).map { ($0 * 37 + 5) % model.config.vocabSize }
            XCTAssertEqual(try logits(back, ids: ids).map(\.bitPattern), try logits(model, ids: ids).map(\.bitPattern), name)
            // The source file was f32 throughout, so the export is the same bytes tensor for tensor.
            let a = try GGUFFile(contentsOf: src), b = try GGUFFile(contentsOf: out)
            for t in a.tensors { XCTAssertTrue([UInt8](a.bytes(of: t)) == [UInt8](b.bytes(of: b.tensor(named: t.name)!)), "\(name) \(t.name)") }
            try pythonCheck(out, ["--source", src.path, "--expect-arch", a.architecture!])
        }
    }

    /// SmolLM2 exported as every type and read back: f32 gives the same logits exactly, f16/bf16/q8_0 within what
    /// their rounding allows (the 4- and 6-bit types are measured and printed).
    func testExportedModelLogits() throws {
        let src = try realModel("smollm2")
        let model = try HFModelFolder.read(src)
        let ids = [1, 504, 3458, 282, 4193, 314, 253, 1345, 30, 216, 1780, 42]
        let reference = try logits(model, ids: ids)
        let range = reference.max()! - reference.min()!
        for (type, tolerance) in [(GGMLType.f32, Float(0)), (.f16, 0.05), (.bf16, 0.4), (.q8_0, 1.0), (.q6_K, .infinity), (.q4_K, .infinity), (.q4_0, .infinity)] {
            let out = temp.appendingPathComponent("smol.\(type.name).gguf")
            let t0 = Date()
            let s = try GGUFModelExport.write(model, to: out, options: GGUFExportOptions(type: type))
            let seconds = Date().timeIntervalSince(t0)
            let got = try logits(try HFModelFolder.read(out), ids: ids)
            let worst = zip(got, reference).map { abs($0 - $1) }.max()!
            let argmaxSame = (0..<ids.count).allSatisfy { p in
                let v = model.config.vocabSize
                let a = got[(p * v)..<((p + 1) * v)], b = reference[(p * v)..<((p + 1) * v)]
                return a.firstIndex(of: a.max()!)! - p * v == b.firstIndex(of: b.max()!)! - p * v
            }
            print(String(format: "SmolLM2 %@: %.1f MiB, written in %.2f s, max |Δlogit| %.3g (logit range %.1f), same argmax at every position: %@",
                         type.name, Double(s.fileSize) / 1_048_576, seconds, worst, range, argmaxSame ? "yes" : "no"))
            if type == .f32 {
                XCTAssertEqual(got.map(\.bitPattern), reference.map(\.bitPattern), "f32 export must give identical logits")
            } else {
                XCTAssertLessThanOrEqual(worst, tolerance, type.name)
            }
            try pythonCheck(out, ["--expect-arch", "llama"])
        }
    }

    // MARK: Tokenizer from a model folder

    /// A model folder (written by Finch from the GGUF) exported to GGUF: the vocabulary Finch derives from its
    /// tokenizer.json (byte-level BPE) or tokenizer.model (SentencePiece) equals what llama.cpp's converter wrote,
    /// token types included (tokenizer_config.json's added_tokens_decoder says which pieces are control or
    /// user-defined, and Gemma's user-defined runs of spaces come back spelled with spaces).
    func testTokenizerFromFolderEqualsTheConverters() throws {
        for name in ["smollm2", "gemma3"] {
            let src = try realModel(name)
            let model = try HFModelFolder.read(src)
            let folder = temp.appendingPathComponent("\(name)-hf")
            try HFModelFolder.save(config: model.config, parameters: model.parameters, to: folder, generationConfig: model.generationConfig,
                                   finchInfo: model.finchInfo, tokenizerModel: model.tokenizerModel,
                                   extraFiles: [model.tokenizerModel!.deletingLastPathComponent().appendingPathComponent("tokenizer_config.json")])
            let (w, _) = try GGUFModelExport.writer(for: try HFModelFolder.read(folder), options: GGUFExportOptions(type: .q8_0))
            let a = try GGUFFile(contentsOf: src)
            var keys = ["tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.bos_token_id",
                        "tokenizer.ggml.eos_token_id", "tokenizer.ggml.add_bos_token", "tokenizer.chat_template"]
            keys += name == "smollm2" ? ["tokenizer.ggml.pre", "tokenizer.ggml.merges"] : ["tokenizer.ggml.scores", "tokenizer.ggml.add_space_prefix"]
            for key in keys where a.metadata[key] != nil {
                XCTAssertEqual(w.metadata[key], a.metadata[key], "\(name): \(key)")
            }
        }
    }

    // MARK: Adapters

    /// A random LoRA on SmolLM2's q/k/v/o: as llama.cpp's adapter GGUF (lora_a/lora_b named after the base tensors,
    /// lora_b rows of q/k permuted as the base's rows), and merged into the model before export.
    func testLoRAAdapterAsGGUFAndMerged() throws {
        let src = try realModel("smollm2")
        let model = try HFModelFolder.read(src)
        let c = model.config
        var weights = LoRAAdapterWeights()
        var seed: UInt32 = 7
        func rnd() -> Float { seed = seed &* 1_664_525 &+ 1_013_904_223; return Float(Int32(bitPattern: seed)) / 4e11 }
        let r = 4
        for l in [0, 7] {
            for (p, outF) in [("q_proj", c.qDim), ("k_proj", c.kvDim), ("v_proj", c.kvDim)] {
                let a = Tensor(shape: [r, c.hiddenSize]), b = Tensor(shape: [outF, r])
                for i in 0..<a.count { a.ptr[i] = rnd() }
                for i in 0..<b.count { b.ptr[i] = rnd() }
                weights.modules["model.layers.\(l).self_attn.\(p)"] = LoRAModuleWeights(a: a, b: b, scale: 16.0 / Float(r))
            }
        }
        let adapter = temp.appendingPathComponent("adapter")
        let config = LoRAAdapterConfig(r: r, loraAlpha: 16, targetModules: ["q_proj", "k_proj", "v_proj"], baseModelNameOrPath: src.path)
        try PEFTAdapterFolder.save(.lora(config, weights), to: adapter)

        let out = temp.appendingPathComponent("adapter.gguf")
        try GGUFAdapterExport.write(adapter: adapter, baseModel: src, to: out, type: .f32)
        let f = try GGUFFile(contentsOf: out)
        XCTAssertEqual(f.string("general.type"), "adapter")
        XCTAssertEqual(f.string("adapter.type"), "lora")
        XCTAssertEqual(f.float("adapter.lora.alpha"), 16)
        XCTAssertEqual(f.architecture, "llama")
        XCTAssertEqual(f.tensors.count, 12)
        let qa = try XCTUnwrap(f.tensor(named: "blk.7.attn_q.weight.lora_a")), qb = try XCTUnwrap(f.tensor(named: "blk.7.attn_q.weight.lora_b"))
        XCTAssertEqual(qa.shape, [c.hiddenSize, r])
        XCTAssertEqual(qb.shape, [r, c.qDim])
        // B·A in the file's row order is the merged delta in the base GGUF's (permuted) row order.
        let m = weights.modules["model.layers.7.self_attn.q_proj"]!
        let bFile = try f.dequantize(qb), d = c.headDim
        for h in 0..<c.numHeads { for j in 0..<d / 2 { for s in 0..<2 {
            let ggufRow = h * d + 2 * j + s, hfRow = h * d + s * d / 2 + j
            XCTAssertEqual(Array(bFile[(ggufRow * r)..<((ggufRow + 1) * r)]), Array(m.b.array[(hfRow * r)..<((hfRow + 1) * r)]))
        } } }
        try pythonCheck(out, ["--adapter", "--expect-arch", "llama"])

        // Merged: the exported f32 model reads back as base + s·BA exactly as LoRAMerger merges.
        let merged = model.replacingParameters(try LoRAMerger.merge(model.parameters, config: c, adapterFolder: adapter))
        let mergedOut = temp.appendingPathComponent("merged.gguf")
        try GGUFModelExport.write(merged, to: mergedOut, options: GGUFExportOptions(type: .f32))
        let back = try HFModelFolder.read(mergedOut)
        for k in ["model.layers.7.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight"] {
            XCTAssertEqual(back.parameters[k]!.array, merged.parameters[k]!.array, k)
        }

        // DoRA cannot be a llama.cpp adapter: refused, nothing written.
        var dora = config
        dora.useDora = true
        var doraWeights = weights
        for (k, v) in doraWeights.modules { let mag = Tensor(shape: [v.outFeatures]); for i in 0..<mag.count { mag.ptr[i] = 1 }; doraWeights.modules[k]!.magnitude = mag }
        let doraFolder = temp.appendingPathComponent("dora")
        try PEFTAdapterFolder.save(.lora(dora, doraWeights), to: doraFolder)
        let doraOut = temp.appendingPathComponent("dora.gguf")
        XCTAssertThrowsError(try GGUFAdapterExport.write(adapter: doraFolder, baseModel: src, to: doraOut)) { e in
            XCTAssertTrue("\(e)".contains("DoRA"), "\(e)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: doraOut.path))
    }

    // MARK: Bad input

    /// A tiny model folder of `flavour` with SmolLM2's tokenizer (when `tokenizer`), written and read back.
    func tinyFolder(_ name: String, _ config: DecoderConfig, tokenizer: Bool, edit: (inout [String: Tensor]) -> Void = { _ in }) throws -> HFModelFolder {
        var params: [String: Tensor] = [:]
        for (n, s) in config.parameterShapes() { let t = Tensor(shape: s); for i in 0..<t.count { t.ptr[i] = Float(i % 7) * 0.01 }; params[n] = t }
        edit(&params)
        let folder = temp.appendingPathComponent(name)
        let tok = tokenizer ? try HFModelFolder.read(try realModel("smollm2")).tokenizerModel : nil
        try HFModelFolder.save(config: config, parameters: params, to: folder, generationConfig: nil, finchInfo: nil, tokenizerModel: tok)
        return try HFModelFolder.read(folder)
    }

    /// An existing file is refused without --overwrite and left as it was; a failure while writing (a NaN weight in
    /// a block type) leaves neither the file nor a temporary one behind; what llama.cpp cannot hold is refused.
    func testRefusalsLeaveNoFile() throws {
        let config = DecoderConfig(flavour: .llama, vocabSize: 49152, hiddenSize: 64, numLayers: 1, numHeads: 2, intermediateSize: 64)
        let bare = try tinyFolder("bare", config, tokenizer: false)
        let out = temp.appendingPathComponent("out.gguf")
        try Data("keep me".utf8).write(to: out)
        XCTAssertThrowsError(try GGUFModelExport.write(bare, to: out, options: GGUFExportOptions(type: .f32))) { e in
            XCTAssertTrue("\(e)".contains("exists; pass --overwrite"), "\(e)")
        }
        XCTAssertThrowsError(try GGUFModelExport.write(bare, to: out, options: GGUFExportOptions(type: .f32), overwrite: true)) { e in
            XCTAssertTrue("\(e)".contains("no tokenizer"), "\(e)")
        }
        XCTAssertEqual(try String(contentsOf: out, encoding: .utf8), "keep me")

        let nan = try tinyFolder("nan", config, tokenizer: true) { $0["model.layers.0.mlp.up_proj.weight"]!.ptr[5] = .nan }
        let nanOut = temp.appendingPathComponent("nan.gguf")
        XCTAssertThrowsError(try GGUFModelExport.write(nan, to: nanOut, options: GGUFExportOptions(type: .q8_0))) { e in
            XCTAssertTrue("\(e)".contains("blk.0.ffn_up.weight") && "\(e)".contains("nan"), "\(e)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: nanOut.path))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: temp.path).filter { $0.contains(".tmp-") }, [])
        // The same model with a finite weight and a tokenizer writes and passes gguf-py's reader.
        let ok = try tinyFolder("ok", config, tokenizer: true)
        try GGUFModelExport.write(ok, to: nanOut, options: GGUFExportOptions(type: .q4_K))
        try pythonCheck(nanOut, ["--expect-arch", "llama"])

        var gemma = DecoderConfig(flavour: .gemma3, vocabSize: 49152, hiddenSize: 64, numLayers: 1, numHeads: 2, headDim: 32, intermediateSize: 64)
        gemma.queryPreAttnScalar = 100
        let g = try tinyFolder("gemma", gemma, tokenizer: true)
        XCTAssertThrowsError(try GGUFModelExport.write(g, to: temp.appendingPathComponent("g.gguf"), options: GGUFExportOptions(type: .f32))) { e in
            XCTAssertTrue("\(e)".contains("query_pre_attn_scalar"), "\(e)")
        }
    }

    /// GPT-2 (llama.cpp's gpt2: fused attn_qkv, Conv1D weights transposed to [out, in], LayerNorm biases) out and back in.
    func testGPT2RoundTrip() throws {
        let config = DecoderConfig(flavour: .gpt2, vocabSize: 49152, hiddenSize: 64, numLayers: 2, numHeads: 4, maxPositions: 128)
        let model = try tinyFolder("gpt2", config, tokenizer: true) { params in
            var seed: UInt32 = 3
            for (_, t) in params { for i in 0..<t.count { seed = seed &* 1_664_525 &+ 1_013_904_223; t.ptr[i] = Float(Int32(bitPattern: seed)) / 4e10 } }
        }
        let out = temp.appendingPathComponent("gpt2.gguf")
        try GGUFModelExport.write(model, to: out, options: GGUFExportOptions(type: .f32))
        let f = try GGUFFile(contentsOf: out)
        XCTAssertEqual(f.tensor(named: "blk.0.attn_qkv.weight")?.shape, [64, 192])
        XCTAssertEqual(f.tensor(named: "position_embd.weight")?.shape, [64, 128])
        let back = try HFModelFolder.read(out)
        XCTAssertEqual(back.config.flavour, .gpt2)
        for (k, t) in model.parameters { XCTAssertEqual(back.parameters[k]?.array, t.array, k) }
        let ids = [1, 2, 3, 500, 40000]
        XCTAssertEqual(try logits(back, ids: ids), try logits(model, ids: ids))
        try pythonCheck(out, ["--expect-arch", "gpt2"])
    }
}
