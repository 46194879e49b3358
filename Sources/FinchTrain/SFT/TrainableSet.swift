import Foundation
import FinchModel

/// Which decoder parameters train, and in which optimizer groups, for the layer-wise methods:
/// - `full`: every parameter.
/// - `freeze`: the head (final norm + LM head; the head is the input embedding when tied) and the top
///   `trainLayers` blocks; with `cacheFeatures` only the LM head (the final norm must stay fixed so the
///   cached trunk outputs stay valid).
/// - gradual unfreezing (`unfreezeEvery` = N > 0): the head first, one more block from the top every N steps.
/// - PEFT methods: no decoder parameter (the module's own tensors train).
/// Discriminative rates (`layerLrDecay` = f): block i (0-based) of L gets `lr·f^(L−i)`, the embeddings
/// `lr·f^(L+1)`, the head `lr`. Norm weights and biases get no weight decay.
public enum TrainableSet {
    /// Names of the LM head (and final norm unless `headOnly`).
    public static func headNames(_ c: DecoderConfig, includeFinalNorm: Bool = true) -> [String] {
        let head = c.tieWordEmbeddings ? embeddingName(c) : "lm_head.weight"
        guard includeFinalNorm else { return [head] }
        let norm = c.flavour == .gpt2 ? ["transformer.ln_f.weight", "transformer.ln_f.bias"] : ["model.norm.weight"]
        return norm + [head]
    }

    static func embeddingName(_ c: DecoderConfig) -> String {
        c.flavour == .gpt2 ? "transformer.wte.weight" : "model.embed_tokens.weight"
    }

    /// The block a parameter name belongs to (HF naming), nil outside the blocks.
    public static func layerIndex(of name: String) -> Int? {
        for marker in ["layers.", ".h."] {
            guard let r = name.range(of: marker) else { continue }
            if let i = Int(name[r.upperBound...].prefix { $0.isNumber }) { return i }
        }
        return nil
    }

    /// Every parameter of block `layer`.
    public static func blockNames(_ c: DecoderConfig, layer: Int) -> [String] {
        let prefix = c.flavour == .gpt2 ? "transformer.h.\(layer)." : "model.layers.\(layer)."
        return c.parameterShapes().map(\.name).filter { $0.hasPrefix(prefix) }
    }

    /// Blocks unfrozen (from the top) after `step` optimizer steps of gradual unfreezing.
    public static func unfrozenBlocks(step: Int, every: Int, layers: Int, base: Int = 0) -> Int {
        guard every > 0 else { return min(base, layers) }
        return min(layers, base + step / every)
    }

    /// The trainable decoder parameters of a layer-wise method at optimizer step `step` (0 before the first).
    public static func names(config c: DecoderConfig, method: String, trainLayers: Int = 0, unfreezeEvery: Int = 0,
                             cacheFeatures: Bool = false, step: Int = 0) throws -> Set<String> {
        let all = c.parameterShapes().map(\.name)
        switch method {
        case "full":
            if unfreezeEvery > 0 { break }
            return Set(all)
        case "freeze":
            break
        default:
            return []   // PEFT: the module's tensors train
        }
        if cacheFeatures {
            guard !c.tieWordEmbeddings else {
                throw TrainingError("--cache-features needs an untied LM head: this model ties lm_head to the input embeddings (tie_word_embeddings = true), so training the head changes the trunk's input")
            }
            guard trainLayers == 0, unfreezeEvery == 0 else {
                throw TrainingError("--cache-features caches the frozen trunk's output, so it needs --train-layers 0 and no --unfreeze-every")
            }
            return Set(headNames(c, includeFinalNorm: false))
        }
        var out = Set(headNames(c))
        let k = unfrozenBlocks(step: step, every: unfreezeEvery, layers: c.numLayers, base: method == "freeze" ? trainLayers : 0)
        for l in stride(from: c.numLayers - 1, through: c.numLayers - k, by: -1) where k > 0 { out.formUnion(blockNames(c, layer: l)) }
        // Gradual unfreezing of a full fine-tune ends with the embeddings too.
        if method == "full", k == c.numLayers { out.formUnion(all) }
        return out
    }

    /// Whether a parameter is exempt from weight decay (norm weights, biases, 1-D tensors).
    public static func noDecay(_ name: String, shape: [Int]) -> Bool {
        shape.count < 2 || name.hasSuffix(".bias") || name.contains("norm") || name.contains("ln_")
    }

    /// Optimizer groups for `names` (decoder or PEFT keys): one per (block, decay) with the block's
    /// discriminative multiplier. `shapes` gives every name's shape.
    public static func groups(names: [String], shapes: [String: [Int]], numLayers: Int, headNames: Set<String> = [],
                              layerLrDecay: Double = 1, embeddingNames: Set<String> = []) -> [ParameterGroup] {
        var buckets: [String: (mult: Double, decay: Bool, names: [String], order: Int)] = [:]
        for name in names.sorted() {
            let label: String, mult: Double, order: Int
            if headNames.contains(name) {
                (label, mult, order) = ("head", 1, numLayers + 1)
            } else if let l = layerIndex(of: name), l < numLayers {
                (label, mult, order) = ("layers.\(l)", pow(layerLrDecay, Double(numLayers - l)), l + 1)
            } else if embeddingNames.contains(name) {
                (label, mult, order) = ("embeddings", pow(layerLrDecay, Double(numLayers + 1)), 0)
            } else {
                (label, mult, order) = ("other", 1, numLayers + 2)
            }
            let decay = !noDecay(name, shape: shapes[name] ?? [])
            let key = decay ? label : label + ".no_decay"
            buckets[key, default: (mult, decay, [], order)].names.append(name)
        }
        return buckets.sorted { ($0.value.order, $0.key) < ($1.value.order, $1.key) }.map {
            ParameterGroup(label: $0.key, names: $0.value.names, lrMultiplier: $0.value.mult, weightDecay: $0.value.decay)
        }
    }

    /// `groups(...)` for decoder parameters of `config`.
    public static func decoderGroups(_ names: Set<String>, config c: DecoderConfig, layerLrDecay: Double,
                                     cacheFeatures: Bool = false) -> [ParameterGroup] {
        var shapes: [String: [Int]] = [:]
        for (n, s) in c.parameterShapes() { shapes[n] = s }
        let emb: Set<String> = c.flavour == .gpt2 ? ["transformer.wte.weight", "transformer.wpe.weight"] : ["model.embed_tokens.weight"]
        return groups(names: Array(names), shapes: shapes, numLayers: c.numLayers,
                      headNames: Set(headNames(c)), layerLrDecay: layerLrDecay, embeddingNames: emb)
    }
}
