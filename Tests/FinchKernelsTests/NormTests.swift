import XCTest
import FinchKernels

/// LayerNorm and RMSNorm against scalar Double references (forward and backward).
final class NormTests: XCTestCase {
    func testLayerNormMatchesReference() {
        var rng = MKRNG(1)
        for dim in mkOddSizes {
            let rows = 5, eps: Float = 1e-5
            let x = rng.tensor([rows, dim], scale: 2), w = rng.tensor([dim]), b = rng.tensor([dim])
            let dy = rng.tensor([rows, dim])
            let y = Tensor(shape: [rows, dim]), mean = Tensor(shape: [rows]), rstd = Tensor(shape: [rows])
            LayerNorm.forward(x: x.ptr, weight: w.ptr, bias: b.ptr, y: y.ptr, mean: mean.ptr, rstd: rstd.ptr, rows: rows, dim: dim, eps: eps)
            let dx = rng.tensor([rows, dim]), dw = rng.tensor([dim]), db = rng.tensor([dim])
            let dx0 = dx.array, dw0 = dw.array, db0 = db.array
            LayerNorm.backward(dy: dy.ptr, x: x.ptr, weight: w.ptr, mean: mean.ptr, rstd: rstd.ptr, dx: dx.ptr,
                               dweight: dw.ptr, dbias: db.ptr, rows: rows, dim: dim)
            var ry = [Float](), rdx = dx0, rdw = dw0, rdb = db0
            for r in 0..<rows {
                let xr = (0..<dim).map { Double(x[r * dim + $0]) }
                let m = xr.reduce(0, +) / Double(dim)
                let v = xr.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(dim)
                let s = 1 / (v + Double(eps)).squareRoot()
                let xh = xr.map { ($0 - m) * s }
                for i in 0..<dim { ry.append(Float(xh[i] * Double(w[i]) + Double(b[i]))) }
                let dn = (0..<dim).map { Double(dy[r * dim + $0]) * Double(w[$0]) }
                let a = dn.reduce(0, +) / Double(dim)
                let c = zip(dn, xh).map { $0 * $1 }.reduce(0, +) / Double(dim)
                for i in 0..<dim {
                    rdx[r * dim + i] += Float(s * (dn[i] - a - xh[i] * c))
                    rdw[i] += Float(Double(dy[r * dim + i]) * xh[i])
                    rdb[i] += dy[r * dim + i]
                }
            }
            mkAssertClose(y.array, ry, "layernorm y dim \(dim)")
            mkAssertClose(dx.array, rdx, "layernorm dx dim \(dim)")
            mkAssertClose(dw.array, rdw, "layernorm dw dim \(dim)")
            mkAssertClose(db.array, rdb, "layernorm db dim \(dim)")
        }
    }

    func testRMSNormMatchesReference() {
        var rng = MKRNG(2)
        for dim in mkOddSizes {
            let rows = 4, eps: Float = 1e-6
            let x = rng.tensor([rows, dim], scale: 2), w = rng.tensor([dim]), dy = rng.tensor([rows, dim])
            let y = Tensor(shape: [rows, dim]), rstd = Tensor(shape: [rows])
            RMSNorm.forward(x: x.ptr, weight: w.ptr, y: y.ptr, rstd: rstd.ptr, rows: rows, dim: dim, eps: eps)
            let dx = Tensor(shape: [rows, dim]), dw = Tensor(shape: [dim])
            RMSNorm.backward(dy: dy.ptr, x: x.ptr, weight: w.ptr, rstd: rstd.ptr, dx: dx.ptr, dweight: dw.ptr, rows: rows, dim: dim)
            var ry = [Float](), rdx = [Float](repeating: 0, count: rows * dim), rdw = [Float](repeating: 0, count: dim)
            for r in 0..<rows {
                let xr = (0..<dim).map { Double(x[r * dim + $0]) }
                func f(_ xs: [Double], _ i: Int) -> Double {   // y_i as a function of the row
                    let ms = xs.map { $0 * $0 }.reduce(0, +) / Double(dim)
                    return Double(w[i]) * xs[i] / (ms + Double(eps)).squareRoot()
                }
                for i in 0..<dim { ry.append(Float(f(xr, i))) }
                let s = 1 / (xr.map { $0 * $0 }.reduce(0, +) / Double(dim) + Double(eps)).squareRoot()
                let g = (0..<dim).map { Double(dy[r * dim + $0]) * Double(w[$0]) }
                let d = zip(g, xr).map { $0 * $1 }.reduce(0, +) / Double(dim)
                for i in 0..<dim {
                    rdx[r * dim + i] = Float(s * g[i] - s * s * s * d * xr[i])
                    rdw[i] += Float(Double(dy[r * dim + i]) * xr[i] * s)
                }
            }
            mkAssertClose(y.array, ry, "rmsnorm y dim \(dim)")
            mkAssertClose(dx.array, rdx, "rmsnorm dx dim \(dim)")
            mkAssertClose(dw.array, rdw, "rmsnorm dw dim \(dim)")
        }
    }
}
