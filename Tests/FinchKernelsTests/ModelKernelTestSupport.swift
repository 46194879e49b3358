import XCTest
import FinchKernels

/// Deterministic random inputs and tolerant comparisons for the kernel tests.
struct MKRNG {
    var state: UInt64
    init(_ seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [-scale, scale).
    mutating func float(_ scale: Float = 1) -> Float { (Float(next() >> 40) / Float(1 << 24) * 2 - 1) * scale }
    mutating func tensor(_ shape: [Int], scale: Float = 1) -> Tensor {
        let t = Tensor(shape: shape)
        for i in 0..<t.count { t[i] = float(scale) }
        return t
    }
}

/// Sizes that are not multiples of 16 (plus one that is), as the issue asks.
let mkOddSizes = [1, 7, 33, 130]

func mkAssertClose(_ a: [Float], _ b: [Float], abs: Float = 1e-5, rel: Float = 1e-4, _ what: String,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "\(what): count", file: file, line: line)
    var worst: Float = 0, at = -1
    for i in 0..<min(a.count, b.count) {
        let d = Swift.abs(a[i] - b[i]) / (abs + rel * Swift.abs(b[i]))
        if !(d <= worst) { worst = d; at = i }
    }
    if worst > 1 || worst.isNaN {
        XCTFail("\(what): element \(at) got \(a[at]), expected \(b[at]) (\(worst)× tolerance)", file: file, line: line)
    }
}

/// Scalar numerical derivative helper: central difference of f at x[i] in Double.
func mkNumericGrad(_ x: inout [Double], _ i: Int, eps: Double = 1e-6, _ f: ([Double]) -> Double) -> Double {
    let old = x[i]
    x[i] = old + eps; let a = f(x)
    x[i] = old - eps; let b = f(x)
    x[i] = old
    return (a - b) / (2 * eps)
}
