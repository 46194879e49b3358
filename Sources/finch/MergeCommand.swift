import ArgumentParser
import Foundation
import FinchModel

/// `finch merge --model BASE --adapter ADAPTER --out DIR`: folds a LoRA/DoRA adapter into the base weights
/// and writes a plain Hugging Face model folder (no adapter needed at inference).
struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Fold a LoRA/DoRA adapter (PEFT folder) into its base model and write a Hugging Face folder.",
        discussion: "Example: finch merge --model models/base --adapter runs/lora/best --out models/merged")

    @Option(help: "Base model folder (Hugging Face or Finch).") var model: String
    @Option(help: "PEFT LoRA/DoRA adapter folder (adapter_config.json + adapter_model.safetensors).") var adapter: String
    @Option(help: "Folder to write.") var out: String

    func run() throws {
        let base = try HFModelFolder.read(URL(fileURLWithPath: model))
        let (config, weights) = try PEFTAdapterFolder.loadLoRA(URL(fileURLWithPath: adapter))
        let merged = try LoRAMerger.merge(base.parameters, config: base.config, weights: weights)
        let outURL = URL(fileURLWithPath: out)
        try HFModelFolder.save(config: base.config, parameters: merged, to: outURL, generationConfig: base.generationConfig,
                               finchInfo: base.finchInfo, tokenizerModel: base.tokenizerModel)
        print("merged \(config.useDora ? "DoRA" : "LoRA") adapter (r \(config.r), \(weights.modules.count) modules) into "
              + "\(base.config.hfArchitecture); wrote \(outURL.path)")
    }
}
