import ArgumentParser
import Foundation
import FinchGGUF
import FinchModel

/// `finch export`: `hf` (the default, so `finch export --model DIR --out DIR` works as it always has) re-writes a model
/// folder in Hugging Face format; `gguf` writes a model, or a LoRA adapter, as a GGUF file llama.cpp and Ollama load.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a model as a Hugging Face folder (hf, the default) or a GGUF file for llama.cpp / Ollama (gguf).",
        discussion: """
        Examples:
          finch export --model runs/sft/best --out exported/                       (same as: finch export hf …)
          finch export gguf --model runs/sft/final/merged --type q8_0 --out smol-tuned.q8_0.gguf
          finch export gguf --model base.gguf --adapter runs/sft/final --type f16 --out tuned.f16.gguf
          finch export gguf --adapter runs/sft/final --out adapter.gguf             (llama.cpp's LoRA adapter format)
        """,
        subcommands: [ExportHFCommand.self, ExportGGUFCommand.self],
        defaultSubcommand: ExportHFCommand.self)
}

/// `finch export hf --model DIR --out DIR`: re-writes a model folder in Hugging Face format (float32 safetensors,
/// sharded when large), loadable by transformers' `from_pretrained`.
struct ExportHFCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hf",
        abstract: "Write a model folder in Hugging Face format (config.json, safetensors, generation config).",
        discussion: "Example: finch export --model runs/sft/best --out exported/ --shard-size 2048")

    @Option(help: "Model folder to read (Hugging Face or Finch).") var model: String
    @Option(help: "Folder to write.") var out: String
    @Option(help: "Largest weight file in MB (MiB); larger models are sharded with an index.") var shardSize: Int = 2048

    /// Files beside the weights that describe the tokenizer or chat format; copied when present.
    static let companionFiles = LoRAMerger.companionFiles

    func validate() throws {
        guard shardSize >= 1 else { throw ValidationError("--shard-size must be at least 1 MB") }
    }

    func run() throws {
        let source = try HFModelFolder.read(URL(fileURLWithPath: model))
        let outURL = URL(fileURLWithPath: out)
        try HFModelFolder.save(config: source.config, parameters: source.parameters, to: outURL,
                               shardSize: shardSize << 20, generationConfig: source.generationConfig,
                               finchInfo: source.finchInfo, tokenizerModel: source.tokenizerModel,
                               extraFiles: Self.companionFiles.map { source.url.appendingPathComponent($0) }
                                   .filter { FileManager.default.fileExists(atPath: $0.path) })
        print("wrote \(source.config.hfArchitecture) (\(source.config.parameterCount) parameters, float32) to \(outURL.path)")
    }
}

/// `finch export gguf`: a model (with a LoRA/DoRA adapter merged in when given) or a LoRA adapter alone as GGUF.
struct ExportGGUFCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gguf",
        abstract: "Write a model, or a LoRA adapter, as a GGUF file for llama.cpp, Ollama and LM Studio.",
        discussion: """
        With --model, writes the model (a GGUF file or a model folder) with the --adapter (a PEFT LoRA/DoRA folder)
        merged into its weights. Without --model, or with --lora-only, writes the adapter alone in llama.cpp's LoRA
        format (llama-cli --lora FILE); its base is --model or the adapter's base_model_name_or_path.
        --type applies to every 2-D weight; norms and biases stay F32. "source" keeps a GGUF model's own mix of types
        where Finch can write them. The file is written under a temporary name and renamed; an existing --out is
        refused unless --overwrite.

        Examples:
          finch export gguf --model runs/sft/final/merged --type q8_0 --out smol-tuned.q8_0.gguf
          finch export gguf --model base.gguf --adapter runs/sft/final --type q4_k --out tuned.q4_k.gguf
          finch export gguf --adapter runs/sft/final --out adapter.gguf
        """)

    @Option(help: "Model to export: a GGUF file or a model folder.") var model: String?
    @Option(help: "A PEFT LoRA/DoRA adapter folder: merged into --model, or written alone (without --model, or with --lora-only).")
    var adapter: String?
    @Option(help: "Weight type: f32, f16, bf16, q8_0, q4_0, q4_k, q6_k, or source (a GGUF model's own types). Adapters: f32, f16, bf16, q8_0.")
    var type: String = "f16"
    @Option(help: "The .gguf file to write.") var out: String
    @Flag(help: "Write the adapter alone (llama.cpp's LoRA format) even though --model is given (as its base).") var loraOnly = false
    @Flag(help: "Replace --out if it exists.") var overwrite = false
    @Option(help: "general.name in the file (default: the source's name, or the folder's).") var name: String?

    func validate() throws {
        if model == nil && adapter == nil { throw ValidationError("give --model (a model to export) or --adapter (an adapter to export alone)") }
        if loraOnly && adapter == nil { throw ValidationError("--lora-only needs --adapter") }
        let names = GGUFModelExport.types.map(\.name) + ["source"]
        guard names.contains(type.lowercased()) else {
            throw ValidationError("--type '\(type)' is not one of \(names.joined(separator: ", "))")
        }
        guard out.lowercased().hasSuffix(".gguf") else { throw ValidationError("--out must name a .gguf file (got '\(out)')") }
    }

    func run() throws {
        let outURL = URL(fileURLWithPath: out)
        let start = Date()
        // Errors (a type or tokenizer llama.cpp cannot hold, an existing --out) print without usage and exit 1.
        if let adapter, model == nil || loraOnly {
            try exportAdapter(URL(fileURLWithPath: adapter), to: outURL, start: start)
        } else {
            try exportModel(to: outURL, start: start)
        }
    }

    func exportModel(to outURL: URL, start: Date) throws {
        let modelURL = URL(fileURLWithPath: model!)
        var source = try HFModelFolder.read(modelURL)
        var options: GGUFExportOptions
        if type.lowercased() == "source" {
            guard HFModelFolder.isGGUF(modelURL) else { throw ModelFileError("--type source needs a GGUF --model (it keeps that file's types)") }
            let types = try GGUFModelExport.sourceTypes(of: modelURL)
            let counts = Dictionary(types.values.map { ($0, 1) }, uniquingKeysWith: +)
            let main = counts.filter { $0.key.isQuantized || $0.key == .f16 || $0.key == .bf16 }.max { $0.value < $1.value }?.key ?? .f16
            options = GGUFExportOptions(type: GGMLQuantizer.canQuantize(main) ? main : .q8_0, typeOverrides: types)
        } else {
            options = GGUFExportOptions(type: GGUFModelExport.type(named: type)!)
        }
        options.name = name
        if let adapter {
            let merged = try LoRAMerger.merge(source.parameters, config: source.config, adapterFolder: URL(fileURLWithPath: adapter))
            source = source.replacingParameters(merged)
            print("merged \(adapter) into \(modelURL.lastPathComponent)")
        }
        let summary = try GGUFModelExport.write(source, to: outURL, options: options, overwrite: overwrite)
        report(summary, to: outURL, start: start, what: "\(summary.architecture) model, \(source.config.parameterCount) parameters")
    }

    func exportAdapter(_ adapterURL: URL, to outURL: URL, start: Date) throws {
        guard let t = GGUFModelExport.type(named: type), GGUFAdapterExport.types.contains(t) else {
            throw ModelFileError("an adapter is written as f32, f16, bf16 or q8_0, not \(type)")
        }
        let base: URL
        if let model { base = URL(fileURLWithPath: model) } else {
            guard let b = try PEFTAdapterFolder.baseModel(of: adapterURL) else {
                throw ModelFileError("\(adapterURL.path) names no base_model_name_or_path; give the base with --model BASE --lora-only")
            }
            base = URL(fileURLWithPath: b)
        }
        let summary = try GGUFAdapterExport.write(adapter: adapterURL, baseModel: base, to: outURL, type: t, overwrite: overwrite)
        report(summary, to: outURL, start: start, what: "LoRA adapter for \(summary.architecture) (\(base.lastPathComponent))")
    }

    func report(_ s: GGUFExportSummary, to url: URL, start: Date, what: String) {
        let types = s.typeCounts.sorted { $0.value > $1.value }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        print(String(format: "wrote %@ (%d tensors: %@) to %@: %.1f MiB in %.1f s", what, s.tensorCount, types, url.path,
                     Double(s.fileSize) / 1_048_576, Date().timeIntervalSince(start)))
        for f in s.fallbacks.prefix(5) { print("note: \(f)") }
        if s.fallbacks.count > 5 { print("note: … and \(s.fallbacks.count - 5) more tensors in a fallback type") }
        for n in s.notes { print("note: \(n)") }
    }
}
