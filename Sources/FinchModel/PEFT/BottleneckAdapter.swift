import Foundation
import FinchKernels

/// The nonlinearity inside a bottleneck adapter.
public enum AdapterActivation: String, Sendable, CaseIterable { case relu, gelu }

/// One bottleneck adapter (Houlsby et al.): `h ← h + up(f(down(h)))` on a sub-layer's output, with
/// `down: C → size`, `up: size → C` (Linear layouts `[out, in]`, with biases). Stateless between forward
/// and backward: the backward recomputes the small bottleneck activations from the input it is given.
public final class BottleneckAdapter: ResidualAdapter {
    public let downWeight: Tensor, downBias: Tensor, upWeight: Tensor, upBias: Tensor
    public let gradDownWeight: Tensor, gradDownBias: Tensor, gradUpWeight: Tensor, gradUpBias: Tensor
    public let activation: AdapterActivation
    public var size: Int { downWeight.shape[0] }
    public var dim: Int { downWeight.shape[1] }

    public init(downWeight: Tensor, downBias: Tensor, upWeight: Tensor, upBias: Tensor, activation: AdapterActivation) {
        self.downWeight = downWeight; self.downBias = downBias; self.upWeight = upWeight; self.upBias = upBias
        self.activation = activation
        gradDownWeight = Tensor(shape: downWeight.shape); gradDownBias = Tensor(shape: downBias.shape)
        gradUpWeight = Tensor(shape: upWeight.shape); gradUpBias = Tensor(shape: upBias.shape)
    }

    /// down: uniform ±1/√dim (torch's Linear default), up: normal(0, upStd) so the block starts near the identity.
    public convenience init(dim: Int, size: Int, activation: AdapterActivation, upStd: Float = 1e-3, rng: inout SeededRNG) {
        let dw = Tensor(shape: [size, dim]), uw = Tensor(shape: [dim, size]), bound = 1 / Float(dim).squareRoot()
        for i in 0..<dw.count { dw[i] = Float(rng.uniformDouble() * 2 - 1) * bound }
        for i in 0..<uw.count { uw[i] = rng.weightNormal() * upStd }
        self.init(downWeight: dw, downBias: Tensor(shape: [size]), upWeight: uw, upBias: Tensor(shape: [dim]), activation: activation)
    }

    /// pre[rows, size] = input·Dᵀ + bd.
    private func down(_ input: UnsafePointer<Float>, rows: Int, into pre: Tensor) {
        Gemm.sgemm(transA: false, transB: true, m: rows, n: size, k: dim, a: input, lda: dim, b: downWeight.ptr, ldb: dim,
                   beta: 0, c: pre.ptr, ldc: size)
        for r in 0..<rows { VectorMath.add(downBias.ptr, into: pre.ptr + r * size, size) }
    }

    private func activate(_ pre: Tensor, into act: Tensor) {
        switch activation {
        case .relu: for i in 0..<pre.count { act.ptr[i] = max(pre.ptr[i], 0) }
        case .gelu: GELU.forward(x: pre.ptr, y: act.ptr, count: pre.count)
        }
    }

    public func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, rows: Int, dim C: Int) {
        precondition(C == dim, "BottleneckAdapter: width \(C), adapter built for \(dim)")
        let pre = Tensor(shape: [rows, size]), act = Tensor(shape: [rows, size])
        down(input, rows: rows, into: pre)
        activate(pre, into: act)
        Gemm.sgemm(transA: false, transB: true, m: rows, n: dim, k: size, a: act.ptr, lda: size, b: upWeight.ptr, ldb: size,
                   beta: 1, c: output, ldc: dim)
        for r in 0..<rows { VectorMath.add(upBias.ptr, into: output + r * dim, dim) }
    }

    public func backward(input: UnsafePointer<Float>, dOutput: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>,
                         rows: Int, dim C: Int) {
        let pre = Tensor(shape: [rows, size]), act = Tensor(shape: [rows, size]), dAct = Tensor(shape: [rows, size])
        down(input, rows: rows, into: pre)
        activate(pre, into: act)
        // up: dU[dim, size] += dOutᵀ·act; dbu += Σ dOut; dAct = dOut·U
        Gemm.sgemm(transA: true, transB: false, m: dim, n: size, k: rows, a: dOutput, lda: dim, b: act.ptr, ldb: size,
                   beta: 1, c: gradUpWeight.ptr, ldc: size)
        VectorMath.addColumnSums(dOutput, rows: rows, n: dim, ldx: dim, into: gradUpBias.ptr)
        Gemm.sgemm(transA: false, transB: false, m: rows, n: size, k: dim, a: dOutput, lda: dim, b: upWeight.ptr, ldb: size,
                   beta: 0, c: dAct.ptr, ldc: size)
        let dPre = Tensor(shape: [rows, size])
        switch activation {
        case .relu: for i in 0..<pre.count { dPre.ptr[i] = pre.ptr[i] > 0 ? dAct.ptr[i] : 0 }
        case .gelu: GELU.backward(dy: dAct.ptr, x: pre.ptr, dx: dPre.ptr, count: pre.count)
        }
        // down: dD[size, dim] += dPreᵀ·input; dbd += Σ dPre; dInput += dPre·D
        Gemm.sgemm(transA: true, transB: false, m: size, n: dim, k: rows, a: dPre.ptr, lda: size, b: input, ldb: dim,
                   beta: 1, c: gradDownWeight.ptr, ldc: dim)
        VectorMath.addColumnSums(dPre.ptr, rows: rows, n: size, ldx: size, into: gradDownBias.ptr)
        Gemm.sgemm(transA: false, transB: false, m: rows, n: dim, k: size, a: dPre.ptr, lda: size, b: downWeight.ptr, ldb: dim,
                   beta: 1, c: dInput, ldc: dim)
    }

    /// name suffix → tensor, and the matching gradients.
    var namedParameters: [(String, Tensor, Tensor)] {
        [("down_proj.weight", downWeight, gradDownWeight), ("down_proj.bias", downBias, gradDownBias),
         ("up_proj.weight", upWeight, gradUpWeight), ("up_proj.bias", upBias, gradUpBias)]
    }

    public func zeroGradients() { for (_, _, g) in namedParameters { g.zero() } }
}
