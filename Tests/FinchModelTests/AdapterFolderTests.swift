import XCTest
import FinchKernels
import FinchModel
import FinchConformance

final class AdapterFolderTests: XCTestCase {
    /// Conformance case folders holding a PEFT adapter (`adapter/adapter_config.json`), discovered from the folder.
    private func conformanceAdapters() -> [(caseFolder: URL, adapter: URL)] {
        let root = Conformance.root
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        return names.sorted().map { root.appendingPathComponent($0) }
            .map { ($0, $0.appendingPathComponent("adapter")) }
            .filter { FileManager.default.fileExists(atPath: $0.1.appendingPathComponent("adapter_config.json").path) }
    }

    /// Every conformance adapter loads with the shapes its config gives, fits its base model, and re-saves
    /// to identical tensors and an equivalent adapter_config.json.
    func testConformanceAdaptersRoundTrip() throws {
        let adapters = conformanceAdapters()
        if adapters.isEmpty { print("AdapterFolderTests: no conformance adapter folder"); return }
        for (caseFolder, folder) in adapters {
            let name = caseFolder.lastPathComponent
            let adapter = try PEFTAdapterFolder.load(folder)
            let base = try HFConfig.load(caseFolder.appendingPathComponent("config.json"))
            let raw = try JSONValue.read(folder.appendingPathComponent("adapter_config.json"))
            switch adapter {
            case .lora(let c, let w):
                XCTAssertEqual(c.r, raw["r"]?.int)
                XCTAssertEqual(c.loraAlpha, raw["lora_alpha"]?.double)
                try w.validate(against: base)
                // Every selected module of the base model has an adapter, and nothing else.
                XCTAssertEqual(Set(w.modules.keys), Set(c.targetModulePaths(for: base)), name)
                for (path, m) in w.modules { XCTAssertEqual(m.scale, c.scale(for: path)); XCTAssertEqual(m.rank, c.r) }
            case .promptTuning(let c, let t), .prefixTuning(let c, let t):
                XCTAssertEqual(c.kind.rawValue, raw["peft_type"]?.string)
                XCTAssertEqual(t.shape, c.promptEmbeddingsShape)
                XCTAssertEqual(c.numVirtualTokens, raw["num_virtual_tokens"]?.int)
                if c.kind == .promptTuning { XCTAssertEqual(c.tokenDim, base.hiddenSize) }
                else { XCTAssertEqual(c.tokenDim, base.kvDim); XCTAssertEqual(c.numLayers, base.numLayers) }
            }
            let out = hfTemporaryFolder(self)
            try PEFTAdapterFolder.save(adapter, to: out)
            let ours = try JSONValue.read(out.appendingPathComponent("adapter_config.json"))
            XCTAssertEqual(ours, raw, "\(name): adapter_config.json differs:\n\(ours.text())")
            let theirs = try SafeTensors.File(url: folder.appendingPathComponent("adapter_model.safetensors"))
            let mine = try SafeTensors.File(url: out.appendingPathComponent("adapter_model.safetensors"))
            XCTAssertEqual(mine.names, theirs.names, name)
            for t in theirs.names {
                XCTAssertEqual(mine.entries[t]?.shape, theirs.entries[t]?.shape, t)
                XCTAssertEqual(try mine.bytes(t), try theirs.bytes(t), "\(name): \(t)")
            }
            print("AdapterFolderTests: \(name) adapter round trip ok (\(theirs.names.count) tensors)")
        }
    }

    /// A new DoRA adapter with rsLoRA and a rank pattern: PEFT's keys, every PEFT config key, scales, reload.
    func testNewLoRAAdapterWithDoRA() throws {
        let base = hfTinyConfig(.llama)
        var c = LoRAAdapterConfig(r: 4, loraAlpha: 16, loraDropout: 0.05, targetModules: ["v_proj", "q_proj"],
                                  useRslora: true, useDora: true, baseModelNameOrPath: "base")
        c.rankPattern = ["model.layers.1.self_attn.q_proj": 2]
        var w = LoRAAdapterWeights()
        for path in c.targetModulePaths(for: base) {
            let r = c.rank(for: path)
            let out = path.hasSuffix("q_proj") ? base.qDim : base.kvDim
            let a = Tensor(shape: [r, base.hiddenSize], values: (0..<(r * base.hiddenSize)).map { Float($0) / 10 })
            let b = Tensor(shape: [out, r], values: (0..<(out * r)).map { -Float($0) })
            w.modules[path] = LoRAModuleWeights(a: a, b: b, scale: c.scale(for: path), magnitude: Tensor(shape: [out]))
        }
        XCTAssertEqual(w.modules.count, 2 * base.numLayers)
        try w.validate(against: base)
        let dir = hfTemporaryFolder(self)
        try PEFTAdapterFolder.save(.lora(c, w), to: dir)
        let file = try SafeTensors.File(url: dir.appendingPathComponent("adapter_model.safetensors"))
        XCTAssertNotNil(file.entries["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"])
        XCTAssertNotNil(file.entries["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"])
        XCTAssertNotNil(file.entries["base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector"])
        let json = try JSONValue.read(dir.appendingPathComponent("adapter_config.json"))
        XCTAssertEqual(json["target_modules"], .array([.string("q_proj"), .string("v_proj")]))
        XCTAssertEqual(json["lora_alpha"], .int(16))
        XCTAssertEqual(json["use_rslora"], .bool(true))
        // Same key set as PEFT writes (the conformance LoRA file, when present).
        if let lora = conformanceAdapters().first(where: { (try? JSONValue.read($0.adapter.appendingPathComponent("adapter_config.json")))?["peft_type"] == .string("LORA") }) {
            let peftKeys = Set(try JSONValue.read(lora.adapter.appendingPathComponent("adapter_config.json")).object!.keys)
            XCTAssertEqual(Set(json.object!.keys), peftKeys)
        }
        let (c2, w2) = try PEFTAdapterFolder.loadLoRA(dir)
        XCTAssertEqual(c2, c)
        XCTAssertEqual(w2.modules["model.layers.1.self_attn.q_proj"]?.rank, 2)
        XCTAssertEqual(w2.modules["model.layers.1.self_attn.q_proj"]!.scale, Float(16 / 2.0.squareRoot()))
        XCTAssertEqual(w2.modules["model.layers.0.self_attn.v_proj"]!.scale, 8)
        for (path, m) in w.modules { XCTAssertEqual(w2.modules[path]?.b.array, m.b.array) }
    }

    /// Prompt and prefix tuning adapters written from scratch carry PEFT's keys and reload.
    func testNewPromptAndPrefixAdapters() throws {
        let base = hfTinyConfig(.llama)
        let prompt = PromptLearningConfig(kind: .promptTuning, numVirtualTokens: 3, tokenDim: base.hiddenSize,
                                          numLayers: base.numLayers, numAttentionHeads: base.numHeads)
        let prefix = PromptLearningConfig(kind: .prefixTuning, numVirtualTokens: 2, tokenDim: base.kvDim,
                                          numLayers: base.numLayers, numAttentionHeads: base.numKVHeads)
        XCTAssertEqual(prefix.promptEmbeddingsShape, [2, base.numLayers * 2 * base.kvDim])
        for (config, adapterKind) in [(prompt, "llama-prompt-tuning"), (prefix, "llama-prefix-tuning")] {
            let t = Tensor(shape: config.promptEmbeddingsShape, values: (0..<config.promptEmbeddingsShape.reduce(1, *)).map { Float($0) })
            let dir = hfTemporaryFolder(self)
            try PEFTAdapterFolder.save(config.kind == .promptTuning ? .promptTuning(config, promptEmbeddings: t)
                                                                     : .prefixTuning(config, promptEmbeddings: t), to: dir)
            let json = try JSONValue.read(dir.appendingPathComponent("adapter_config.json"))
            let peft = Conformance.root.appendingPathComponent(adapterKind).appendingPathComponent("adapter/adapter_config.json")
            if let theirs = try? JSONValue.read(peft) { XCTAssertEqual(Set(json.object!.keys), Set(theirs.object!.keys), adapterKind) }
            switch try PEFTAdapterFolder.load(dir) {
            case .promptTuning(let c, let back), .prefixTuning(let c, let back):
                XCTAssertEqual(c, config); XCTAssertEqual(back.array, t.array)
            case .lora: XCTFail("loaded as LoRA")
            }
        }
        // A table of the wrong width is refused with both shapes.
        XCTAssertThrowsError(try PEFTAdapterFolder.save(.prefixTuning(prefix, promptEmbeddings: Tensor(shape: [2, 5])), to: hfTemporaryFolder(self))) {
            XCTAssert("\($0)".contains("[2, 5]") && "\($0)".contains("[2, \(base.numLayers * 2 * base.kvDim)]"), "\($0)")
        }
    }

    /// A LoRA file whose B does not have rank r is refused, naming the module.
    func testLoRARankMismatch() throws {
        let dir = hfTemporaryFolder(self)
        let c = LoRAAdapterConfig(r: 2, loraAlpha: 4, targetModules: ["q_proj"])
        var w = LoRAAdapterWeights()
        w.modules["model.layers.0.self_attn.q_proj"] = LoRAModuleWeights(a: Tensor(shape: [2, 8]), b: Tensor(shape: [8, 2]), scale: 2)
        try PEFTAdapterFolder.save(.lora(c, w), to: dir)
        var bad = w.peftTensors()
        bad["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"] = Tensor(shape: [8, 3])
        try SafeTensors.write(bad, to: dir.appendingPathComponent("adapter_model.safetensors"))
        XCTAssertThrowsError(try PEFTAdapterFolder.load(dir)) {
            XCTAssert("\($0)".contains("model.layers.0.self_attn.q_proj") && "\($0)".contains("[8, 3]"), "\($0)")
        }
    }
}
