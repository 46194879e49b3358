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
        let outURL = URL(fileURLWithPath: out)
        let s = try LoRAMerger.mergeFolder(model: URL(fileURLWithPath: model), adapter: URL(fileURLWithPath: adapter), out: outURL)
        print("merged \(s.method) adapter (r \(s.rank), \(s.modules) modules) into \(s.architecture); wrote \(outURL.path)")
    }
}
