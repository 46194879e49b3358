import Foundation

/// exp on 16 lanes: 2ⁿ·p(r) with r = x − n·ln2, |r| ≤ ln2/2, degree-7 polynomial (≈1 ulp in [−87, 88]).
@inline(__always) @usableFromInline
func exp16(_ x: F16) -> F16 {
    exp16Unclamped(pointwiseMin(pointwiseMax(x, F16(repeating: -87.3)), F16(repeating: 88.3)))
}

/// `exp16` for inputs already in [−87.3, 88.3] (callers outside it clamp in their own way).
/// n is rounded with the 1.5·2²³ trick, whose bit pattern also gives 2ⁿ without int conversions
/// (the generic SIMD Float→Int32 conversion is not vectorised). Horner one step a statement: written as one
/// nested expression, LLVM scalarised it lane by lane.
@inline(__always)
func exp16Unclamped(_ xc: F16) -> F16 {
    let magic = F16(repeating: 12582912)   // 1.5·2²³: adding it rounds to an integer in the low mantissa bits
    let t = xc.addingProduct(xc, F16(repeating: 0.442695040888963)) + magic   // x·log2(e) + magic
    let n = t - magic
    var r = xc.addingProduct(n, F16(repeating: -0.693145751953125))
    r = r.addingProduct(n, F16(repeating: -1.428606765330187e-06))
    var p = F16(repeating: 1.0 / 5040)
    p = F16(repeating: 1.0 / 720).addingProduct(p, r)
    p = F16(repeating: 1.0 / 120).addingProduct(p, r)
    p = F16(repeating: 1.0 / 24).addingProduct(p, r)
    p = F16(repeating: 1.0 / 6).addingProduct(p, r)
    p = F16(repeating: 0.5).addingProduct(p, r)
    p = F16(repeating: 1).addingProduct(p, r)
    p = F16(repeating: 1).addingProduct(p, r)
    // bits(t) = 0x4B400000 + n; shifting (bits + 127) left by 23 leaves exactly (n + 127) << 23.
    let bits = (unsafeBitCast(t, to: SIMD16<Int32>.self) &+ 127) &<< 23
    return p * unsafeBitCast(bits, to: F16.self)
}

/// GELU, tanh approximation (HF `gelu_new`, GPT-2): `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
public enum GELU {
    static let k: Float = 0.7978845608028654  // √(2/π)
    static let c: Float = 0.044715

    /// y = gelu(x) over n elements (y may alias x).
    public static func forward(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, count n: Int) {
        ThreadPool.shared.parallelFor(n, minChunk: 8192) { _, range in
            var i = range.lowerBound
            let kv = F16(repeating: k), cv = F16(repeating: c)
            while i + 16 <= range.upperBound {
                let xv = load16(x + i)
                let u = kv * xv.addingProduct(cv * xv * xv, xv)
                let t = 1 - 2 / (exp16(2 * u) + 1)
                store16(0.5 * xv * (1 + t), y + i)
                i += 16
            }
            while i < range.upperBound {
                let xv = x[i]
                y[i] = 0.5 * xv * (1 + tanhf(k * (xv + c * xv * xv * xv)))
                i += 1
            }
        }
    }

    /// dx = dy · gelu′(x) (dx may alias dy).
    public static func backward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, count n: Int) {
        ThreadPool.shared.parallelFor(n, minChunk: 8192) { _, range in
            var i = range.lowerBound
            let kv = F16(repeating: k), cv = F16(repeating: c)
            while i + 16 <= range.upperBound {
                let xv = load16(x + i)
                let x2 = xv * xv
                let u = kv * xv.addingProduct(cv * x2, xv)
                let t = 1 - 2 / (exp16(2 * u) + 1)
                let du = kv * (1 + 3 * cv * x2)
                let g = 0.5 * (1 + t) + 0.5 * xv * (1 - t * t) * du
                store16(load16(dy + i) * g, dx + i)
                i += 16
            }
            while i < range.upperBound {
                let xv = x[i]
                let t = tanhf(k * (xv + c * xv * xv * xv))
                let g = 0.5 * (1 + t) + 0.5 * xv * (1 - t * t) * k * (1 + 3 * c * xv * xv)
                dx[i] = dy[i] * g
                i += 1
            }
        }
    }
}

/// SiLU `x·σ(x)` and SwiGLU `silu(gate)·up` (Llama MLP).
public enum SiLU {
    @inline(__always) static func sigmoid16(_ x: F16) -> F16 { 1 / (1 + exp16(-x)) }
    @inline(__always) static func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }

    /// y = silu(x) (y may alias x).
    public static func forward(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, count n: Int) {
        var i = 0
        while i + 16 <= n { let v = load16(x + i); store16(v * sigmoid16(v), y + i); i += 16 }
        while i < n { y[i] = x[i] * sigmoid(x[i]); i += 1 }
    }

    /// dx = dy · silu′(x), silu′ = σ(x)·(1 + x·(1 − σ(x))) (dx may alias dy).
    public static func backward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, count n: Int) {
        var i = 0
        while i + 16 <= n {
            let v = load16(x + i), s = sigmoid16(v)
            store16(load16(dy + i) * s * (1 + v * (1 - s)), dx + i); i += 16
        }
        while i < n { let s = sigmoid(x[i]); dx[i] = dy[i] * s * (1 + x[i] * (1 - s)); i += 1 }
    }

    /// SwiGLU over rows of a fused buffer: `gateUp` is [rows, 2·width] (gate columns first, then up);
    /// out[r, j] = silu(gate[r, j])·up[r, j], out is [rows, width].
    public static func swigluForward(gateUp: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, rows: Int, width: Int) {
        ThreadPool.shared.parallelFor(rows, minChunk: max(1, 4096 / max(width, 1))) { _, range in
            for r in range {
                let g = gateUp + r * 2 * width, u = g + width, o = out + r * width
                var i = 0
                while i + 16 <= width {
                    let gv = load16(g + i)
                    store16(gv * sigmoid16(gv) * load16(u + i), o + i); i += 16
                }
                while i < width { o[i] = g[i] * sigmoid(g[i]) * u[i]; i += 1 }
            }
        }
    }

    /// SwiGLU backward: writes dGateUp [rows, 2·width] (overwritten) from dOut [rows, width].
    public static func swigluBackward(dOut: UnsafePointer<Float>, gateUp: UnsafePointer<Float>,
                                      dGateUp: UnsafeMutablePointer<Float>, rows: Int, width: Int) {
        ThreadPool.shared.parallelFor(rows, minChunk: max(1, 4096 / max(width, 1))) { _, range in
            for r in range {
                let g = gateUp + r * 2 * width, u = g + width, d = dOut + r * width
                let dg = dGateUp + r * 2 * width, du = dg + width
                var i = 0
                while i + 16 <= width {
                    let gv = load16(g + i), s = sigmoid16(gv), dv = load16(d + i)
                    store16(dv * gv * s, du + i)
                    store16(dv * load16(u + i) * s * (1 + gv * (1 - s)), dg + i)
                    i += 16
                }
                while i < width {
                    let s = sigmoid(g[i])
                    du[i] = d[i] * g[i] * s
                    dg[i] = d[i] * u[i] * s * (1 + g[i] * (1 - s))
                    i += 1
                }
            }
        }
    }
}

/// GeGLU with the tanh GELU (Gemma: `gelu_pytorch_tanh(gate)·up`).
extension GELU {
    /// `gateUp` is [rows, 2·width] (gate columns first, then up); out[r, j] = gelu(gate[r, j])·up[r, j].
    public static func gegluForward(gateUp: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, rows: Int, width: Int) {
        ThreadPool.shared.parallelFor(rows, minChunk: max(1, 4096 / max(width, 1))) { _, range in
            for r in range {
                let g = gateUp + r * 2 * width, u = g + width, o = out + r * width
                for i in 0..<width {
                    let xv = g[i]
                    o[i] = 0.5 * xv * (1 + tanhf(k * (xv + c * xv * xv * xv))) * u[i]
                }
            }
        }
    }

    /// Backward of `gegluForward`: writes dGateUp [rows, 2·width] (overwritten) from dOut [rows, width].
    public static func gegluBackward(dOut: UnsafePointer<Float>, gateUp: UnsafePointer<Float>,
                                     dGateUp: UnsafeMutablePointer<Float>, rows: Int, width: Int) {
        ThreadPool.shared.parallelFor(rows, minChunk: max(1, 4096 / max(width, 1))) { _, range in
            for r in range {
                let g = gateUp + r * 2 * width, u = g + width, d = dOut + r * width
                let dg = dGateUp + r * 2 * width, du = dg + width
                for i in 0..<width {
                    let xv = g[i]
                    let t = tanhf(k * (xv + c * xv * xv * xv))
                    let gelu = 0.5 * xv * (1 + t)
                    let dgelu = 0.5 * (1 + t) + 0.5 * xv * (1 - t * t) * k * (1 + 3 * c * xv * xv)
                    du[i] = d[i] * gelu
                    dg[i] = d[i] * u[i] * dgelu
                }
            }
        }
    }
}
