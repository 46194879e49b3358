import Foundation
import FinchKernels

/// Folds a LoRA/DoRA adapter into base weights (PEFT's `merge_and_unload`).
public enum LoRAMerger {
    /// `base` with each adapted weight replaced by a merged copy:
    /// LoRA `W' = W + s·BA` (transposed for GPT-2's Conv1D `[in, out]` weights, PEFT's `fan_in_fan_out`);
    /// DoRA `W' = m/‖W + s·BA‖_row ⊙ (W + s·BA)` per output row. Other tensors are shared, not copied.
    public static func merge(_ base: [String: Tensor], config: DecoderConfig, weights: LoRAAdapterWeights) throws -> [String: Tensor] {
        try weights.validate(against: config)
        var out = base
        let conv1D = config.flavour == .gpt2
        for (path, m) in weights.modules {
            let name = path + ".weight"
            guard let w = base[name] else { throw ModelFileError("LoRA merge: the base has no weight '\(name)'") }
            let inF = m.inFeatures, outF = m.outFeatures, r = m.rank
            let merged = w.copy()
            // delta[out, in] = s·B·A
            let delta = Tensor(shape: [outF, inF])
            Gemm.sgemm(transA: false, transB: false, m: outF, n: inF, k: r, alpha: m.scale, a: m.b.ptr, lda: r,
                       b: m.a.ptr, ldb: inF, beta: 0, c: delta.ptr, ldc: inF)
            for o in 0..<outF {
                for i in 0..<inF {
                    merged.ptr[conv1D ? i * outF + o : o * inF + i] += delta.ptr[o * inF + i]
                }
            }
            if let mag = m.magnitude {
                for o in 0..<outF {
                    var sum: Double = 0
                    for i in 0..<inF { let v = Double(merged.ptr[conv1D ? i * outF + o : o * inF + i]); sum += v * v }
                    let k = mag.ptr[o] / Float(sum.squareRoot())
                    for i in 0..<inF { merged.ptr[conv1D ? i * outF + o : o * inF + i] *= k }
                }
            }
            out[name] = merged
        }
        return out
    }

    /// What `mergeFolder` did.
    public struct FolderSummary: Sendable {
        public let method: String          // "LoRA" or "DoRA"
        public let rank: Int
        public let modules: Int
        public let architecture: String
    }

    /// `parameters` with the LoRA/DoRA adapter folder `adapter` folded in.
    public static func merge(_ parameters: [String: Tensor], config: DecoderConfig, adapterFolder adapter: URL) throws -> [String: Tensor] {
        let (_, weights) = try PEFTAdapterFolder.loadLoRA(adapter)
        return try merge(parameters, config: config, weights: weights)
    }

    /// Tokenizer/template files of a model folder that a merged folder keeps (copied when present).
    public static let companionFiles = ["chat_template.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]

    /// `finch merge`: reads the base model folder and the PEFT LoRA/DoRA adapter folder, folds the adapter in
    /// and writes a plain Hugging Face folder to `out` (generation config, finch.json and tokenizer carried over).
    @discardableResult
    public static func mergeFolder(model: URL, adapter: URL, out: URL) throws -> FolderSummary {
        let base = try HFModelFolder.read(model)
        let (config, weights) = try PEFTAdapterFolder.loadLoRA(adapter)
        let merged = try merge(base.parameters, config: base.config, weights: weights)
        try HFModelFolder.save(config: base.config, parameters: merged, to: out, generationConfig: base.generationConfig,
                               finchInfo: base.finchInfo, tokenizerModel: base.tokenizerModel,
                               extraFiles: companionFiles.map { model.appendingPathComponent($0) }
                                   .filter { FileManager.default.fileExists(atPath: $0.path) })
        return FolderSummary(method: config.useDora ? "DoRA" : "LoRA", rank: config.r, modules: weights.modules.count,
                             architecture: base.config.hfArchitecture)
    }
}
