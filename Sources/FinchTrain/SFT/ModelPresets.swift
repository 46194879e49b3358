import Foundation
import FinchModel

/// Named decoder shapes for `finch pretrain --preset`. The vocabulary size comes from the tokenizer.
public enum ModelPresets {
    /// Preset names, smallest first.
    public static let names = ["tiny", "small", "llama-tiny", "llama-small", "gpt2-124m", "gpt2-355m"]

    /// The configuration of preset `name` for a tokenizer of `vocabSize` ids and rows of `maxPositions`.
    public static func config(_ name: String, vocabSize: Int, maxPositions: Int? = nil,
                              bos: Int? = nil, eos: Int? = nil, pad: Int? = nil) throws -> DecoderConfig {
        func gpt2(_ C: Int, _ L: Int, _ H: Int, _ P: Int) -> DecoderConfig {
            DecoderConfig(flavour: .gpt2, vocabSize: vocabSize, hiddenSize: C, numLayers: L, numHeads: H,
                          maxPositions: maxPositions ?? P, bosTokenId: bos, eosTokenId: eos, padTokenId: pad)
        }
        func llama(_ C: Int, _ L: Int, _ H: Int, _ KV: Int, _ F: Int, _ P: Int) -> DecoderConfig {
            DecoderConfig(flavour: .llama, vocabSize: vocabSize, hiddenSize: C, numLayers: L, numHeads: H, numKVHeads: KV,
                          intermediateSize: F, maxPositions: maxPositions ?? P, normEps: 1e-5, tieWordEmbeddings: false,
                          bosTokenId: bos, eosTokenId: eos, padTokenId: pad)
        }
        switch name {
        case "tiny": return gpt2(64, 2, 4, 256)
        case "small": return gpt2(256, 4, 4, 512)
        case "llama-tiny": return llama(64, 2, 4, 2, 172, 256)
        case "llama-small": return llama(256, 4, 8, 4, 688, 512)
        case "gpt2-124m": return gpt2(768, 12, 12, 1024)
        case "gpt2-355m": return gpt2(1024, 24, 16, 1024)
        default: throw TrainingError("unknown --preset '\(name)' (choose one of \(names.joined(separator: ", ")))")
        }
    }
}
