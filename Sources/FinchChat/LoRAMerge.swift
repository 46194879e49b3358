import Foundation
import FinchKernels
import FinchModel

/// Applies a PEFT LoRA/DoRA adapter for inference by merging it into the base weights (`LoRAMerger`):
/// the merged model computes what base + adapter computes, at no extra cost per token.
/// Prompt/prefix-tuning adapters are not served by the chat yet.
enum LoRAMerge {
    static func apply(adapterDir: URL, config: DecoderConfig, to parameters: inout [String: Tensor]) throws {
        let adapter = try PEFTAdapterFolder.load(adapterDir)
        guard case .lora(_, let weights) = adapter else {
            throw EngineError("\(adapterDir.path): prompt/prefix-tuning adapters are not served by the chat yet (LoRA/DoRA only)")
        }
        parameters = try LoRAMerger.merge(parameters, config: config, weights: weights)
    }
}
