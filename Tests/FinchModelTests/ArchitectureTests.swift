import XCTest
import Foundation
import FinchKernels
import FinchModel

/// The newer decoder architectures (Qwen2, Qwen3, Llama with Llama 3 RoPE scaling, Gemma 3 text) against
/// transformers: logits, HF causal-LM loss, the gradient of every parameter, greedy KV-cached generation
/// (ids exactly, step logits), KV-cached step logits against full-forward logits, LoRA hooks, HF export.
///
/// Vectors: `python3 tools/vectors/arch_vectors.py` writes them to
/// `${FINCH_TEST_ASSETS:-~/.cache/finch/test-assets}/arch_vectors/<case>/` (see that script).
final class ArchitectureTests: XCTestCase {
    static let caseNames = ["qwen2", "qwen3", "llama3-rope", "llama-bias", "gemma3"]

    static var root: URL {
        let env = ProcessInfo.processInfo.environment["FINCH_TEST_ASSETS"]
        let base = env.flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/finch/test-assets")
        return base.appendingPathComponent("arch_vectors")
    }

    struct ArchCase {
        let name: String
        let folder: URL
        let json: [String: Any]
        let expected: SafeTensors.File
        var inputs: [String: Any] { json["inputs"] as? [String: Any] ?? [:] }
        var expectedScalars: [String: Any] { json["expected"] as? [String: Any] ?? [:] }
        func tensor(_ name: String) throws -> Tensor { try expected.tensor(name) }
    }

    func loadCase(_ name: String) throws -> ArchCase {
        let folder = Self.root.appendingPathComponent(name)
        let caseURL = folder.appendingPathComponent("case.json")
        guard FileManager.default.fileExists(atPath: caseURL.path) else {
            let message = "architecture vectors missing at \(folder.path): run `python3 tools/vectors/arch_vectors.py` (needs torch and transformers)"
            XCTFail(message)
            throw ModelFileError(message)
        }
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: caseURL)) as! [String: Any]
        return ArchCase(name: name, folder: folder, json: json,
                        expected: try SafeTensors.File(url: folder.appendingPathComponent("expected.safetensors")))
    }

    static func ints2D(_ v: Any?) -> [[Int]] { (v as? [[Any]] ?? []).map { $0.map { ($0 as? NSNumber)?.intValue ?? 0 } } }
    static func ints(_ v: Any?) -> [Int] { (v as? [Any] ?? []).map { ($0 as? NSNumber)?.intValue ?? 0 } }

    /// Element-wise `|a − e| ≤ abs + rel·|e|` over `indices` (all when nil); returns the worst tolerance use.
    @discardableResult
    func compare(_ label: String, _ actual: UnsafePointer<Float>, _ expected: UnsafePointer<Float>, count: Int,
                 abs: Float, rel: Float, indices: [Int]? = nil, file: StaticString = #filePath, line: UInt = #line) -> (use: Float, maxAbs: Float) {
        var worst: Float = 0, worstIdx = -1, maxAbs: Float = 0
        for i in indices ?? Array(0..<count) {
            let d = Swift.abs(actual[i] - expected[i])
            let use = d / (abs + rel * Swift.abs(expected[i]))
            maxAbs = max(maxAbs, d)
            if !(use <= worst) { worst = use; worstIdx = i }   // NaN counts as worst
        }
        XCTAssert(worst <= 1, "\(label): element \(worstIdx) = \(worstIdx >= 0 ? actual[worstIdx] : 0), expected \(worstIdx >= 0 ? expected[worstIdx] : 0) (uses \(worst * 100)% of the tolerance)",
                  file: file, line: line)
        return (worst, maxAbs)
    }

    func decoder(_ c: ArchCase) throws -> Decoder {
        let (config, params) = try HFModelFolder.load(c.folder)
        return try Decoder(config: config, parameters: params)
    }

    // MARK: forward, loss, gradients, generation

    func testQwen2() throws { try runCase("qwen2") { XCTAssertEqual($0.flavour, .qwen2); XCTAssertTrue($0.tieWordEmbeddings); XCTAssertTrue($0.qkvBias); XCTAssertFalse($0.outputBias) } }
    func testQwen3() throws { try runCase("qwen3") { XCTAssertEqual($0.flavour, .qwen3); XCTAssertTrue($0.qkNorm); XCTAssertNotEqual($0.headDim, $0.hiddenSize / $0.numHeads) } }
    func testLlama3RopeScaling() throws { try runCase("llama3-rope") { XCTAssertEqual($0.flavour, .llama); XCTAssertEqual($0.ropeScaling?.type, "llama3") } }
    func testLlamaBiases() throws { try runCase("llama-bias") { XCTAssertEqual($0.flavour, .llama); XCTAssertTrue($0.qkvBias && $0.outputBias && $0.gatedMLPBias) } }
    func testGemma3() throws {
        try runCase("gemma3") {
            XCTAssertEqual($0.flavour, .gemma3)
            XCTAssertNotNil($0.slidingWindow)
            let sliding = (0..<$0.numLayers).map($0.isSlidingLayer)
            XCTAssert(sliding.contains(true) && sliding.contains(false), "both layer kinds must occur: \(sliding)")
            XCTAssertEqual($0.ropeScaling?.type, "linear")
        }
    }

    func runCase(_ name: String, checkConfig: (DecoderConfig) -> Void) throws {
        let c = try loadCase(name)
        let d = try decoder(c)
        checkConfig(d.config)
        let ids2D = Self.ints2D(c.inputs["input_ids"]), mask2D = Self.ints2D(c.inputs["attention_mask"])
        let B = ids2D.count, T = ids2D[0].count, V = d.config.vocabSize
        let ids = ids2D.flatMap { $0 }, mask = mask2D.flatMap { $0 }, labels = Self.ints2D(c.inputs["labels"]).flatMap { $0 }

        // Logits at real positions (a left-pad query sees no key: HF averages masked keys there, Finch gives 0).
        d.forwardHidden(ids: ids, batch: B, length: T, attentionMask: mask)
        let logits = d.lmHead()
        let realIdx = (0..<(B * T)).filter { mask[$0] != 0 }.flatMap { n in (n * V)..<((n + 1) * V) }
        let expLogits = try c.tensor("logits")
        let lr = withExtendedLifetime(expLogits) {
            compare("\(name) logits", logits.ptr, expLogits.ptr, count: logits.count, abs: 2e-4, rel: 2e-4, indices: realIdx)
        }

        let loss = d.causalLMLoss(labels: labels)
        let expLoss = Float((c.expectedScalars["loss"] as! NSNumber).doubleValue)
        XCTAssertLessThanOrEqual(abs(loss.loss - expLoss), 1e-5 + 1e-5 * abs(expLoss), "\(name) loss \(loss.loss) vs \(expLoss)")

        d.backward()
        var worstGrad: Float = 0, worstGradName = ""
        let gradNames = c.expected.entries.keys.filter { $0.hasPrefix("grad.") }.sorted()
        XCTAssertEqual(Set(gradNames.map { String($0.dropFirst(5)) }), Set(d.config.parameterShapes().map { $0.name }),
                       "\(name): the reference has gradients for exactly Finch's parameters")
        for g in gradNames {
            let pname = String(g.dropFirst(5))
            guard let actual = d.gradients[pname] else { XCTFail("\(name): no gradient for \(pname)"); continue }
            let e = try c.tensor(g)
            XCTAssertEqual(actual.shape, e.shape, "\(name) \(g) shape")
            let r = withExtendedLifetime(e) { compare("\(name) \(g)", actual.ptr, e.ptr, count: e.count, abs: 2e-5, rel: 1e-3) }
            if r.use > worstGrad { worstGrad = r.use; worstGradName = g }
        }

        // Greedy generation with the KV cache: prefill logits, step logits, ids exactly.
        let prompt = Self.ints(c.inputs["generate_prompt"])
        let newTokens = (c.inputs["max_new_tokens"] as! NSNumber).intValue
        let expectedIds = Self.ints(c.expectedScalars["generated_ids"])
        let cache = KVCache(config: d.config, batch: 1, maxLength: prompt.count + newTokens)
        let prefill = d.prefill(prompt, cache: cache, allPositions: true)
        let expPrefill = try c.tensor("prefill_logits")
        let pr = withExtendedLifetime(expPrefill) {
            compare("\(name) prefill_logits", prefill.ptr, expPrefill.ptr, count: prefill.count, abs: 2e-4, rel: 2e-4)
        }
        let expSteps = try c.tensor("step_logits")
        var stepLogits: [[Float]] = [Array(UnsafeBufferPointer(start: prefill.ptr + (prompt.count - 1) * V, count: V))]
        var generated: [Int] = []
        var sr: Float = 0
        for s in 0..<newTokens {
            let row = stepLogits[s]
            let r = withExtendedLifetime(expSteps) {
                row.withUnsafeBufferPointer { compare("\(name) step_logits[\(s)]", $0.baseAddress!, expSteps.ptr + s * V, count: V, abs: 2e-4, rel: 2e-4) }
            }
            sr = max(sr, r.use)
            let token = row.indices.max { row[$0] < row[$1] }!
            generated.append(token)
            if s + 1 < newTokens {
                let next = d.step([token], cache: cache)
                stepLogits.append(Array(UnsafeBufferPointer(start: next.ptr, count: V)))
            }
        }
        XCTAssertEqual(generated, expectedIds, "\(name): greedy ids")

        // KV-cached step logits equal the full forward over prompt + generated tokens.
        let full = prompt + generated.dropLast()
        let fullLogits = d.forward(ids: full, batch: 1, length: full.count)
        var kvWorst: Float = 0
        for s in 0..<newTokens {
            let pos = prompt.count - 1 + s
            let r = stepLogits[s].withUnsafeBufferPointer {
                compare("\(name) cached vs full forward at \(pos)", $0.baseAddress!, fullLogits.ptr + pos * V, count: V, abs: 1e-4, rel: 1e-4)
            }
            kvWorst = max(kvWorst, r.maxAbs)
        }
        print(String(format: "arch %@: logits max|Δ| %.2e (%.0f%% of tol), loss %.7f vs %.7f, worst grad %@ %.0f%% of tol, prefill %.0f%%, steps %.0f%%, cached-vs-full max|Δ| %.2e, ids %@",
                     name, lr.maxAbs, lr.use * 100, loss.loss, expLoss, worstGradName, worstGrad * 100, pr.use * 100, sr * 100, kvWorst,
                     generated == expectedIds ? "equal" : "DIFFER"))
    }

    /// The reference cases exercise each new feature: switching it off moves the logits far outside the tolerance.
    func testFeaturesMatter() throws {
        func maxDiff(_ name: String, _ change: (inout DecoderConfig) -> Void) throws -> Float {
            let c = try loadCase(name)
            var (config, params) = try HFModelFolder.load(c.folder)
            change(&config)
            let d = try Decoder(config: config, parameters: params)
            let ids2D = Self.ints2D(c.inputs["input_ids"]), mask = Self.ints2D(c.inputs["attention_mask"]).flatMap { $0 }
            let B = ids2D.count, T = ids2D[0].count, V = config.vocabSize
            let logits = d.forward(ids: ids2D.flatMap { $0 }, batch: B, length: T, attentionMask: mask)
            let e = try c.tensor("logits")
            var worst: Float = 0
            for n in 0..<(B * T) where mask[n] != 0 { for v in 0..<V { worst = max(worst, abs(logits[n * V + v] - e[n * V + v])) } }
            return worst
        }
        let checks: [(String, String, (inout DecoderConfig) -> Void)] = [
            ("gemma3", "sliding window", { $0.slidingWindow = nil }),
            ("gemma3", "local RoPE base", { $0.localRopeTheta = nil }),
            ("gemma3", "query_pre_attn_scalar", { $0.queryPreAttnScalar = nil }),
            ("gemma3", "linear RoPE scaling", { $0.ropeScaling = nil }),
            ("llama3-rope", "llama3 RoPE scaling", { $0.ropeScaling = nil }),
        ]
        for (name, feature, change) in checks {
            XCTAssertEqual(try maxDiff(name, { _ in }), 0, accuracy: 1e-3, "\(name) baseline")
            let d = try maxDiff(name, change)
            XCTAssertGreaterThan(d, 1e-2, "\(name): without the \(feature) the logits should differ clearly (max |Δ| \(d))")
        }
    }

    // MARK: PEFT

    /// LoRA on q_proj / v_proj of every new architecture: forward/backward run, gradients finite and non-zero,
    /// a non-zero adapter changes the logits, base weights get no gradient.
    func testLoRAOnNewArchitectures() throws {
        for name in Self.caseNames {
            let c = try loadCase(name)
            let d = try decoder(c)
            let lora = try LoRAModule(config: LoRAAdapterConfig(r: 4, loraAlpha: 8, targetModules: ["q_proj", "v_proj"]), decoder: d, seed: 7)
            XCTAssertEqual(lora.modules.count, 2 * d.config.numLayers, name)
            var rng = SeededRNG(seed: 11)
            for m in lora.modules.values { for i in 0..<m.b.count { m.b[i] = rng.weightNormal() * 0.1 } }
            let ids2D = Self.ints2D(c.inputs["input_ids"])
            let B = ids2D.count, T = ids2D[0].count
            let ids = ids2D.flatMap { $0 }, mask = Self.ints2D(c.inputs["attention_mask"]).flatMap { $0 }
            let labels = Self.ints2D(c.inputs["labels"]).flatMap { $0 }
            let base = d.forward(ids: ids, batch: B, length: T, attentionMask: mask).array
            lora.attach(to: d)
            d.forwardHidden(ids: ids, batch: B, length: T, attentionMask: mask)
            let adapted = d.lmHead().array
            let loss = d.causalLMLoss(labels: labels)
            XCTAssert(loss.loss.isFinite, name)
            d.backward()
            let diff = zip(base, adapted).map { abs($0 - $1) }.max() ?? 0
            XCTAssertGreaterThan(diff, 1e-4, "\(name): a non-zero LoRA must change the logits")
            XCTAssertEqual(lora.gradients.count, 4 * d.config.numLayers, name)
            for (k, g) in lora.gradients {
                let a = g.array
                XCTAssert(a.allSatisfy { $0.isFinite }, "\(name) \(k): non-finite gradient")
                XCTAssert(a.contains { $0 != 0 }, "\(name) \(k): zero gradient")
            }
            XCTAssert(d.gradients.isEmpty || d.gradients.values.allSatisfy { !$0.array.contains { $0 != 0 } },
                      "\(name): frozen base weights must get no gradient")
        }
    }

    /// Prefix and prompt tuning on every new architecture: gradients finite and non-zero, and a prefix in the
    /// KV cache gives the same logits as the training forward with the prefix (sliding windows included).
    func testPrefixAndPromptTuningOnNewArchitectures() throws {
        for name in Self.caseNames {
            let c = try loadCase(name)
            let d = try decoder(c)
            let cfg = d.config, P = 3, V = cfg.vocabSize
            let ids = Self.ints2D(c.inputs["input_ids"])[0], T = ids.count
            var rng = SeededRNG(seed: 5)
            func randomTensor(_ shape: [Int]) -> Tensor {
                Tensor(shape: shape, values: (0..<shape.reduce(1, *)).map { _ in rng.weightNormal() * 0.5 })
            }
            d.trainable = []
            // Prefix tuning.
            let prefix = PrefixKeyValues(keys: (0..<cfg.numLayers).map { _ in randomTensor([P, cfg.kvDim]) },
                                         values: (0..<cfg.numLayers).map { _ in randomTensor([P, cfg.kvDim]) })
            d.prefix = prefix
            d.forwardHidden(ids: ids, batch: 1, length: T)
            let logits = d.lmHead().array
            _ = d.causalLMLoss(labels: ids)
            d.backward()
            for g in prefix.keyGradients + prefix.valueGradients {
                XCTAssert(g.array.allSatisfy { $0.isFinite } && g.array.contains { $0 != 0 }, "\(name): prefix gradient")
            }
            let cache = KVCache(config: cfg, batch: 1, maxLength: P + T)
            cache.loadPrefix(prefix)
            let cached = d.prefill(ids, cache: cache, allPositions: true)
            withExtendedLifetime(cached) {
                logits.withUnsafeBufferPointer {
                    _ = compare("\(name) prefix: cached vs training forward", cached.ptr, $0.baseAddress!, count: T * V, abs: 1e-4, rel: 1e-4)
                }
            }
            d.prefix = nil
            // Prompt tuning.
            let prompt = randomTensor([P, cfg.hiddenSize])
            d.forwardHidden(ids: ids, batch: 1, length: T, prependEmbeddings: prompt)
            d.lmHead()
            _ = d.causalLMLoss(labels: [Int](repeating: -100, count: P) + ids)
            d.backward()
            let g = d.promptEmbeddingGradient?.array ?? []
            XCTAssert(g.count == P * cfg.hiddenSize && g.allSatisfy { $0.isFinite } && g.contains { $0 != 0 }, "\(name): prompt gradient")
        }
    }

    // MARK: export

    /// HFExport writes a folder that Finch reads back to the same configuration and weights, with the
    /// model_type / architecture transformers expects.
    func testExportRoundTrip() throws {
        for name in Self.caseNames {
            let c = try loadCase(name)
            let (config, params) = try HFModelFolder.load(c.folder)
            // FINCH_ARCH_EXPORT_DIR=<dir> keeps the exported folders (<dir>/<case>) for `tools/vectors/arch_vectors.py --check-export <dir>`.
            let keep = ProcessInfo.processInfo.environment["FINCH_ARCH_EXPORT_DIR"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            let dir = keep?.appendingPathComponent(name)
                ?? FileManager.default.temporaryDirectory.appendingPathComponent("finch-arch-export-\(name)-\(getpid())")
            defer { if keep == nil { try? FileManager.default.removeItem(at: dir) } }
            try HFModelFolder.save(config: config, parameters: params, to: dir)
            let (again, params2) = try HFModelFolder.load(dir)
            XCTAssertEqual(again, config, "\(name): config round trip")
            XCTAssertEqual(Set(params2.keys), Set(params.keys), name)
            for (k, t) in params { XCTAssertEqual(params2[k]?.array, t.array, "\(name) \(k)") }
            let written = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("config.json"))) as! [String: Any]
            let original = try JSONSerialization.jsonObject(with: Data(contentsOf: c.folder.appendingPathComponent("config.json"))) as! [String: Any]
            XCTAssertEqual(written["model_type"] as? String, original["model_type"] as? String, name)
            XCTAssertEqual(written["architectures"] as? [String], original["architectures"] as? [String], name)
        }
    }
}
