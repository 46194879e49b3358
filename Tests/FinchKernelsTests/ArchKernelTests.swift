import XCTest
import Foundation
import FinchKernels

/// Kernels of the newer architectures: per-head RMSNorm on strided rows (Qwen3 / Gemma 3 q_norm, k_norm),
/// GeGLU with the tanh GELU (Gemma 3 MLP), RoPE over given inverse frequencies.
final class ArchKernelTests: XCTestCase {
    func testPerHeadRMSNormMatchesRowRMSNorm() {
        var rng = MKRNG(21)
        for dim in [1, 7, 16, 33] {
            let rows = 5, heads = 3, ld = heads * dim + 4, eps: Float = 1e-6
            let x = rng.tensor([rows, ld], scale: 2), w = rng.tensor([dim]), dy = rng.tensor([rows, ld])
            let y = rng.tensor([rows, ld]), rstd = Tensor(shape: [rows * heads])
            RMSNorm.forwardHeads(x: x.ptr, ldx: ld, weight: w.ptr, y: y.ptr, ldy: ld, rstd: rstd.ptr, rows: rows, heads: heads, dim: dim, eps: eps)
            // Reference: the row kernel on each head slice.
            let xc = Tensor(shape: [rows * heads, dim]), dyc = Tensor(shape: [rows * heads, dim])
            for r in 0..<rows { for h in 0..<heads { for i in 0..<dim {
                xc[(r * heads + h) * dim + i] = x[r * ld + h * dim + i]; dyc[(r * heads + h) * dim + i] = dy[r * ld + h * dim + i]
            } } }
            let yc = Tensor(shape: xc.shape), rc = Tensor(shape: [rows * heads]), dxc = Tensor(shape: xc.shape), dwc = Tensor(shape: [dim])
            RMSNorm.forward(x: xc.ptr, weight: w.ptr, y: yc.ptr, rstd: rc.ptr, rows: rows * heads, dim: dim, eps: eps)
            RMSNorm.backward(dy: dyc.ptr, x: xc.ptr, weight: w.ptr, rstd: rc.ptr, dx: dxc.ptr, dweight: dwc.ptr, rows: rows * heads, dim: dim)
            var got = [Float]()
            for r in 0..<rows { for h in 0..<heads { for i in 0..<dim { got.append(y[r * ld + h * dim + i]) } } }
            mkAssertClose(got, yc.array, "head rmsnorm y dim \(dim)")
            // Backward in place (dx aliases dy), weight gradient accumulated.
            let dw = Tensor(shape: [dim])
            RMSNorm.backwardHeads(dy: dy.ptr, ldy: ld, x: x.ptr, ldx: ld, weight: w.ptr, rstd: rstd.ptr, dx: dy.ptr, lddx: ld,
                                  dweight: dw.ptr, rows: rows, heads: heads, dim: dim)
            got = []
            for r in 0..<rows { for h in 0..<heads { for i in 0..<dim { got.append(dy[r * ld + h * dim + i]) } } }
            mkAssertClose(got, dxc.array, "head rmsnorm dx dim \(dim)")
            mkAssertClose(dw.array, dwc.array, "head rmsnorm dw dim \(dim)")
        }
    }

    func testGeGLU() {
        func gelu(_ x: Double) -> Double { 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))) }
        func d(_ x: Double) -> Double { (gelu(x + 1e-5) - gelu(x - 1e-5)) / 2e-5 }
        var rng = MKRNG(22)
        for n in [1, 7, 16, 33] {
            let rows = 3
            let gu = rng.tensor([rows, 2 * n], scale: 4), dOut = rng.tensor([rows, n])
            let out = Tensor(shape: [rows, n]), dgu = Tensor(shape: [rows, 2 * n])
            GELU.gegluForward(gateUp: gu.ptr, out: out.ptr, rows: rows, width: n)
            GELU.gegluBackward(dOut: dOut.ptr, gateUp: gu.ptr, dGateUp: dgu.ptr, rows: rows, width: n)
            var ro = [Float](), rd = [Float](repeating: 0, count: rows * 2 * n)
            for r in 0..<rows {
                for j in 0..<n {
                    let g = Double(gu[r * 2 * n + j]), u = Double(gu[r * 2 * n + n + j]), dv = Double(dOut[r * n + j])
                    ro.append(Float(gelu(g) * u))
                    rd[r * 2 * n + j] = Float(dv * u * d(g))
                    rd[r * 2 * n + n + j] = Float(dv * gelu(g))
                }
            }
            mkAssertClose(out.array, ro, abs: 1e-6, rel: 1e-5, "geglu n \(n)")
            mkAssertClose(dgu.array, rd, abs: 1e-5, rel: 1e-4, "geglu' n \(n)")
        }
    }

    /// The default-frequency initialiser and the explicit one agree exactly.
    func testRopeInverseFrequencies() {
        let inv = RopeTable.defaultInverseFrequencies(headDim: 8, theta: 10000)
        XCTAssertEqual(inv.count, 4)
        XCTAssertEqual(inv[0], 1)
        let a = RopeTable(headDim: 8, theta: 10000, maxPositions: 6), b = RopeTable(headDim: 8, inverseFrequencies: inv, maxPositions: 6)
        let x = Tensor(shape: [6, 8], values: (0..<48).map { Float($0) * 0.1 - 2 }), y = x.copy()
        let pos: [Int32] = [0, 1, 2, 3, 4, 5]
        pos.withUnsafeBufferPointer {
            a.apply(x.ptr, ld: 8, rows: 6, heads: 1, positions: $0.baseAddress!)
            b.apply(y.ptr, ld: 8, rows: 6, heads: 1, positions: $0.baseAddress!)
        }
        XCTAssertEqual(x.array, y.array)
    }
}
