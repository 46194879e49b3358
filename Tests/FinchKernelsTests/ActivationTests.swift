import XCTest
import Foundation
import FinchKernels

/// GELU (tanh), SiLU and SwiGLU against scalar Double references.
final class ActivationTests: XCTestCase {
    func gelu(_ x: Double) -> Double { 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))) }
    func silu(_ x: Double) -> Double { x / (1 + exp(-x)) }
    func d(_ f: (Double) -> Double, _ x: Double) -> Double { (f(x + 1e-5) - f(x - 1e-5)) / 2e-5 }

    func testGELU() {
        var rng = MKRNG(3)
        for n in mkOddSizes + [20000] {
            let x = rng.tensor([n], scale: 6), dy = rng.tensor([n])
            let y = Tensor(shape: [n]), dx = Tensor(shape: [n])
            GELU.forward(x: x.ptr, y: y.ptr, count: n)
            GELU.backward(dy: dy.ptr, x: x.ptr, dx: dx.ptr, count: n)
            mkAssertClose(y.array, x.array.map { Float(gelu(Double($0))) }, abs: 1e-6, rel: 1e-5, "gelu n \(n)")
            mkAssertClose(dx.array, (0..<n).map { Float(Double(dy[$0]) * d(gelu, Double(x[$0]))) }, abs: 1e-5, rel: 1e-4, "gelu' n \(n)")
        }
    }

    func testSiLUAndSwiGLU() {
        var rng = MKRNG(4)
        for n in mkOddSizes {
            let x = rng.tensor([n], scale: 8), dy = rng.tensor([n])
            let y = Tensor(shape: [n]), dx = Tensor(shape: [n])
            SiLU.forward(x: x.ptr, y: y.ptr, count: n)
            SiLU.backward(dy: dy.ptr, x: x.ptr, dx: dx.ptr, count: n)
            mkAssertClose(y.array, x.array.map { Float(silu(Double($0))) }, abs: 1e-6, rel: 1e-5, "silu n \(n)")
            mkAssertClose(dx.array, (0..<n).map { Float(Double(dy[$0]) * d(silu, Double(x[$0]))) }, abs: 1e-5, rel: 1e-4, "silu' n \(n)")

            let rows = 3
            let gu = rng.tensor([rows, 2 * n], scale: 4), dOut = rng.tensor([rows, n])
            let out = Tensor(shape: [rows, n]), dgu = Tensor(shape: [rows, 2 * n])
            SiLU.swigluForward(gateUp: gu.ptr, out: out.ptr, rows: rows, width: n)
            SiLU.swigluBackward(dOut: dOut.ptr, gateUp: gu.ptr, dGateUp: dgu.ptr, rows: rows, width: n)
            var ro = [Float](), rd = [Float](repeating: 0, count: rows * 2 * n)
            for r in 0..<rows {
                for j in 0..<n {
                    let g = Double(gu[r * 2 * n + j]), u = Double(gu[r * 2 * n + n + j]), dv = Double(dOut[r * n + j])
                    ro.append(Float(silu(g) * u))
                    rd[r * 2 * n + j] = Float(dv * u * d(silu, g))
                    rd[r * 2 * n + n + j] = Float(dv * silu(g))
                }
            }
            mkAssertClose(out.array, ro, abs: 1e-6, rel: 1e-5, "swiglu n \(n)")
            mkAssertClose(dgu.array, rd, abs: 1e-5, rel: 1e-4, "swiglu' n \(n)")
        }
    }
}
