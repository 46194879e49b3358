import Foundation
import FinchData

/// Held-out metrics of a causal LM.
public struct EvalResult: Codable, Equatable, Sendable {
    /// Mean NLL per trained token.
    public var loss: Double
    public var perplexity: Double
    /// Fraction of trained tokens predicted exactly (arg-max); nil when the method cannot measure it.
    public var accuracy: Double?
    /// Trained tokens evaluated.
    public var tokens: Int

    /// The metrics under `prefix` (`eval_loss`, `eval_ppl`, `eval_accuracy`, `eval_tokens`).
    public func record(prefix: String = "eval_") -> [String: Any] {
        var r: [String: Any] = [prefix + "loss": loss, prefix + "ppl": perplexity, prefix + "tokens": tokens]
        if let a = accuracy { r[prefix + "accuracy"] = a }
        return r
    }
}

/// Streaming evaluation: one micro-batch at a time, so memory does not grow with the evaluation set.
public enum CausalLMEvaluation {
    /// Evaluates every entry of `reader` (from its start, in stored order) or the first `maxBatches`
    /// micro-batches. Leaves gradients untouched; the reader's cursor ends wherever the pass ended.
    public static func evaluate(_ model: CausalLMModel, reader: DatasetReader, batchSize: Int, seqLen: Int,
                                maxBatches: Int = 0) throws -> EvalResult {
        reader.cursor = Cursor()
        PEFTMethods.setTraining(model.peft, false)
        defer { PEFTMethods.setTraining(model.peft, true) }
        var nll = 0.0, count = 0, correct = 0, accuracyKnown = true
        var remaining = reader.count, batches = 0
        while remaining > 0 && (maxBatches <= 0 || batches < maxBatches) {
            let n = min(batchSize, remaining)
            var examples: [Example] = []
            for _ in 0..<n { examples.append(try reader.next()) }
            remaining -= n
            batches += 1
            let batch = Batch(examples, length: seqLen, padID: reader.padID)
            let r = model.loss(batch, gradientScale: nil, measureAccuracy: true)
            nll += r.nllSum
            count += r.count
            if let c = r.correct { correct += c } else { accuracyKnown = false }
        }
        let loss = count > 0 ? nll / Double(count) : .nan
        return EvalResult(loss: loss, perplexity: exp(loss), accuracy: accuracyKnown && count > 0 ? Double(correct) / Double(count) : nil,
                          tokens: count)
    }
}
