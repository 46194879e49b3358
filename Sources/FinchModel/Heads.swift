import Foundation
import FinchKernels

/// A one-output linear head on the decoder trunk's final-norm hidden states: `y = h · wᵀ (+ b)`.
///
/// As a reward / score head it is HF's `score` Linear of `LlamaForSequenceClassification` (`num_labels = 1`,
/// no bias), applied at one pooled position per row; as a PPO value head it is applied at every position
/// (with a bias). The gradient w.r.t. `weight` / `bias` accumulates into `weightGradient` / `biasGradient`
/// until `zeroGradients()`.
public final class ScalarHead {
    /// HF-style name of the weight (`score.weight`, `v_head.weight`).
    public let name: String
    /// [1, C].
    public let weight: Tensor
    public let bias: Tensor?
    public let weightGradient: Tensor
    public let biasGradient: Tensor?

    /// A head over an existing [1, C] weight (shared, not copied), e.g. `decoder.parameters["score.weight"]`.
    public init(name: String, weight: Tensor, bias: Tensor? = nil) {
        precondition(weight.shape.count == 2 && weight.shape[0] == 1, "ScalarHead: weight must be [1, C], got \(weight.shape)")
        self.name = name
        self.weight = weight
        self.bias = bias
        weightGradient = Tensor(shape: weight.shape)
        biasGradient = bias.map { Tensor(shape: $0.shape) }
    }

    /// A new head, weight normal(0, std) from `seed` (HF initialises `score` with initializer_range 0.02),
    /// bias zero when `bias` is true.
    public convenience init(name: String, hiddenSize: Int, bias: Bool = false, std: Float = 0.02, seed: UInt64) {
        let w = Tensor(shape: [1, hiddenSize])
        var rng = SeededRNG(seed: seed)
        for i in 0..<hiddenSize { w[i] = rng.weightNormal() * std }
        self.init(name: name, weight: w, bias: bias ? Tensor(shape: [1]) : nil)
    }

    public var hiddenSize: Int { weight.shape[1] }

    /// Weight (and bias, named `<prefix>.bias`) under their names.
    public var parameters: [String: Tensor] {
        var p = [name: weight]
        if let b = bias { p[biasName] = b }
        return p
    }

    public var gradients: [String: Tensor] {
        var g = [name: weightGradient]
        if let b = biasGradient { g[biasName] = b }
        return g
    }

    var biasName: String { name.hasSuffix(".weight") ? String(name.dropLast(7)) + ".bias" : name + ".bias" }

    public func zeroGradients() { weightGradient.zero(); biasGradient?.zero() }

    /// Outputs at the given flat row indices (`b·T + t`) of a [rows, C] hidden buffer.
    public func forward(hidden: UnsafePointer<Float>, rows: [Int]) -> [Float] {
        let C = hiddenSize
        let b0 = bias?[0] ?? 0
        return rows.map { r in
            var s: Float = 0
            let h = hidden + r * C
            for c in 0..<C { s += h[c] * weight[c] }
            return s + b0
        }
    }

    /// Outputs at every one of `count` rows.
    public func forwardAll(hidden: UnsafePointer<Float>, count: Int) -> [Float] {
        forward(hidden: hidden, rows: Array(0..<count))
    }

    /// Backward of `forward(hidden:rows:)`: `dHidden[row] += dOut · w` for each row, and the weight/bias
    /// gradients accumulate `dOut · h`. `dHidden` is [rows, C] and is not cleared here.
    public func backward(hidden: UnsafePointer<Float>, rows: [Int], dOut: [Float], dHidden: UnsafeMutablePointer<Float>) {
        precondition(rows.count == dOut.count, "ScalarHead.backward: \(dOut.count) gradients for \(rows.count) rows")
        let C = hiddenSize
        for (i, r) in rows.enumerated() {
            let g = dOut[i]
            if g == 0 { continue }
            let h = hidden + r * C, dh = dHidden + r * C
            for c in 0..<C {
                dh[c] += g * weight[c]
                weightGradient[c] += g * h[c]
            }
            if let bg = biasGradient { bg[0] += g }
        }
    }
}

/// The reward / sequence-classification head (`score.weight`, no bias).
public typealias ScoreHead = ScalarHead
/// PPO's value head on the policy trunk (`v_head.weight` + bias).
public typealias ValueHead = ScalarHead
