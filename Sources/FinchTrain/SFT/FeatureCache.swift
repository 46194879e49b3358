import Foundation
import FinchKernels
import FinchModel
import FinchData

/// `--cache-features`: when only the LM head trains, the frozen trunk's output (final-norm hidden states)
/// of a row never changes, so it is computed once per distinct row and reused across epochs. The head's
/// forward, loss and weight gradient then run on the cached rows alone.
///
/// Rows are keyed by their ids, attention mask and (packed rows) document ids (right padding does not
/// change real tokens' states).
/// Memory: rows × T × hidden floats.
public final class FeatureCache {
    let decoder: Decoder
    private var rows: [[Int32]: [Float]] = [:]
    private var hidden: Tensor?
    private var dlogits: Tensor?
    private var batchRows = 0
    /// Trunk forwards avoided / done (for the summary).
    public private(set) var hits = 0, misses = 0

    init(decoder: Decoder) { self.decoder = decoder }

    var headName: String { decoder.config.tieWordEmbeddings ? TrainableSet.embeddingName(decoder.config) : "lm_head.weight" }

    /// `positions`, `documents`: a packed batch's ids (nil when every row holds one document).
    func loss(_ batch: Batch, ids: [Int], mask: [Int]?, positions: [Int]?, documents: [Int]?,
              gradientScale: Float?, measureAccuracy: Bool) -> BatchLoss {
        let B = batch.size, T = batch.length, C = decoder.config.hiddenSize, V = decoder.config.vocabSize
        // The document ids join the key: the same tokens packed with other boundaries have other states
        // (positions follow from the documents).
        let keys = (0..<B).map { b in
            Array(batch.ids[(b * T)..<((b + 1) * T)]) + Array(batch.attentionMask[(b * T)..<((b + 1) * T)])
                + (documents == nil ? [] : Array(batch.documentIDs[(b * T)..<((b + 1) * T)]))
        }
        if keys.contains(where: { rows[$0] == nil }) {
            let h = decoder.forwardHidden(ids: ids, batch: B, length: T, attentionMask: mask, positionIds: positions,
                                          documentIds: documents)
            for (b, k) in keys.enumerated() where rows[k] == nil {
                rows[k] = Array(UnsafeBufferPointer(start: h.ptr + b * T * C, count: T * C))
                misses += 1
            }
        }
        if hidden?.count != B * T * C { hidden = Tensor(shape: [B * T, C]); dlogits = Tensor(shape: [B * T, V]) }
        let hid = hidden!, dl = dlogits!
        for (b, k) in keys.enumerated() {
            rows[k]!.withUnsafeBufferPointer { (hid.ptr + b * T * C).update(from: $0.baseAddress!, count: T * C) }
        }
        hits += B
        let logits = Tensor(shape: [B * T, V])
        Gemm.sgemm(transA: false, transB: true, m: B * T, n: V, k: C, a: hid.ptr, lda: C,
                   b: decoder.parameters[headName]!.ptr, ldb: C, beta: 0, c: logits.ptr, ldc: V)
        let nll = Tensor(shape: [B * T])
        let count = batch.trainedTokens
        let scale = gradientScale ?? (count > 0 ? 1 / Float(count) : 0)
        batch.targets.withUnsafeBufferPointer { t in
            CrossEntropy.forwardBackward(logits: logits.ptr, targets: t.baseAddress!, rows: B * T, vocab: V,
                                         nll: nll.ptr, dlogits: dl.ptr, scale: scale)
        }
        var sum = 0.0
        for i in 0..<(B * T) { sum += Double(nll[i]) }
        batchRows = B * T
        let correct = measureAccuracy ? CausalLMModel.correctPredictions(logits, batch: batch, vocab: V) : nil
        return BatchLoss(nllSum: sum, count: count, correct: correct)
    }

    /// dW_head[V, C] += dlogitsᵀ · hidden.
    func backward() {
        guard let hid = hidden, let dl = dlogits, batchRows > 0 else { return }
        decoder.allocateGradients()
        guard let g = decoder.gradients[headName] else { return }
        let C = decoder.config.hiddenSize, V = decoder.config.vocabSize
        Gemm.sgemm(transA: true, transB: false, m: V, n: C, k: batchRows, a: dl.ptr, lda: V,
                   b: hid.ptr, ldb: C, beta: 1, c: g.ptr, ldc: C)
    }
}
