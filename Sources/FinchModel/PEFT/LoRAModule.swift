import Foundation
import FinchKernels

/// LoRA / DoRA on a decoder (PEFT's `LoraModel`): one `LoRALinear` beside every target projection.
///
///     let lora = try LoRAModule(config: LoRAAdapterConfig(r: 8, loraAlpha: 16, targetModules: ["q_proj", "v_proj"]),
///                               decoder: decoder, seed: 42)
///     lora.attach(to: decoder)            // installs the hooks and freezes the base weights
///     lora.forwardHidden(decoder, ...); lora.causalLMLoss(decoder, ...); lora.backward(decoder)
///     try lora.save(to: folder, baseModel: "gpt2")      // a folder PEFT's from_pretrained loads
///
/// Parameters and gradients are named as in `adapter_model.safetensors`
/// (`base_model.model.<module>.lora_A.weight`, `.lora_B.weight`, `.lora_magnitude_vector`).
public final class LoRAModule: HookedPEFTModule, DecoderHooks {
    public private(set) var config: LoRAAdapterConfig
    /// The adapted projections by HF module path.
    public let modules: [String: LoRALinear]
    public let parameters: [String: Tensor]
    public let gradients: [String: Tensor]
    public var enabled = true
    public var peftType: String { "LORA" }
    public let lowestTrainableLayer: Int?

    /// A new adapter with PEFT's initialisation: A kaiming-uniform(a=√5) (uniform ±1/√in, as torch's Linear),
    /// B zero, DoRA's magnitude = the row norms of the base weight (so the adapted model starts equal to the base).
    /// `all-linear` targets every projection but the LM head. For GPT-2 (Conv1D) `fan_in_fan_out` is set.
    public convenience init(config: LoRAAdapterConfig, decoder: Decoder, seed: UInt64) throws {
        var config = config
        if decoder.config.flavour == .gpt2 { config.fanInFanOut = true }
        let paths = config.targetModulePaths(for: decoder.config)
        if paths.isEmpty {
            throw ModelFileError("LoRA: target modules \(config.targetModules) match no linear layer of this \(decoder.config.hfArchitecture) model")
        }
        var rng = SeededRNG(seed: seed)
        var weights = LoRAAdapterWeights()
        for path in paths {
            let (inF, outF) = try Self.features(path, decoder)
            let r = config.rank(for: path)
            let a = Tensor(shape: [r, inF]), b = Tensor(shape: [outF, r])
            let bound = 1 / Float(inF).squareRoot()
            for i in 0..<a.count { a[i] = Float(rng.uniformDouble() * 2 - 1) * bound }
            weights.modules[path] = LoRAModuleWeights(a: a, b: b, scale: config.scale(for: path),
                                                      magnitude: config.useDora ? Tensor(shape: [outF]) : nil)
        }
        try self.init(config: config, weights: weights, decoder: decoder, seed: seed)
        if config.useDora {
            for m in modules.values { let n = m.weightNorms(); for o in 0..<n.count { m.magnitude![o] = n[o] } }
        }
    }

    /// An adapter over existing tensors (e.g. read by `PEFTAdapterFolder.loadLoRA`), checked against the decoder.
    public init(config: LoRAAdapterConfig, weights: LoRAAdapterWeights, decoder: Decoder, seed: UInt64 = 0) throws {
        try weights.validate(against: decoder.config)
        self.config = config
        var modules: [String: LoRALinear] = [:], params: [String: Tensor] = [:], grads: [String: Tensor] = [:]
        var lowest: Int? = nil
        for (i, path) in weights.modules.keys.sorted().enumerated() {
            let w = weights.modules[path]!
            let conv1D = decoder.config.flavour == .gpt2
            let base = w.magnitude == nil ? nil : decoder.parameters[path + ".weight"]
            let m = LoRALinear(module: path, a: w.a, b: w.b, scale: w.scale, dropout: Float(config.loraDropout),
                               magnitude: w.magnitude, baseWeight: base, conv1D: conv1D)
            m.seed = seed &+ UInt64(i) &* 0x5851_F42D_4C95_7F2D
            modules[path] = m
            let key = LoRAAdapterWeights.keyPrefix + path
            params[key + ".lora_A.weight"] = w.a; grads[key + ".lora_A.weight"] = m.gradA
            params[key + ".lora_B.weight"] = w.b; grads[key + ".lora_B.weight"] = m.gradB
            if let mag = w.magnitude { params[key + ".lora_magnitude_vector"] = mag; grads[key + ".lora_magnitude_vector"] = m.gradMagnitude! }
            if let l = decoder.config.layerIndex(of: path) { lowest = min(lowest ?? l, l) }
        }
        self.modules = modules; self.parameters = params; self.gradients = grads
        self.lowestTrainableLayer = lowest
    }

    /// Reads a PEFT LoRA/DoRA adapter folder for `decoder` (PEFT's own folders included).
    public convenience init(folder: URL, decoder: Decoder) throws {
        let (config, weights) = try PEFTAdapterFolder.loadLoRA(folder)
        try self.init(config: config, weights: weights, decoder: decoder)
    }

    /// (in, out) features of a projection from its base weight (Linear [out, in], Conv1D [in, out]).
    static func features(_ path: String, _ decoder: Decoder) throws -> (Int, Int) {
        guard let w = decoder.parameters[path + ".weight"], w.shape.count == 2 else {
            throw ModelFileError("LoRA: '\(path)' is not a linear layer of this model")
        }
        return decoder.config.flavour == .gpt2 ? (w.shape[0], w.shape[1]) : (w.shape[1], w.shape[0])
    }

    /// The adapter's tensors as `PEFTAdapterFolder` stores them.
    public var weights: LoRAAdapterWeights {
        LoRAAdapterWeights(modules: modules.mapValues {
            LoRAModuleWeights(a: $0.a, b: $0.b, scale: $0.scale, magnitude: $0.magnitude)
        })
    }

    // MARK: DecoderHooks

    /// The adapter of `module`, told the decoder's dropout step (the trainer's micro-batch counter) so its
    /// dropout masks follow the step, not how many forwards this process has run.
    public func linearAdapter(module: String) -> LinearAdapter? {
        guard enabled, let m = modules[module] else { return nil }
        if let d = attachedDecoder { m.step = d.dropoutStep }
        return m
    }

    /// The decoder the hooks are installed in (for its dropout step).
    private weak var attachedDecoder: Decoder?

    // MARK: PEFTModule

    public func zeroGradients() { modules.values.forEach { $0.zeroGradients() } }

    /// Installs the hooks and freezes every base weight (`decoder.trainable = []`; add names back after
    /// this call to train some base weights too).
    public func attach(to decoder: Decoder) {
        decoder.hooks = self
        decoder.trainable = []
        attachedDecoder = decoder
    }

    public func setTraining(_ training: Bool) { modules.values.forEach { $0.training = training } }

    public func save(to folder: URL, baseModel: String) throws {
        var c = config
        c.baseModelNameOrPath = baseModel
        try PEFTAdapterFolder.save(.lora(c, weights), to: folder)
    }

    // MARK: merge

    /// The base parameters with every adapted projection folded in (`W + s·BA`, or DoRA's
    /// `m/‖W + s·BA‖_row ⊙ (W + s·BA)`): a plain decoder parameter dictionary. `base` is not modified
    /// (changed weights are new tensors, the others are shared).
    public func mergedParameters(_ base: [String: Tensor], config decoderConfig: DecoderConfig) throws -> [String: Tensor] {
        try LoRAMerger.merge(base, config: decoderConfig, weights: weights)
    }
}
