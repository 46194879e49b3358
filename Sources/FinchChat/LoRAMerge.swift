import Foundation
import FinchKernels
import FinchModel

/// Applies a PEFT LoRA adapter for inference by merging it into the base weights: W += scale · B · A.
/// The merged model computes exactly what the base model plus the adapter computes, at no extra cost
/// per token. DoRA, GPT-2 Conv1D (fan_in_fan_out) and prompt/prefix adapters are not merged here.
enum LoRAMerge {
    static func apply(adapterDir: URL, to parameters: inout [String: Tensor]) throws {
        let adapter = try PEFTAdapterFolder.load(adapterDir)
        guard case .lora(let config, let weights) = adapter else {
            throw EngineError("\(adapterDir.path): prompt/prefix-tuning adapters are not wired into chat yet (LoRA only)")
        }
        guard !config.useDora else { throw EngineError("\(adapterDir.path): DoRA adapters are not wired into chat yet") }
        guard !config.fanInFanOut else {
            throw EngineError("\(adapterDir.path): fan_in_fan_out (GPT-2 Conv1D) LoRA is not wired into chat yet")
        }
        for (module, lora) in weights.modules {
            let name = module + ".weight"
            guard let w = parameters[name] else {
                throw EngineError("\(adapterDir.path): adapter module '\(module)' has no base weight '\(name)'")
            }
            guard w.shape == [lora.outFeatures, lora.inFeatures] else {
                throw EngineError("\(adapterDir.path): '\(module)' is [\(lora.outFeatures), \(lora.inFeatures)] in the adapter "
                                  + "but '\(name)' is \(w.shape)")
            }
            // W[out, in] += scale · B[out, r] · A[r, in]
            Gemm.sgemm(transA: false, transB: false, m: lora.outFeatures, n: lora.inFeatures, k: lora.rank,
                       alpha: lora.scale, a: lora.b.ptr, lda: lora.rank, b: lora.a.ptr, ldb: lora.inFeatures,
                       beta: 1, c: w.ptr, ldc: lora.inFeatures)
        }
    }
}
