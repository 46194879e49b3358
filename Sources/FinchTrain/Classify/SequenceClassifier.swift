import Foundation
import FinchKernels
import FinchModel

/// A decoder trunk with a linear head `score.weight` [K, C] read at each row's last real token (as transformers'
/// `LlamaForSequenceClassification` pools), trained with softmax cross-entropy over K labels.
/// The trunk is trained fully (`full`), not at all (`freeze`: head only) or through a PEFT module (`lora`).
public final class SequenceClassifier {
    public let model: CausalLMModel
    public let weight: Tensor
    public let weightGradient: Tensor
    public let labels: [String]
    public let trainTrunk: Bool
    public var decoder: Decoder { model.decoder }
    var last: (hidden: Tensor, rows: [Int], batch: Int, length: Int)?

    /// `decoder` must have `numLabels == labels.count` and `score.weight` (see ``classifierDecoder(config:parameters:labels:seed:)``).
    public init(decoder: Decoder, peft: PEFTModule?, labels: [String], trainTrunk: Bool) throws {
        guard let w = decoder.parameters["score.weight"], w.shape == [labels.count, decoder.config.hiddenSize] else {
            throw TrainingError("classifier: the decoder has no score.weight [\(labels.count), \(decoder.config.hiddenSize)]")
        }
        decoder.trainable.remove("score.weight")
        if !trainTrunk && peft == nil { decoder.trainable = [] }
        model = CausalLMModel(decoder: decoder, peft: peft)
        weight = w
        weightGradient = Tensor(shape: w.shape)
        self.labels = labels
        self.trainTrunk = trainTrunk || peft != nil
    }

    /// A decoder with `num_labels = K` and a new head (normal(0, 0.02)) from a causal LM's weights.
    public static func classifierDecoder(config: DecoderConfig, parameters: [String: Tensor], labels: [String], seed: UInt64) throws -> Decoder {
        var c = config
        c.numLabels = labels.count
        var p = parameters
        p["lm_head.weight"] = nil
        if p["score.weight"]?.shape != [labels.count, c.hiddenSize] {
            let w = Tensor(shape: [labels.count, c.hiddenSize])
            var rng = SeededRNG(seed: seed)
            rng.fillNormal(w.ptr, count: w.count, std: 0.02)
            p["score.weight"] = w
        }
        return try Decoder(config: c, parameters: p)
    }

    /// Trainable tensors under their names: the trunk's (or adapter's) and `score.weight`.
    public var trainableParameters: [String: Tensor] {
        var p = trainTrunk ? model.trainableParameters : [:]
        p["score.weight"] = weight
        return p
    }

    public var gradients: [String: Tensor] {
        var g = trainTrunk ? model.gradients : [:]
        g["score.weight"] = weightGradient
        return g
    }

    public func zeroGradients() { if trainTrunk { model.zeroGradients() }; weightGradient.zero() }

    /// Logits [B, K] of a batch of token sequences (right-padded with 0 and masked).
    public func logits(_ rows: [[Int]]) -> [[Float]] {
        let B = rows.count, T = max(1, rows.map(\.count).max() ?? 1), C = decoder.config.hiddenSize, K = labels.count
        var ids: [Int] = [], mask: [Int] = []
        for r in rows {
            ids += r + Array(repeating: 0, count: T - r.count)
            mask += Array(repeating: 1, count: r.count) + Array(repeating: 0, count: T - r.count)
        }
        let hidden: Tensor
        if let p = model.peft {
            hidden = p.forwardHidden(decoder, ids: ids, batch: B, length: T, attentionMask: mask, positionIds: nil)
        } else {
            hidden = decoder.forwardHidden(ids: ids, batch: B, length: T, attentionMask: mask)
        }
        let pooled = rows.enumerated().map { $0.offset * T + max(0, $0.element.count - 1) }
        last = (hidden, pooled, B, T)
        return pooled.map { row in
            (0..<K).map { k in
                var s: Float = 0
                for c in 0..<C { s += weight.ptr[k * C + c] * hidden.ptr[row * C + c] }
                return s
            }
        }
    }

    /// Mean cross-entropy of the last `logits` call against `targets`, with gradients accumulated (scaled by `scale`).
    public func lossAndBackward(logits: [[Float]], targets: [Int], scale: Float) -> Double {
        guard let l = last else { preconditionFailure("SequenceClassifier: call logits first") }
        let C = decoder.config.hiddenSize, K = labels.count
        let dHidden = Tensor(shape: [l.batch * l.length, C])
        dHidden.zero()
        var loss = 0.0
        for (b, z) in logits.enumerated() {
            let m = z.max() ?? 0
            let e = z.map { exp(Double($0 - m)) }
            let sum = e.reduce(0, +)
            loss -= log(e[targets[b]] / sum)
            let row = l.rows[b]
            for k in 0..<K {
                let d = Float(e[k] / sum - (k == targets[b] ? 1 : 0)) * scale
                for c in 0..<C {
                    weightGradient.ptr[k * C + c] += d * l.hidden.ptr[row * C + c]
                    dHidden.ptr[row * C + c] += d * weight.ptr[k * C + c]
                }
            }
        }
        if trainTrunk {
            if let p = model.peft { p.backwardHidden(decoder, dHidden) } else { decoder.backwardHidden(dHidden) }
        }
        return loss / Double(max(1, logits.count))
    }

    /// Predicted label indices, `batch` rows at a time.
    public func predict(_ rows: [[Int]], batch: Int = 16) -> [Int] {
        var out: [Int] = []
        for s in stride(from: 0, to: rows.count, by: batch) {
            for z in logits(Array(rows[s..<min(rows.count, s + batch)])) {
                out.append(z.indices.max { z[$0] < z[$1] } ?? 0)
            }
        }
        return out
    }
}
