/// Global-norm gradient clipping as `torch.nn.utils.clip_grad_norm_` (L2 norm over all buffers).
public enum Clip {
    /// The L2 norm of all values of all buffers together, accumulated in Double.
    public static func globalNorm(_ buffers: [UnsafeBufferPointer<Float>]) -> Double {
        var total = 0.0
        for buf in buffers {
            guard let base = buf.baseAddress, buf.count > 0 else { continue }
            total += sumOfSquares(base, buf.count)
        }
        return total.squareRoot()
    }

    /// Scales every buffer by `min(maxNorm / (norm + 1e-6), 1)` and returns the pre-clip global norm.
    @discardableResult
    public static func clip(_ buffers: [UnsafeMutableBufferPointer<Float>], maxNorm: Double) -> Double {
        let norm = globalNorm(buffers.map { UnsafeBufferPointer($0) })
        let coef = coefficient(norm: norm, maxNorm: maxNorm)
        if coef < 1 {
            let s = Float(coef)
            for buf in buffers {
                guard let base = buf.baseAddress else { continue }
                ThreadPool.shared.parallelFor(buf.count, minChunk: 1 << 16) { _, r in
                    for i in r { base[i] *= s }
                }
            }
        }
        return norm
    }

    /// Tensor form of `clip(_:maxNorm:)`.
    @discardableResult
    public static func clip(_ tensors: [Tensor], maxNorm: Double) -> Double {
        clip(tensors.map { $0.buffer }, maxNorm: maxNorm)
    }

    /// The clip coefficient torch uses: `min(maxNorm / (norm + 1e-6), 1)`.
    public static func coefficient(norm: Double, maxNorm: Double) -> Double {
        min(maxNorm / (norm + 1e-6), 1)
    }

    /// Σ x² over `count` floats: float products summed into Double per 16-lane block, both threads.
    static func sumOfSquares(_ p: UnsafePointer<Float>, _ count: Int) -> Double {
        var partial = [Double](repeating: 0, count: max(1, ThreadPool.shared.threads))
        partial.withUnsafeMutableBufferPointer { part in
            ThreadPool.shared.parallelFor(count, minChunk: 1 << 16) { chunk, r in
                var acc = 0.0
                var i = r.lowerBound
                let raw = UnsafeRawPointer(p)
                while i + 16 <= r.upperBound {
                    let x = SIMD16<Double>(raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self))
                    acc += (x * x).sum()
                    i += 16
                }
                while i < r.upperBound { let x = Double(p[i]); acc += x * x; i += 1 }
                part[chunk] += acc
            }
        }
        return partial.reduce(0, +)
    }
}
