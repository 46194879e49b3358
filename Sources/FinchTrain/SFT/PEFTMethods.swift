import Foundation
import FinchModel
import FinchKernels
import FinchData

/// Options of the PEFT methods (flag names in kebab-case: `--lora-r`, `--num-virtual-tokens`, ...).
public struct PEFTOptions: Codable, Equatable, Sendable {
    public var loraR: Int = 8
    public var loraAlpha: Double = 16
    public var loraDropout: Double = 0.05
    /// Module names (`q_proj,v_proj`) or `all-linear`; nil = `q_proj,v_proj` (Llama) / `c_attn` (GPT-2).
    public var loraTargets: [String]?
    public var rslora: Bool = false
    public var adapterSize: Int = 64
    /// `attention`, `mlp` or `both`.
    public var adapterPlacement: String = "both"
    public var numVirtualTokens: Int = 20
    public var prefixProjection: Bool = false
    public var promptInitText: String?
    /// Hold the frozen base's projections as quantised blocks: q8_0, q4_0, q4_1, q4_K, q6_K (quantised on load),
    /// or `gguf` (a GGUF model's own blocks, where the kernels take their type); nil = fp32.
    public var baseQuant: String?
    public init() {}

    /// The methods that leave every base projection frozen, so the base may be held quantised.
    public static let quantisableBaseMethods = ["lora", "adapter", "prefix", "prompt"]

    /// Sizes that would train nothing (or divide by zero) are refused, naming the flag.
    public func validate(method: String) throws {
        func need(_ ok: Bool, _ msg: String) throws { if !ok { throw TrainingError(msg) } }
        if let q = baseQuant {
            let formats = Decoder.baseQuantFormats.map(\.rawValue) + ["gguf"]
            try need(formats.contains(q), "--base-quant must be one of \(formats.joined(separator: ", ")) (got '\(q)')")
            try need(Self.quantisableBaseMethods.contains(method),
                     "--base-quant needs a method that keeps the base frozen (\(Self.quantisableBaseMethods.joined(separator: ", "))), not \(method)"
                     + (method == "dora" ? ": DoRA reads the full base weight to normalise it" : ""))
        }
        switch method {
        case "lora", "dora":
            try need(loraR >= 1, "--lora-r must be at least 1 (got \(loraR)): rank 0 trains nothing")
            try need(loraAlpha > 0 && loraAlpha.isFinite, "--lora-alpha must be positive (got \(loraAlpha)): 0 scales the adapter to nothing")
            try need(loraDropout >= 0 && loraDropout < 1, "--lora-dropout must be in [0, 1) (got \(loraDropout))")
            try need(loraTargets.map { !$0.isEmpty } ?? true, "--lora-targets names no module")
        case "prefix", "prompt":
            try need(numVirtualTokens >= 1, "--num-virtual-tokens must be at least 1 (got \(numVirtualTokens)): 0 trains nothing")
        case "adapter":
            try need(adapterSize >= 1, "--adapter-size must be at least 1 (got \(adapterSize))")
        default:
            break
        }
    }
}

/// Builds the `PEFTModule` of a method name.
public enum PEFTMethods {
    public static let layerWise: Set<String> = ["full", "freeze"]
    public static let all = ["full", "freeze", "lora", "dora", "adapter", "prefix", "prompt"]

    /// nil for `full` / `freeze`; else the method's module over `decoder` (not yet attached).
    public static func make(_ method: String, options o: PEFTOptions, decoder: Decoder,
                            tokenizer: (any TextTokenizer)?, seed: UInt64) throws -> PEFTModule? {
        try o.validate(method: method)
        switch method {
        case "full", "freeze":
            return nil
        case "lora", "dora":
            let targets = o.loraTargets ?? (decoder.config.flavour == .gpt2 ? ["c_attn"] : ["q_proj", "v_proj"])
            let cfg = LoRAAdapterConfig(r: o.loraR, loraAlpha: o.loraAlpha, loraDropout: o.loraDropout,
                                        targetModules: targets, useRslora: o.rslora, useDora: method == "dora")
            return try LoRAModule(config: cfg, decoder: decoder, seed: seed)
        case "prompt":
            if let text = o.promptInitText {
                guard let tok = tokenizer else { throw TrainingError("--prompt-init-text needs the model's tokenizer") }
                let ids = try tok.encode(text).map { Int($0) }
                return try PromptTuningModule(virtualTokens: o.numVirtualTokens, decoder: decoder, initTokenIds: ids, initText: text)
            }
            return PromptTuningModule(virtualTokens: o.numVirtualTokens, decoder: decoder, seed: seed)
        case "adapter":
            let place = o.adapterPlacement.lowercased()
            guard ["attention", "mlp", "both"].contains(place) else {
                throw TrainingError("--adapter-placement must be attention, mlp or both (got '\(o.adapterPlacement)')")
            }
            let opts = AdapterOptions(size: o.adapterSize, afterAttention: place != "mlp", afterMLP: place != "attention")
            return try AdapterModule(options: opts, config: decoder.config, seed: seed)
        case "prefix":
            return PrefixTuningModule(virtualTokens: o.numVirtualTokens, decoder: decoder, prefixProjection: o.prefixProjection, seed: seed)
        default:
            throw TrainingError("unknown --method '\(method)' (choose one of \(all.joined(separator: ", ")))")
        }
    }

    /// Holds the frozen base as `options.baseQuant` blocks (after the method froze it); a line for the log, or nil.
    public static func quantizeBase(_ decoder: Decoder, options o: PEFTOptions) throws -> String? {
        guard let q = o.baseQuant else { return nil }
        if let f = QuantFormat(rawValue: q) { try decoder.quantizeFrozenBase(f) }
        let formats = Set(decoder.quantized.values.map(\.format.rawValue)).sorted().joined(separator: "+")
        return "base: \(decoder.quantized.count) projections held as \(formats.isEmpty ? "fp32 (none quantised)" : formats) blocks, "
            + String(format: "weights %.0f MiB", Double(decoder.weightBytes) / 1048576)
    }

    /// Switches method-internal dropout on or off (LoRA); no-op for others.
    public static func setTraining(_ module: PEFTModule?, _ training: Bool) {
        (module as? LoRAModule)?.setTraining(training)
    }
}
