/// Small SIMD16 helpers shared by the row kernels (norms, attention, cross-entropy).
/// Every helper handles lengths that are not multiples of 16 with a scalar tail.
@usableFromInline typealias F16 = SIMD16<Float>

@inline(__always) @usableFromInline
func load16(_ p: UnsafePointer<Float>) -> F16 {
    UnsafeRawPointer(p).loadUnaligned(as: F16.self)
}

@inline(__always) @usableFromInline
func store16(_ v: F16, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: F16.self)
}

public enum VectorMath {
    /// Σ a[i]·b[i].
    @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc0 = F16(), acc1 = F16()
        var i = 0
        while i + 32 <= n {
            acc0 = acc0.addingProduct(load16(a + i), load16(b + i))
            acc1 = acc1.addingProduct(load16(a + i + 16), load16(b + i + 16))
            i += 32
        }
        if i + 16 <= n { acc0 = acc0.addingProduct(load16(a + i), load16(b + i)); i += 16 }
        var s = (acc0 + acc1).sum()
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }

    /// y[i] += alpha·x[i].
    @inline(__always)
    public static func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let av = F16(repeating: alpha)
        var i = 0
        while i + 16 <= n { store16(load16(y + i).addingProduct(av, load16(x + i)), y + i); i += 16 }
        while i < n { y[i] += alpha * x[i]; i += 1 }
    }

    /// Σ x[i].
    @inline(__always)
    public static func sum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = F16()
        var i = 0
        while i + 16 <= n { acc += load16(x + i); i += 16 }
        var s = acc.sum()
        while i < n { s += x[i]; i += 1 }
        return s
    }

    /// max x[i] (−∞ for n = 0).
    @inline(__always)
    public static func max(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var m = -Float.infinity
        var i = 0
        if n >= 16 {
            var acc = F16(repeating: -.infinity)
            while i + 16 <= n { acc = pointwiseMax(acc, load16(x + i)); i += 16 }
            m = acc.max()
        }
        while i < n { m = Swift.max(m, x[i]); i += 1 }
        return m
    }

    /// y[i] += x[i].
    @inline(__always)
    public static func add(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 16 <= n { store16(load16(y + i) + load16(x + i), y + i); i += 16 }
        while i < n { y[i] += x[i]; i += 1 }
    }

    /// out[i] = a[i] + b[i] (out may alias a or b).
    @inline(__always)
    public static func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 16 <= n { store16(load16(a + i) + load16(b + i), out + i); i += 16 }
        while i < n { out[i] = a[i] + b[i]; i += 1 }
    }

    /// x[i] *= s.
    @inline(__always)
    public static func scale(_ x: UnsafeMutablePointer<Float>, _ s: Float, _ n: Int) {
        let sv = F16(repeating: s)
        var i = 0
        while i + 16 <= n { store16(load16(x + i) * sv, x + i); i += 16 }
        while i < n { x[i] *= s; i += 1 }
    }

    /// Adds each row of x [rows, n] (row stride ldx) into y [n]: the column sums (bias gradients).
    public static func addColumnSums(_ x: UnsafePointer<Float>, rows: Int, n: Int, ldx: Int, into y: UnsafeMutablePointer<Float>) {
        for r in 0..<rows { add(x + r * ldx, into: y, n) }
    }
}
