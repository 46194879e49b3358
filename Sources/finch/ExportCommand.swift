import ArgumentParser
import Foundation
import FinchModel

/// `finch export --model DIR --out DIR`: re-writes a model folder in Hugging Face format (float32 safetensors,
/// sharded when large), loadable by transformers' `from_pretrained`.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a model folder in Hugging Face format (config.json, safetensors, generation config).",
        discussion: "Example: finch export --model runs/sft/best --out exported/ --shard-size 2048")

    @Option(help: "Model folder to read (Hugging Face or Finch).") var model: String
    @Option(help: "Folder to write.") var out: String
    @Option(help: "Largest weight file in MB (MiB); larger models are sharded with an index.") var shardSize: Int = 2048
    // TODO: --adapter DIR to merge a LoRA adapter into the weights before writing (merge math lives with the trainer).

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
