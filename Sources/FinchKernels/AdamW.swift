import Foundation

/// AdamW with decoupled weight decay, exactly as `torch.optim.AdamW` (amsgrad off).
public enum AdamW {
    /// Hyper-parameters of one optimizer step.
    public struct Hyper {
        public var lr: Float
        public var beta1: Float
        public var beta2: Float
        public var eps: Float
        public var weightDecay: Float
        public init(lr: Float, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0) {
            self.lr = lr; self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
        }
    }

    /// One in-place AdamW step (`step` counts from 1) on `count` elements:
    /// `p *= 1 - lr·wd; m = β1 m + (1-β1) g; v = β2 v + (1-β2) g²;
    ///  p -= (lr / (1-β1^t)) · m / (sqrt(v) / sqrt(1-β2^t) + eps)`.
    public static func step(param: UnsafeMutablePointer<Float>, grad: UnsafePointer<Float>,
                            m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
                            count: Int, hyper h: Hyper, step t: Int) {
        // Bias corrections in Double as torch computes them (Python floats), then rounded once.
        let bc1 = 1 - pow(Double(h.beta1), Double(t))
        let bc2 = 1 - pow(Double(h.beta2), Double(t))
        let stepSize = Float(Double(h.lr) / bc1)
        let bc2Sqrt = Float(bc2.squareRoot())
        let decay = 1 - h.lr * h.weightDecay
        let b1 = h.beta1, b2 = h.beta2, eps = h.eps
        ThreadPool.shared.parallelFor(count, minChunk: 1 << 16) { _, r in
            var i = r.lowerBound
            let end = r.upperBound
            let vDecay = SIMD16<Float>(repeating: decay), vB1 = SIMD16<Float>(repeating: b1)
            let vB2 = SIMD16<Float>(repeating: b2), v1B1 = SIMD16<Float>(repeating: 1 - b1)
            let v1B2 = SIMD16<Float>(repeating: 1 - b2), vEps = SIMD16<Float>(repeating: eps)
            let vStep = SIMD16<Float>(repeating: stepSize), vBc2 = SIMD16<Float>(repeating: bc2Sqrt)
            let rp = UnsafeMutableRawPointer(param), rg = UnsafeRawPointer(grad)
            let rm = UnsafeMutableRawPointer(m), rv = UnsafeMutableRawPointer(v)
            while i + 16 <= end {
                let o = i * 4
                let g = rg.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self)
                var p = rp.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self) * vDecay
                let mm = vB1 * rm.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self) + v1B1 * g
                let vv = vB2 * rv.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self) + v1B2 * (g * g)
                p -= vStep * mm / (vv.squareRoot() / vBc2 + vEps)
                rp.storeBytes(of: p, toByteOffset: o, as: SIMD16<Float>.self)
                rm.storeBytes(of: mm, toByteOffset: o, as: SIMD16<Float>.self)
                rv.storeBytes(of: vv, toByteOffset: o, as: SIMD16<Float>.self)
                i += 16
            }
            while i < end {
                let g = grad[i]
                var p = param[i] * decay
                let mm = b1 * m[i] + (1 - b1) * g
                let vv = b2 * v[i] + (1 - b2) * (g * g)
                p -= stepSize * mm / (vv.squareRoot() / bc2Sqrt + eps)
                param[i] = p; m[i] = mm; v[i] = vv
                i += 1
            }
        }
    }

    /// `step` on tensors (all of the same element count).
    public static func step(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, hyper: Hyper, step t: Int) {
        precondition(param.count == grad.count && m.count == param.count && v.count == param.count,
                     "AdamW.step: param \(param.shape), grad \(grad.shape), m \(m.shape), v \(v.shape) differ")
        step(param: param.ptr, grad: grad.ptr, m: m.ptr, v: v.ptr, count: param.count, hyper: hyper, step: t)
    }
}
