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
        let base = decoder.parameters.values.reduce(0) { $0 + $1.count } + decoder.quantized.values.reduce(0) { $0 + $1.rows * $1.cols }
        return (trainable, base + (peft?.parameters.values.reduce(0) { $0 + $1.count } ?? 0))
    }

    /// Forward and HF causal-LM loss of a batch. With `gradientScale` the per-token gradient is scaled by it
    /// (1/trained tokens of the whole optimizer step), ready for `backward()`.
    /// Positions are the batch's (restarting at every document of a packed row) and a packed row's documents
    /// do not attend to each other, so each document trains as if it were alone in its row.
    public func loss(_ batch: Batch, gradientScale: Float?, measureAccuracy: Bool = false) -> BatchLoss {
        let ids = batch.ids.map { Int($0) }, labels = batch.labels.map { Int($0) }
        let mask = batch.attentionMask.contains(0) ? batch.attentionMask.map { Int($0) } : nil
        let inputs = Self.packing(batch)
        if let cache = featureCache {
            return cache.loss(batch, ids: ids, mask: mask, positions: inputs.positions, documents: inputs.documents,
                              gradientScale: gradientScale, measureAccuracy: measureAccuracy)
        }
        let result: CausalLMLoss
        if let p = peft {
            _ = p.forwardHidden(decoder, ids: ids, batch: batch.size, length: batch.length, attentionMask: mask,
                            positionIds: inputs.positions, documentIds: inputs.documents)
            result = p.causalLMLoss(decoder, labels: labels, gradientScale: gradientScale,
                                    computeGradients: gradientScale != nil)
        } else {
            decoder.forwardHidden(ids: ids, batch: batch.size, length: batch.length, attentionMask: mask,
                                  positionIds: inputs.positions, documentIds: inputs.documents)
            // The head runs on the trained positions only, in chunks: no [rows × vocab] logits are ever held.
            result = decoder.trainedTokenLoss(labels: labels, gradientScale: gradientScale,
                                              computeGradients: gradientScale != nil)
        }
        var sum = 0.0
        for x in result.tokenNLL { sum += Double(x) }
        // Evaluation (no gradient) measures the argmax accuracy chunk by chunk inside the loss.
        let correct = measureAccuracy ? result.correct : nil
        return BatchLoss(nllSum: sum, count: result.count, correct: correct)
    }

    /// The decoder's position and document ids for `batch`: the batch's own when a row packs several
    /// documents, nil otherwise (a single-document row's positions are 0..<T either way, and the
    /// unpacked attention is the faster path).
    static func packing(_ batch: Batch) -> (positions: [Int]?, documents: [Int]?) {
        guard batch.records.contains(where: { $0.count > 1 }) else { return (nil, nil) }
        return (batch.positionIDs.map { Int($0) }, batch.documentIDs.map { Int($0) })
    }

    /// Virtual tokens the method places before every row (prompt / prefix tuning), 0 for others.
    public var virtualTokens: Int {
        if let p = peft as? PromptTuningModule, p.enabled { return p.virtualTokens }
        if let p = peft as? PrefixTuningModule, p.enabled { return p.virtualTokens }
        return 0
    }

    /// Throws when rows of `seqLen` tokens plus the method's virtual tokens need more positions than the
    /// model has (the position table would be read past its end and the gradient norm turn NaN).
    public func checkPositions(seqLen: Int) throws {
        try Self.checkPositions(seqLen: seqLen, virtualTokens: virtualTokens, maxPositions: decoder.config.maxPositions)
    }

    /// `checkPositions` before the model is built (jobs call it before packing data).
    public static func checkPositions(seqLen: Int, virtualTokens n: Int, maxPositions maxPos: Int) throws {
        guard seqLen + n > maxPos else { return }
        let what = n > 0 ? "--seq-len \(seqLen) + \(n) virtual tokens (--num-virtual-tokens) = \(seqLen + n) positions"
                         : "--seq-len \(seqLen) positions"
        let fix = n > 0 ? "use --seq-len \(max(maxPos - n, 1)) or less, or fewer virtual tokens"
                        : "use --seq-len \(maxPos) or less"
        throw TrainingError("\(what), but the model has only \(maxPos) (max_position_embeddings): \(fix)")
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
