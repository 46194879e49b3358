import Foundation

/// LayerNorm over the last dimension (GPT-2): `y = (x − mean)/sqrt(var + eps)·w + b`, biased variance.
public enum LayerNorm {
    /// x, y: [rows, dim]; saves `mean` and `rstd` ([rows]) for the backward.
    public static func forward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                               y: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                               rstd: UnsafeMutablePointer<Float>, rows: Int, dim: Int, eps: Float) {
        ThreadPool.shared.parallelFor(rows, minChunk: 16) { _, range in
            for r in range {
                let xr = x + r * dim, yr = y + r * dim
                let m = VectorMath.sum(xr, dim) / Float(dim)
                var vacc = F16()
                var i = 0
                let mv = F16(repeating: m)
                while i + 16 <= dim { let d = load16(xr + i) - mv; vacc = vacc.addingProduct(d, d); i += 16 }
                var v = vacc.sum()
                while i < dim { let d = xr[i] - m; v += d * d; i += 1 }
                v /= Float(dim)
                let s = 1 / (v + eps).squareRoot()
                mean[r] = m; rstd[r] = s
                let sv = F16(repeating: s)
                i = 0
                while i + 16 <= dim {
                    store16(((load16(xr + i) - mv) * sv) * load16(weight + i) + load16(bias + i), yr + i)
                    i += 16
                }
                while i < dim { yr[i] = (xr[i] - m) * s * weight[i] + bias[i]; i += 1 }
            }
        }
    }

    /// Accumulates `dx += ∂L/∂x` (when dx is given), `dweight += Σ dy·x̂`, `dbias += Σ dy`.
    public static func backward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                                dx: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>?,
                                dbias: UnsafeMutablePointer<Float>?, rows: Int, dim: Int) {
        if let dx = dx {
            ThreadPool.shared.parallelFor(rows, minChunk: 16) { _, range in
                for r in range {
                    let xr = x + r * dim, dyr = dy + r * dim, dxr = dx + r * dim
                    let m = mean[r], s = rstd[r]
                    // dnorm = dy·w; dx = s·(dnorm − mean(dnorm) − x̂·mean(dnorm·x̂))
                    var a1 = F16(), a2 = F16()
                    let mv = F16(repeating: m), sv = F16(repeating: s)
                    var i = 0
                    while i + 16 <= dim {
                        let dn = load16(dyr + i) * load16(weight + i)
                        let xh = (load16(xr + i) - mv) * sv
                        a1 += dn; a2 = a2.addingProduct(dn, xh); i += 16
                    }
                    var s1 = a1.sum(), s2 = a2.sum()
                    while i < dim { let dn = dyr[i] * weight[i]; s1 += dn; s2 += dn * (xr[i] - m) * s; i += 1 }
                    s1 /= Float(dim); s2 /= Float(dim)
                    let s1v = F16(repeating: s1), s2v = F16(repeating: s2)
                    i = 0
                    while i + 16 <= dim {
                        let dn = load16(dyr + i) * load16(weight + i)
                        let xh = (load16(xr + i) - mv) * sv
                        store16(load16(dxr + i) + sv * (dn - s1v - xh * s2v), dxr + i)
                        i += 16
                    }
                    while i < dim {
                        let dn = dyr[i] * weight[i], xh = (xr[i] - m) * s
                        dxr[i] += s * (dn - s1 - xh * s2); i += 1
                    }
                }
            }
        }
        if dweight != nil || dbias != nil {
            for r in 0..<rows {
                let xr = x + r * dim, dyr = dy + r * dim
                if let db = dbias { VectorMath.add(dyr, into: db, dim) }
                if let dw = dweight {
                    let m = mean[r], s = rstd[r]
                    let mv = F16(repeating: m), sv = F16(repeating: s)
                    var i = 0
                    while i + 16 <= dim {
                        store16(load16(dw + i).addingProduct(load16(dyr + i), (load16(xr + i) - mv) * sv), dw + i); i += 16
                    }
                    while i < dim { dw[i] += dyr[i] * (xr[i] - m) * s; i += 1 }
                }
            }
        }
    }
}

/// RMSNorm over the last dimension (Llama): `y = w · x / sqrt(mean(x²) + eps)`.
public enum RMSNorm {
    /// x, y: [rows, dim]; saves `rstd` ([rows]) for the backward.
    public static func forward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                               rstd: UnsafeMutablePointer<Float>, rows: Int, dim: Int, eps: Float) {
        ThreadPool.shared.parallelFor(rows, minChunk: 16) { _, range in
            for r in range {
                let xr = x + r * dim, yr = y + r * dim
                let ms = VectorMath.dot(xr, xr, dim) / Float(dim)
                let s = 1 / (ms + eps).squareRoot()
                rstd[r] = s
                let sv = F16(repeating: s)
                var i = 0
                while i + 16 <= dim { store16(load16(weight + i) * (load16(xr + i) * sv), yr + i); i += 16 }
                while i < dim { yr[i] = weight[i] * (xr[i] * s); i += 1 }
            }
        }
    }

    /// Accumulates `dx += ∂L/∂x` (when dx is given) and `dweight += Σ dy·x·rstd`.
    public static func backward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                rstd: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?,
                                dweight: UnsafeMutablePointer<Float>?, rows: Int, dim: Int) {
        if let dx = dx {
            ThreadPool.shared.parallelFor(rows, minChunk: 16) { _, range in
                for r in range {
                    let xr = x + r * dim, dyr = dy + r * dim, dxr = dx + r * dim
                    let s = rstd[r]
                    // dx = s·(dy·w) − s³·x·mean(dy·w·x)
                    var acc = F16()
                    var i = 0
                    while i + 16 <= dim { acc = acc.addingProduct(load16(dyr + i) * load16(weight + i), load16(xr + i)); i += 16 }
                    var d = acc.sum()
                    while i < dim { d += dyr[i] * weight[i] * xr[i]; i += 1 }
                    let c = d / Float(dim) * s * s * s
                    let sv = F16(repeating: s), cv = F16(repeating: c)
                    i = 0
                    while i + 16 <= dim {
                        store16(load16(dxr + i) + sv * load16(dyr + i) * load16(weight + i) - cv * load16(xr + i), dxr + i); i += 16
                    }
                    while i < dim { dxr[i] += s * dyr[i] * weight[i] - c * xr[i]; i += 1 }
                }
            }
        }
        if let dw = dweight {
            for r in 0..<rows {
                let xr = x + r * dim, dyr = dy + r * dim
                let sv = F16(repeating: rstd[r])
                var i = 0
                while i + 16 <= dim { store16(load16(dw + i).addingProduct(load16(dyr + i), load16(xr + i) * sv), dw + i); i += 16 }
                while i < dim { dw[i] += dyr[i] * xr[i] * rstd[r]; i += 1 }
            }
        }
    }
}

extension RMSNorm {
    /// Per-head RMSNorm (Qwen3 / Gemma 3 q_norm, k_norm): each of the `heads` consecutive `dim`-wide slices
    /// of every row is normalised with the same [dim] weight. x: rows with stride `ldx`, y: stride `ldy`
    /// (y may not alias x); saves `rstd` [rows, heads].
    public static func forwardHeads(x: UnsafePointer<Float>, ldx: Int, weight: UnsafePointer<Float>,
                                    y: UnsafeMutablePointer<Float>, ldy: Int, rstd: UnsafeMutablePointer<Float>,
                                    rows: Int, heads: Int, dim: Int, eps: Float) {
        ThreadPool.shared.parallelFor(rows, minChunk: max(1, 64 / max(heads, 1))) { _, range in
            for r in range {
                for h in 0..<heads {
                    let xr = x + r * ldx + h * dim, yr = y + r * ldy + h * dim
                    let ms = VectorMath.dot(xr, xr, dim) / Float(dim)
                    let s = 1 / (ms + eps).squareRoot()
                    rstd[r * heads + h] = s
                    for i in 0..<dim { yr[i] = weight[i] * (xr[i] * s) }
                }
            }
        }
    }

    /// Backward of `forwardHeads`: `dweight += Σ dy·x·rstd` (when given), then dx = ∂L/∂x, **overwritten**
    /// (dx may alias dy: each slice is read before it is written).
    public static func backwardHeads(dy: UnsafePointer<Float>, ldy: Int, x: UnsafePointer<Float>, ldx: Int,
                                     weight: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                                     dx: UnsafeMutablePointer<Float>, lddx: Int, dweight: UnsafeMutablePointer<Float>?,
                                     rows: Int, heads: Int, dim: Int) {
        if let dw = dweight {
            for r in 0..<rows {
                for h in 0..<heads {
                    let xr = x + r * ldx + h * dim, dyr = dy + r * ldy + h * dim, s = rstd[r * heads + h]
                    for i in 0..<dim { dw[i] += dyr[i] * xr[i] * s }
                }
            }
        }
        ThreadPool.shared.parallelFor(rows, minChunk: max(1, 64 / max(heads, 1))) { _, range in
            for r in range {
                for h in 0..<heads {
                    let xr = x + r * ldx + h * dim, dyr = dy + r * ldy + h * dim, dxr = dx + r * lddx + h * dim
                    let s = rstd[r * heads + h]
                    var d: Float = 0
                    for i in 0..<dim { d += dyr[i] * weight[i] * xr[i] }
                    let c = d / Float(dim) * s * s * s
                    for i in 0..<dim { dxr[i] = s * dyr[i] * weight[i] - c * xr[i] }
                }
            }
        }
    }
}
