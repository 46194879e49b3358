import Foundation
import FinchKernels

/// Settings of bottleneck adapters: Houlsby = after attention and MLP, Pfeiffer = after the MLP only.
public struct AdapterOptions: Equatable, Sendable {
    /// Bottleneck width.
    public var size: Int
    public var afterAttention: Bool
    public var afterMLP: Bool
    public var activation: AdapterActivation
    /// Standard deviation of the up-projection's initial weights (near zero: the block starts ≈ identity).
    public var upInitStd: Float

    public init(size: Int, afterAttention: Bool = true, afterMLP: Bool = true, activation: AdapterActivation = .relu,
                upInitStd: Float = 1e-3) {
        self.size = size; self.afterAttention = afterAttention; self.afterMLP = afterMLP
        self.activation = activation; self.upInitStd = upInitStd
    }
    public static func houlsby(size: Int, activation: AdapterActivation = .relu) -> AdapterOptions {
        AdapterOptions(size: size, activation: activation)
    }
    public static func pfeiffer(size: Int, activation: AdapterActivation = .relu) -> AdapterOptions {
        AdapterOptions(size: size, afterAttention: false, activation: activation)
    }
}

/// Bottleneck adapters on every block (`peft_type` "ADAPTER", Finch's own: PEFT has no such type).
/// Tensors are named `base_model.model.<block path>.<attn|mlp>_adapter.<down_proj|up_proj>.<weight|bias>`,
/// e.g. `base_model.model.model.layers.0.mlp_adapter.up_proj.weight`.
public final class AdapterModule: HookedPEFTModule, DecoderHooks {
    public let options: AdapterOptions
    public let hiddenSize: Int, numLayers: Int
    /// Adapters by layer: [attention, mlp] (nil where not placed).
    public let adapters: [[BottleneckAdapter?]]
    public let parameters: [String: Tensor]
    public let gradients: [String: Tensor]
    public var enabled = true
    public var peftType: String { "ADAPTER" }
    public var lowestTrainableLayer: Int? { 0 }
    let blockPrefix: String

    /// New adapters for `config` (seeded initialisation, see `BottleneckAdapter.init(dim:size:...)`).
    public convenience init(options: AdapterOptions, config: DecoderConfig, seed: UInt64) throws {
        var rng = SeededRNG(seed: seed)
        let adapters: [[BottleneckAdapter?]] = (0..<config.numLayers).map { _ in
            [options.afterAttention, options.afterMLP].map { on in
                on ? BottleneckAdapter(dim: config.hiddenSize, size: options.size, activation: options.activation,
                                       upStd: options.upInitStd, rng: &rng) : nil
            }
        }
        try self.init(options: options, config: config, adapters: adapters)
    }

    init(options: AdapterOptions, config: DecoderConfig, adapters: [[BottleneckAdapter?]]) throws {
        guard options.size > 0, options.afterAttention || options.afterMLP else {
            throw ModelFileError("adapter: size must be positive and at least one placement (attention, mlp) chosen")
        }
        self.options = options; hiddenSize = config.hiddenSize; numLayers = config.numLayers
        self.adapters = adapters
        blockPrefix = config.flavour == .gpt2 ? "transformer.h." : "model.layers."
        var p: [String: Tensor] = [:], g: [String: Tensor] = [:]
        for l in 0..<numLayers {
            for (s, site) in ["attn", "mlp"].enumerated() {
                guard let a = adapters[l][s] else { continue }
                for (suffix, t, grad) in a.namedParameters {
                    let key = "base_model.model.\(blockPrefix)\(l).\(site)_adapter.\(suffix)"
                    p[key] = t; g[key] = grad
                }
            }
        }
        parameters = p; gradients = g
    }

    // MARK: DecoderHooks

    public func residualAdapter(layer: Int, site: BlockSite) -> ResidualAdapter? {
        guard enabled, layer < adapters.count else { return nil }
        return adapters[layer][site == .attention ? 0 : 1]
    }

    // MARK: PEFTModule

    public func zeroGradients() { for row in adapters { for a in row { a?.zeroGradients() } } }

    /// Installs the hooks and freezes every base weight.
    public func attach(to decoder: Decoder) {
        decoder.hooks = self
        decoder.trainable = []
    }

    // MARK: folder

    public static let note = "Finch-specific bottleneck adapters (peft_type ADAPTER): PEFT cannot load this folder; Finch can."

    /// Writes `adapter_config.json` (peft_type "ADAPTER", marked Finch-specific) and `adapter_model.safetensors`.
    public func save(to folder: URL, baseModel: String) throws {
        let json: JSONValue = .object([
            "peft_type": .string("ADAPTER"), "finch_note": .string(Self.note), "task_type": .string("CAUSAL_LM"),
            "base_model_name_or_path": .string(baseModel), "adapter_size": .int(options.size),
            "placement": .array((options.afterAttention ? [JSONValue.string("attention")] : []) + (options.afterMLP ? [.string("mlp")] : [])),
            "nonlinearity": .string(options.activation.rawValue), "hidden_size": .int(hiddenSize), "num_layers": .int(numLayers),
        ])
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try SafeTensors.write(parameters, to: folder.appendingPathComponent(PEFTAdapterFolder.weightsFile))
        try AtomicFile.write(json.data(), to: folder.appendingPathComponent(PEFTAdapterFolder.configFile))
    }

    /// Reads a folder written by `save`, checking it against `config`.
    public convenience init(folder: URL, config: DecoderConfig) throws {
        let configURL = folder.appendingPathComponent(PEFTAdapterFolder.configFile)
        let o = try JSONValue.read(configURL).object ?? [:]
        let file = configURL.path
        guard o["peft_type"]?.string == "ADAPTER" else { throw ModelFileError("\(file): peft_type is not \"ADAPTER\"") }
        guard let size = o["adapter_size"]?.int, size > 0 else { throw ModelFileError("\(file): 'adapter_size' must be a positive integer") }
        guard o["hidden_size"]?.int == config.hiddenSize, o["num_layers"]?.int == config.numLayers else {
            throw ModelFileError("\(file): adapters for hidden_size \(o["hidden_size"]?.int ?? -1) × \(o["num_layers"]?.int ?? -1) layers, the model has \(config.hiddenSize) × \(config.numLayers)")
        }
        let placement = Set((o["placement"]?.array ?? []).compactMap { $0.string })
        guard let act = AdapterActivation(rawValue: o["nonlinearity"]?.string ?? "relu") else {
            throw ModelFileError("\(file): nonlinearity '\(o["nonlinearity"]?.string ?? "")' is not relu or gelu")
        }
        let options = AdapterOptions(size: size, afterAttention: placement.contains("attention"), afterMLP: placement.contains("mlp"), activation: act)
        let weights = try SafeTensors.File(url: folder.appendingPathComponent(PEFTAdapterFolder.weightsFile))
        let prefix = config.flavour == .gpt2 ? "transformer.h." : "model.layers."
        var adapters: [[BottleneckAdapter?]] = []
        for l in 0..<config.numLayers {
            var row: [BottleneckAdapter?] = []
            for (site, on) in [("attn", options.afterAttention), ("mlp", options.afterMLP)] {
                guard on else { row.append(nil); continue }
                func t(_ s: String, _ shape: [Int]) throws -> Tensor {
                    let key = "base_model.model.\(prefix)\(l).\(site)_adapter.\(s)"
                    guard weights.entries[key] != nil else { throw ModelFileError("\(weights.url.path): tensor '\(key)' is missing") }
                    let x = try weights.tensor(key)
                    guard x.shape == shape else { throw ModelFileError("\(weights.url.path): '\(key)' has shape \(x.shape), expected \(shape)") }
                    return x
                }
                let C = config.hiddenSize
                row.append(BottleneckAdapter(downWeight: try t("down_proj.weight", [size, C]), downBias: try t("down_proj.bias", [size]),
                                             upWeight: try t("up_proj.weight", [C, size]), upBias: try t("up_proj.bias", [C]), activation: act))
            }
            adapters.append(row)
        }
        try self.init(options: options, config: config, adapters: adapters)
    }
}
