import Foundation
import FinchKernels
import FinchModel

/// A reward model: a decoder trunk (plain or with LoRA) and a `ScoreHead` read at the last non-pad token
/// of each row, as transformers' `LlamaForSequenceClassification` (`num_labels = 1`) pools: the rightmost
/// position whose id differs from `padID`.
///
/// The decoder's config has `numLabels = 1`, so `score.weight` lives in `decoder.parameters` (and is saved
/// with it); the head shares that tensor and keeps its own gradient.
public final class RewardModel {
    public let model: CausalLMModel
    public let head: ScoreHead
    public let padID: Int
    private var last: (hidden: Tensor, rows: [Int], batch: Int, length: Int)?

    public var decoder: Decoder { model.decoder }

    /// Wraps a decoder whose config has `numLabels == 1` (see `sequenceClassifier(from:seed:)`).
    public init(decoder: Decoder, peft: PEFTModule? = nil, padID: Int) throws {
        guard decoder.config.numLabels == 1, let w = decoder.parameters["score.weight"] else {
            throw TrainingError("reward model: the decoder has no score head (num_labels must be 1)")
        }
        decoder.trainable.remove("score.weight")   // the head keeps its own gradient
        self.model = CausalLMModel(decoder: decoder, peft: peft)
        self.head = ScoreHead(name: "score.weight", weight: w)
        self.padID = padID
    }

    /// A `LlamaForSequenceClassification` decoder from a causal-LM (or reward) model's weights: the LM head is
    /// dropped and a new `score.weight` [1, C] (normal(0, 0.02)) added unless the folder already has one.
    public static func sequenceClassifier(config: DecoderConfig, parameters: [String: Tensor], padID: Int, seed: UInt64) throws -> Decoder {
        guard [.llama, .qwen2, .qwen3].contains(config.flavour) else {
            throw TrainingError("reward model: only Llama / Qwen2 / Qwen3 models can be saved as …ForSequenceClassification (this model is \(config.flavour.rawValue))")
        }
        if let n = config.numLabels, n != 1 {
            throw TrainingError("reward model: the model has num_labels = \(n); a reward model needs 1")
        }
        var c = config
        var p = parameters
        c.numLabels = 1
        c.padTokenId = c.padTokenId ?? padID
        p["lm_head.weight"] = nil
        if p["score.weight"] == nil {
            p["score.weight"] = ScoreHead(name: "score.weight", hiddenSize: c.hiddenSize, seed: seed).weight
        }
        return try Decoder(config: c, parameters: p)
    }

    /// Trainable tensors: the trunk's (decoder names or adapter keys) and `score.weight`.
    public var trainableParameters: [String: Tensor] {
        model.trainableParameters.merging(head.parameters) { a, _ in a }
    }

    public var gradients: [String: Tensor] { model.gradients.merging(head.gradients) { a, _ in a } }

    public func zeroGradients() { model.zeroGradients(); head.zeroGradients() }
    public func allocateGradients() { model.allocateGradients() }

    /// Index of the pooled token of each row: the rightmost id ≠ pad (HF's rule; 0 when all are pad... as HF's argmax).
    public static func pooledPositions(ids: [Int], batch B: Int, length T: Int, padID: Int) -> [Int] {
        (0..<B).map { b in
            var t = T - 1
            while t > 0 && ids[b * T + t] == padID { t -= 1 }
            return t
        }
    }

    /// Rewards of a right-padded batch [B, T] (mask = ids ≠ pad).
    public func rewards(ids: [Int], batch B: Int, length T: Int) -> [Float] {
        let mask = ids.map { $0 == padID ? 0 : 1 }
        let hidden: Tensor
        if let p = model.peft {
            hidden = p.forwardHidden(decoder, ids: ids, batch: B, length: T, attentionMask: mask, positionIds: nil)
        } else {
            hidden = decoder.forwardHidden(ids: ids, batch: B, length: T, attentionMask: mask)
        }
        let pos = Self.pooledPositions(ids: ids, batch: B, length: T, padID: padID)
        let rows = pos.enumerated().map { $0.offset * T + $0.element }
        last = (hidden, rows, B, T)
        return head.forward(hidden: hidden.ptr, rows: rows)
    }

    /// Rewards of sequences padded to one length on the right (as in training) or on the left. Left padding shifts
    /// the positions so every real token keeps its own, and masks the padding out of attention, so a sequence scores
    /// the same whatever its batch-mates and padding side (`RewardReportTests`).
    public func rewards(sequences: [[Int]], leftPadded: Bool = false) -> [Float] {
        guard leftPadded else {
            let (ids, T, _) = PreferencePairs.pad(sequences, padID: padID)
            return rewards(ids: ids, batch: sequences.count, length: T)
        }
        let B = sequences.count, T = max(1, sequences.map(\.count).max() ?? 1)
        var ids: [Int] = [], mask: [Int] = [], positions: [Int] = [], rows: [Int] = []
        for (b, s) in sequences.enumerated() {
            let front = T - s.count
            ids += [Int](repeating: padID, count: front) + s
            mask += [Int](repeating: 0, count: front) + s.map { $0 == padID ? 0 : 1 }
            positions += [Int](repeating: 0, count: front) + Array(0..<s.count)
            var t = s.count - 1
            while t > 0 && s[t] == padID { t -= 1 }   // the pooled token: the rightmost id ≠ pad, as `pooledPositions`
            rows.append(b * T + front + max(0, t))
        }
        let hidden: Tensor
        if let p = model.peft {
            hidden = p.forwardHidden(decoder, ids: ids, batch: B, length: T, attentionMask: mask, positionIds: positions)
        } else {
            hidden = decoder.forwardHidden(ids: ids, batch: B, length: T, attentionMask: mask, positionIds: positions)
        }
        last = (hidden, rows, B, T)
        return head.forward(hidden: hidden.ptr, rows: rows)
    }

    /// Score of every position of the last batch (debugging, pooling checks).
    public func allPositionScores() -> [Float] {
        guard let l = last else { return [] }
        return head.forwardAll(hidden: l.hidden.ptr, count: l.batch * l.length)
    }

    /// Backward from d loss / d rewards of the last `rewards` call.
    public func backward(dRewards: [Float]) {
        guard let l = last else { preconditionFailure("RewardModel.backward: call rewards first") }
        let dHidden = Tensor(shape: [l.batch * l.length, decoder.config.hiddenSize])
        head.backward(hidden: l.hidden.ptr, rows: l.rows, dOut: dRewards, dHidden: dHidden.ptr)
        if let p = model.peft { p.backwardHidden(decoder, dHidden) } else { decoder.backwardHidden(dHidden) }
    }

    /// The full weights (LoRA merged into the base) under HF names, `score.weight` included.
    public func mergedParameters() throws -> [String: Tensor] {
        if let lora = model.peft as? LoRAModule {
            lora.enabled = false
            defer { lora.enabled = true }
            return try lora.mergedParameters(decoder.parameters, config: decoder.config)
        }
        return decoder.parameters
    }

    /// Writes a folder transformers loads as `LlamaForSequenceClassification` (num_labels = 1, pad_token_id set).
    public func save(to folder: URL, tokenizer: URL?, templateName: String?) throws {
        var c = decoder.config
        c.padTokenId = padID
        try HFModelFolder.save(config: c, parameters: try mergedParameters(), to: folder,
                               finchInfo: FinchModelInfo(flavour: c.flavour, chatTemplate: templateName),
                               tokenizerModel: tokenizer)
    }
}
