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
        let adapterURL = URL(fileURLWithPath: adapter)
        switch try PEFTAdapterFolder.peftType(of: adapterURL) {
        case "LORA": break
        case "ADAPTER":
            throw ValidationError("\(adapter) holds bottleneck adapters: their blocks (down-projection, nonlinearity, up-projection) "
                                  + "cannot be folded into the base weights. Use the adapter folder as it is: finch chat/generate "
                                  + "--model BASE --adapter \(adapter), finch eval --model \(adapter), finch ppo --policy \(adapter) --method adapter")
        case let type:
            throw ValidationError("\(adapter): \(type) adapters add virtual tokens, which no weight can hold; only LoRA/DoRA adapters are merged. "
                                  + "Use the adapter folder as it is (finch chat/generate --model BASE --adapter \(adapter))")
        }
        if let named = try PEFTAdapterFolder.baseModel(of: adapterURL),
           URL(fileURLWithPath: named).standardizedFileURL.resolvingSymlinksInPath().path
            != URL(fileURLWithPath: model).standardizedFileURL.resolvingSymlinksInPath().path {
            FileHandle.standardError.write(Data("note: the adapter names \(named) as its base (base_model_name_or_path), not \(model); merging into \(model) since the shapes match\n".utf8))
        }
        let s = try LoRAMerger.mergeFolder(model: URL(fileURLWithPath: model), adapter: adapterURL, out: outURL)
        print("merged \(s.method) adapter (r \(s.rank), \(s.modules) modules) into \(s.architecture); wrote \(outURL.path)")
    }
}
