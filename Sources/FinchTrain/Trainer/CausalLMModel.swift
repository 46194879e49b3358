import Foundation
import FinchKernels
import FinchModel
import FinchData

/// What one forward + loss over a batch measured.
public struct BatchLoss {
    /// Sum of the per-token NLL over trained tokens (divide by `count` for the mean).
    public var nllSum: Double
    /// Trained tokens (shifted labels that are not -100).
    public var count: Int
    /// Trained tokens whose arg-max prediction is the label (nil when not measured).
    public var correct: Int?
}

/// A decoder with its training method: plain (full / freeze / gradual unfreezing), a `PEFTModule`, or a
/// frozen trunk whose outputs are cached (`--cache-features`, only the LM head trains). The one object a
/// causal-LM trainer forwards, backwards and optimises; DPO / reward trainers can reuse it for the policy.
public final class CausalLMModel {
    public let decoder: Decoder
    public let peft: PEFTModule?
    /// Set for `--cache-features`.
    public let featureCache: FeatureCache?

    public init(decoder: Decoder, peft: PEFTModule? = nil, cacheFeatures: Bool = false) {
        self.decoder = decoder
        self.peft = peft
        self.featureCache = cacheFeatures && peft == nil ? FeatureCache(decoder: decoder) : nil
        if let p = peft {
            decoder.trainable = []
            p.attach(to: decoder)
        }
    }

    /// The tensors the optimizer updates, under their names (decoder HF names or PEFT adapter keys).
    public var trainableParameters: [String: Tensor] {
        if let p = peft { return p.parameters }
        return decoder.parameters.filter { decoder.trainable.contains($0.key) }
    }

    /// Gradients of `trainableParameters` (allocated by `allocateGradients`).
    public var gradients: [String: Tensor] {
        if let p = peft { return p.gradients }
        return decoder.gradients
    }

    public func allocateGradients() { if peft == nil { decoder.allocateGradients() } }

    public func zeroGradients() {
        if let p = peft { p.zeroGradients() } else { decoder.zeroGradients() }
    }

    /// Trainable scalars and all scalars (base model + method).
    public var parameterCounts: (trainable: Int, total: Int) {
        let trainable = trainableParameters.values.reduce(0) { $0 + $1.count }
        let base = decoder.parameters.values.reduce(0) { $0 + $1.count }
        return (trainable, base + (peft?.parameters.values.reduce(0) { $0 + $1.count } ?? 0))
    }

    /// Forward and HF causal-LM loss of a batch. With `gradientScale` the per-token gradient is scaled by it
    /// (1/trained tokens of the whole optimizer step), ready for `backward()`.
    /// Positions are 0..<T on every row (packed rows attend across their documents, as in plain chunked
    /// pretraining: the decoder has no per-document mask).
    public func loss(_ batch: Batch, gradientScale: Float?, measureAccuracy: Bool = false) -> BatchLoss {
        let ids = batch.ids.map { Int($0) }, labels = batch.labels.map { Int($0) }
        let mask = batch.attentionMask.contains(0) ? batch.attentionMask.map { Int($0) } : nil
        if let cache = featureCache {
            return cache.loss(batch, ids: ids, mask: mask, gradientScale: gradientScale, measureAccuracy: measureAccuracy)
        }
        let result: CausalLMLoss
        var logits: Tensor? = nil
        if let p = peft {
            p.forwardHidden(decoder, ids: ids, batch: batch.size, length: batch.length, attentionMask: mask, positionIds: nil)
            result = p.causalLMLoss(decoder, labels: labels, gradientScale: gradientScale)
            if measureAccuracy { logits = decoder.lmHead() }
        } else {
            decoder.forwardHidden(ids: ids, batch: batch.size, length: batch.length, attentionMask: mask)
            logits = decoder.lmHead()
            result = decoder.causalLMLoss(labels: labels, gradientScale: gradientScale)
        }
        var sum = 0.0
        for x in result.tokenNLL { sum += Double(x) }
        let correct = measureAccuracy ? logits.flatMap { Self.correctPredictions($0, batch: batch, vocab: decoder.config.vocabSize) } : nil
        return BatchLoss(nllSum: sum, count: result.count, correct: correct)
    }

    /// Backward of the last `loss` into `gradients`.
    public func backward() {
        if let cache = featureCache { cache.backward(); return }
        if let p = peft { p.backward(decoder) } else { decoder.backward() }
    }

    /// Trained tokens whose arg-max logit equals the label. `logits` rows may include virtual tokens
    /// placed before each row's real tokens (prompt tuning): they are skipped.
    static func correctPredictions(_ logits: Tensor, batch: Batch, vocab V: Int) -> Int? {
        let B = batch.size, T = batch.length
        guard B > 0, logits.count % (B * V) == 0 else { return nil }
        let rowLen = logits.count / (B * V), offset = rowLen - T
        guard offset >= 0 else { return nil }
        var correct = 0
        for b in 0..<B {
            for t in 0..<(T - 1) {
                let target = batch.targets[b * T + t]
                guard target != Batch.ignoreIndex else { continue }
                let row = logits.ptr + ((b * rowLen) + offset + t) * V
                var best = 0
                var bestValue = row[0]
                for v in 1..<V where row[v] > bestValue { bestValue = row[v]; best = v }
                if best == Int(target) { correct += 1 }
            }
        }
        return correct
    }
}
