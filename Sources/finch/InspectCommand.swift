import ArgumentParser
import Foundation
import FinchModel
import FinchGGUF

/// `finch inspect MODEL_DIR`: what a model folder holds, from config.json and the safetensors headers only.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Describe a model folder or GGUF file (architecture, shapes, parameter count, dtype).",
        discussion: "Example: finch inspect runs/sft/best; finch inspect SmolLM2-135M-Instruct.Q4_1.gguf")

    @Argument(help: "Model folder (config.json + model.safetensors or a sharded index) or .gguf file.") var model: String

    func run() throws {
        let url = URL(fileURLWithPath: model)
        if HFModelFolder.isGGUF(url) { return try inspectGGUF(url) }
        let fm = FileManager.default
        if fm.fileExists(atPath: url.appendingPathComponent(PEFTAdapterFolder.configFile).path),
           !fm.fileExists(atPath: url.appendingPathComponent(HFModelFolder.configFile).path) {
            return try inspectAdapter(url)
        }
        let s = try HFModelSummary.inspect(url)
        let c = s.config
        func line(_ k: String, _ v: String) { print(k.padding(toLength: 20, withPad: " ", startingAt: 0) + v) }
        line("folder", url.path)
        line("architecture", s.architecture)
        line("flavour", c.flavour.rawValue + (s.finchInfo == nil ? "" : " (finch.json format \(s.finchInfo!.formatVersion))"))
        if let t = s.finchInfo?.chatTemplate { line("chat template", t) }
        line("layers", "\(c.numLayers)")
        line("hidden", "\(c.hiddenSize)  (intermediate \(c.intermediateSize))")
        line("heads", "\(c.numHeads) query, \(c.numKVHeads) key/value, head_dim \(c.headDim)")
        line("vocabulary", "\(c.vocabSize)")
        line("positions", "\(c.maxPositions)" + (c.flavour.usesRoPE ? "  (RoPE theta \(c.ropeTheta))" : "  (learned)"))
        line("norm eps", "\(c.normEps)")
        line("head", c.numLabels.map { "score, \($0) label(s)" } ?? (c.tieWordEmbeddings ? "tied to the embedding" : "separate lm_head"))
        let ids = [("bos", c.bosTokenId), ("eos", c.eosTokenId), ("pad", c.padTokenId)]
            .map { "\($0.0) \($0.1.map(String.init) ?? "-")" }.joined(separator: ", ")
        line("special ids", ids + ((c.eosTokenIds?.count ?? 0) > 1 ? "  (all eos: \(c.eosTokenIds!))" : ""))
        line("parameters", "\(c.parameterCount) (\(String(format: "%.2f", Double(c.parameterCount) / 1e6)) M)")
        let dtypes = s.dtypeCounts.keys.sorted().map { "\($0) ×\(s.dtypeCounts[$0]!)" }.joined(separator: ", ")
        line("stored dtype", dtypes + String(format: "  (%.1f MB in %d file(s))", Double(s.weightBytes) / 1e6, s.weightFiles.count))
        line("tokenizer.model", s.hasTokenizer ? "present" : "absent")
        line("generation config", s.generationConfig == nil ? "absent" : "present")
        print("\nshapes:")
        // Block 0 stands for every block (shown as N).
        for (name, shape) in c.parameterShapes() {
            var parts = name.split(separator: ".").map(String.init)
            if let i = parts.firstIndex(where: { Int($0) != nil }) {
                guard parts[i] == "0" else { continue }
                parts[i] = "N"
            }
            print("  " + parts.joined(separator: ".").padding(toLength: 48, withPad: " ", startingAt: 0) + "\(shape)")
        }
        if let p = s.problem {
            print("\nPROBLEM: \(p)")
            throw ExitCode.failure
        }
    }

    /// A PEFT adapter folder: its type, base and settings from adapter_config.json, its tensors from the header.
    func inspectAdapter(_ url: URL) throws {
        func line(_ k: String, _ v: String) { print(k.padding(toLength: 20, withPad: " ", startingAt: 0) + v) }
        func show(_ v: JSONValue) -> String {
            switch v {
            case .string(let s): return s
            case .array(let a): return a.map(show).joined(separator: ", ")
            default: return v.text().trimmingCharacters(in: .whitespacesAndNewlines)
            }
        }
        let config = try JSONValue.read(url.appendingPathComponent(PEFTAdapterFolder.configFile))
        _ = try PEFTAdapterFolder.peftType(of: url)
        let weights = try SafeTensors.File(url: url.appendingPathComponent(PEFTAdapterFolder.weightsFile))
        line("adapter folder", url.path)
        line("peft type", (config["peft_type"]?.string ?? "?") + (config["use_dora"]?.bool == true ? " (DoRA)" : ""))
        line("base model", config["base_model_name_or_path"]?.string ?? "(not named)")
        for key in ["r", "lora_alpha", "lora_dropout", "use_rslora", "num_virtual_tokens", "adapter_size", "placement", "nonlinearity"] {
            guard let v = config[key], v != .null else { continue }
            line(key.replacingOccurrences(of: "_", with: " "), show(v))
        }
        if let t = config["target_modules"], t != .null { line("target modules", show(t)) }
        let count = weights.entries.values.reduce(0) { $0 + $1.shape.reduce(1, *) }
        let dtypes = Set(weights.entries.values.map(\.dtype)).sorted().joined(separator: ", ")
        line("parameters", "\(count) in \(weights.entries.count) tensors (\(dtypes))")
        print("\nmerge into its base with: finch merge --model BASE --adapter \(url.path)   (LoRA/DoRA only)")
    }

    /// A GGUF file: its header and metadata (no tensor decoded), and the decoder configuration Finch reads from it.
    func inspectGGUF(_ url: URL) throws {
        let file = try GGUFFile(contentsOf: url)
        func line(_ k: String, _ v: String) { print(k.padding(toLength: 20, withPad: " ", startingAt: 0) + v) }
        line("file", url.path + "  (GGUF v\(file.version), \(file.metadataKeys.count) keys, \(file.tensors.count) tensors)")
        for key in file.metadataKeys {
            guard let v = file.metadata[key] else { continue }
            let shown: String
            if let a = v.array { shown = "[\(a.count) values]" }
            else if let t = v.string { shown = t.count > 80 ? String(t.prefix(77)).debugDescription + "…" : t.debugDescription }
            else if let d = v.double, v.int == nil { shown = "\(d)" }
            else { shown = v.int.map(String.init) ?? v.bool.map { "\($0)" } ?? "\(v)" }
            print("  \(key) = \(shown)")
        }
        var counts: [String: (n: Int, bytes: Int)] = [:]
        for t in file.tensors { counts[t.type.name, default: (0, 0)].n += 1; counts[t.type.name]!.bytes += t.byteCount }
        line("tensor types", counts.keys.sorted().map { "\($0) ×\(counts[$0]!.n)" }.joined(separator: ", ")
             + String(format: "  (%.1f MB)", Double(counts.values.reduce(0) { $0 + $1.bytes }) / 1e6))
        do {
            let c = try GGUFModelImport.config(of: url)
            line("finch reads it as", "\(c.flavour.rawValue): \(c.numLayers) layers, hidden \(c.hiddenSize), heads \(c.numHeads)/\(c.numKVHeads), head_dim \(c.headDim), vocabulary \(c.vocabSize), \(c.parameterCount) parameters")
        } catch {
            line("finch reads it as", "not readable: \(error)")
        }
    }
}
