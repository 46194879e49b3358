import Foundation
import FinchKernels

/// PEFT's prefix reparametrisation: `embedding [n, tokenDim] → Linear(tokenDim → hidden) → tanh →
/// Linear(hidden → out)`, evaluated on every virtual token index. Names follow PEFT's state dict
/// (`prompt_encoder.default.embedding.weight`, `.transform.0.weight`, ...).
public final class PrefixProjection {
    public static let prefix = "prompt_encoder.default."
    public let embedding: Tensor            // [n, tokenDim]
    public let w1: Tensor, b1: Tensor       // [hidden, tokenDim], [hidden]
    public let w2: Tensor, b2: Tensor       // [out, hidden], [out]
    public let parameters: [String: Tensor]
    public let gradients: [String: Tensor]
    /// tanh activations of the last forward [n, hidden].
    private let act: Tensor

    public init(virtualTokens n: Int, tokenDim: Int, hidden: Int, out: Int, rng: inout SeededRNG) {
        embedding = Tensor(shape: [n, tokenDim])
        for i in 0..<embedding.count { embedding[i] = rng.weightNormal() }
        func linear(_ o: Int, _ i: Int) -> (Tensor, Tensor) {
            let w = Tensor(shape: [o, i]), b = Tensor(shape: [o]), bound = 1 / Float(i).squareRoot()
            for k in 0..<w.count { w[k] = Float(rng.uniformDouble() * 2 - 1) * bound }
            for k in 0..<b.count { b[k] = Float(rng.uniformDouble() * 2 - 1) * bound }
            return (w, b)
        }
        (w1, b1) = linear(hidden, tokenDim)
        (w2, b2) = linear(out, hidden)
        act = Tensor(shape: [n, hidden])
        let p = Self.prefix
        parameters = [p + "embedding.weight": embedding, p + "transform.0.weight": w1, p + "transform.0.bias": b1,
                      p + "transform.2.weight": w2, p + "transform.2.bias": b2]
        gradients = parameters.mapValues { Tensor(shape: $0.shape) }
    }

    var n: Int { embedding.shape[0] }
    var tokenDim: Int { embedding.shape[1] }
    var hidden: Int { w1.shape[0] }
    var out: Int { w2.shape[0] }

    /// table[n, out] = tanh(E·W1ᵀ + b1)·W2ᵀ + b2.
    public func forward(into table: Tensor) {
        Gemm.sgemm(transA: false, transB: true, m: n, n: hidden, k: tokenDim, a: embedding.ptr, lda: tokenDim,
                   b: w1.ptr, ldb: tokenDim, beta: 0, c: act.ptr, ldc: hidden)
        for j in 0..<n { for h in 0..<hidden { act.ptr[j * hidden + h] = tanhf(act.ptr[j * hidden + h] + b1.ptr[h]) } }
        Gemm.sgemm(transA: false, transB: true, m: n, n: out, k: hidden, a: act.ptr, lda: hidden,
                   b: w2.ptr, ldb: hidden, beta: 0, c: table.ptr, ldc: out)
        for j in 0..<n { VectorMath.add(b2.ptr, into: table.ptr + j * out, out) }
    }

    /// Accumulates every parameter's gradient from dL/d(table) (uses the activations of the last forward).
    public func backward(dOut: Tensor) {
        let p = Self.prefix
        let gE = gradients[p + "embedding.weight"]!, gW1 = gradients[p + "transform.0.weight"]!
        let gB1 = gradients[p + "transform.0.bias"]!, gW2 = gradients[p + "transform.2.weight"]!
        let gB2 = gradients[p + "transform.2.bias"]!
        // dW2[out, hidden] += dOutᵀ·act; db2 += Σ dOut; dAct = dOut·W2
        Gemm.sgemm(transA: true, transB: false, m: out, n: hidden, k: n, a: dOut.ptr, lda: out, b: act.ptr, ldb: hidden,
                   beta: 1, c: gW2.ptr, ldc: hidden)
        VectorMath.addColumnSums(dOut.ptr, rows: n, n: out, ldx: out, into: gB2.ptr)
        let dPre = Tensor(shape: [n, hidden])
        Gemm.sgemm(transA: false, transB: false, m: n, n: hidden, k: out, a: dOut.ptr, lda: out, b: w2.ptr, ldb: hidden,
                   beta: 0, c: dPre.ptr, ldc: hidden)
        for i in 0..<dPre.count { let t = act.ptr[i]; dPre.ptr[i] *= 1 - t * t }
        VectorMath.addColumnSums(dPre.ptr, rows: n, n: hidden, ldx: hidden, into: gB1.ptr)
        Gemm.sgemm(transA: true, transB: false, m: hidden, n: tokenDim, k: n, a: dPre.ptr, lda: hidden, b: embedding.ptr,
                   ldb: tokenDim, beta: 1, c: gW1.ptr, ldc: tokenDim)
        Gemm.sgemm(transA: false, transB: false, m: n, n: tokenDim, k: hidden, a: dPre.ptr, lda: hidden, b: w1.ptr,
                   ldb: tokenDim, beta: 1, c: gE.ptr, ldc: tokenDim)
    }

    public func zeroGradients() { gradients.values.forEach { $0.zero() } }
}
