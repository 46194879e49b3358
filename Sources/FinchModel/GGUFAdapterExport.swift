import Foundation
import FinchKernels
import FinchGGUF

/// Writing a PEFT LoRA adapter folder as llama.cpp's LoRA adapter GGUF (what its `convert_lora_to_gguf.py` writes,
/// loaded with `llama-cli --lora FILE`): `general.type = adapter`, `adapter.type = lora`, `adapter.lora.alpha`, and for
/// every adapted weight `<base tensor>.lora_a` (ne = [in, r]) and `<base tensor>.lora_b` (ne = [r, out]) named after the
/// base model's GGUF tensors. llama.cpp scales B·A by alpha / r, as PEFT does; the Llama Q/K row permutation of the
/// base applies to the rows of B (the rows of B·A are the rows of the weight).
public enum GGUFAdapterExport {
    /// Types an adapter's tensors can be written in.
    public static let types: [GGMLType] = [.f32, .f16, .bf16, .q8_0]

    /// The base model's configuration and GGUF architecture name: a GGUF file's keys or a folder's config.json.
    public static func base(_ url: URL) throws -> (config: DecoderConfig, arch: String) {
        if HFModelFolder.isGGUF(url) {
            let file = try GGUFFile(contentsOf: url)
            return (try GGUFModelImport.config(of: url), file.architecture ?? "")
        }
        let config = try HFConfig.load(url.appendingPathComponent(HFModelFolder.configFile))
        return (config, GGUFArchitecture.name(of: config.flavour))
    }

    /// Writes the LoRA adapter folder `adapter` for the base model `baseModel` (a GGUF file or model folder) to `url`,
    /// atomically; refuses an existing `url` unless `overwrite`.
    @discardableResult
    public static func write(adapter: URL, baseModel: URL, to url: URL, type: GGMLType = .f32, overwrite: Bool = false) throws -> GGUFExportSummary {
        try GGUFModelExport.checkOutput(url, overwrite: overwrite)
        let (config, arch) = try base(baseModel)
        let (writer, summary) = try self.writer(adapter: adapter, config: config, arch: arch, type: type)
        return try GGUFModelExport.writeAtomically(writer, summary: summary, to: url, overwrite: overwrite)
    }

    static func writer(adapter: URL, config: DecoderConfig, arch: String, type: GGMLType) throws -> (GGUFWriter, GGUFExportSummary) {
        guard types.contains(type) else {
            throw ModelFileError("a LoRA adapter is written as \(types.map(\.name).joined(separator: ", ")), not \(type.name)")
        }
        let (lora, weights) = try PEFTAdapterFolder.loadLoRA(adapter)
        if lora.useDora {
            throw ModelFileError("\(adapter.path) is a DoRA adapter: llama.cpp's adapters are plain LoRA. Merge it into the model instead: finch export gguf --model BASE --adapter \(adapter.path) --out MODEL.gguf")
        }
        try weights.validate(against: config)
        // llama.cpp applies one alpha per adapter, as alpha / rank of each tensor pair: every module must share α.
        let alphas = Set(weights.modules.values.map { Double($0.scale) * Double($0.rank) })
        let alpha: Double
        if lora.useRslora || alphas.count > 1 || !lora.rankPattern.isEmpty || !lora.alphaPattern.isEmpty {
            guard let first = alphas.first, alphas.allSatisfy({ abs($0 - first) <= 1e-5 * abs(first) }) else {
                throw ModelFileError("\(adapter.path): its modules scale by different alpha/r (rank_pattern, alpha_pattern or rsLoRA); llama.cpp's adapter has one alpha. Merge it into the model instead (finch export gguf --model BASE --adapter DIR)")
            }
            alpha = first
        } else {
            alpha = lora.loraAlpha
        }
        var w = GGUFWriter()
        var summary = GGUFExportSummary()
        summary.architecture = arch
        w.set("general.architecture", arch)
        w.set("general.type", "adapter")
        w.set("general.name", adapter.lastPathComponent)
        w.set("adapter.type", "lora")
        w.set("adapter.lora.alpha", float32: Float(alpha))
        var anyQuantized = false
        for path in weights.modules.keys.sorted(by: Self.layerOrder) {
            let m = weights.modules[path]!
            let name = path + ".weight"
            guard let g = GGUFArchitecture.ggufName(of: name, config: config) else {
                throw ModelFileError("\(adapter.path): module '\(path)' has no llama.cpp tensor name")
            }
            let shape = config.parameterShapes().first { $0.name == name }?.shape ?? []
            var transform = GGUFArchitecture.transform(of: name, shape: shape, config: config, arch: arch)
            if transform == .transpose { transform = .none }   // PEFT's A [r, in], B [out, r] are already Linear-shaped
            for (suffix, tensor, t) in [(".lora_a", m.a, GGUFArchitecture.Transform.none), (".lora_b", m.b, transform)] {
                let ggmlShape = [tensor.shape[1], tensor.shape[0]]
                let chosen = ggmlShape[0] % type.blockSize == 0 ? type : .f32
                if chosen != type { summary.fallbacks.append("\(g)\(suffix): rows of \(ggmlShape[0]) are not whole \(type.name) blocks; written as F32") }
                anyQuantized = anyQuantized || chosen.isQuantized
                try GGUFModelExport.addTensor(&w, &summary, name: g + suffix, data: tensor, ggmlShape: ggmlShape, type: chosen,
                                              options: GGUFExportOptions(type: chosen), transform: t)
            }
        }
        w.set("general.file_type", uint32: GGUFModelExport.fileType(type))
        if anyQuantized { w.set("general.quantization_version", uint32: 2) }
        return (w, summary)
    }

    /// Module paths with their layer numbers compared as numbers (layers.2 before layers.10).
    static func layerOrder(_ a: String, _ b: String) -> Bool {
        a.compare(b, options: .numeric) == .orderedAscending
    }
}
