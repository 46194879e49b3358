import Foundation

/// Finch's one random number generator: xoshiro256** seeded through splitmix64, so the same seed gives the
/// same stream on every platform (weight initialisation, PEFT init, sampling, data order, dropout). Its whole
/// state is Codable, so a checkpoint restores the exact stream.
///
/// The state is encoded as four hexadecimal strings under `state`: JSON numbers cannot hold 64-bit integers exactly.
///
/// The helpers keep the exact arithmetic of the call sites they serve: `uniformDouble()` (53 bits) and
/// `uniformFloat()` (24 bits) are different draws, and the three normal draws differ as their comments say.
public struct SeededRNG: RandomNumberGenerator, Codable, Equatable, Sendable {
    public private(set) var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    /// A generator whose stream is a pure function of `seed`.
    public init(seed: UInt64) {
        var sm = seed
        func splitmix() -> UInt64 {
            sm &+= 0x9E37_79B9_7F4A_7C15
            var z = sm
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitmix(); s1 = splitmix(); s2 = splitmix(); s3 = splitmix()
    }

    /// The next 64 random bits (xoshiro256**).
    public mutating func next() -> UInt64 {
        let result = rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 45)
        return result
    }

    @inline(__always) private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// An independent generator for a sub-task (e.g. one per layer or per data worker), derived from
    /// this one's next output and `stream`; advances this generator by one step.
    public mutating func split(stream: UInt64 = 0) -> SeededRNG {
        SeededRNG(seed: next() ^ (stream &* 0xD1B5_4A32_D192_ED03))
    }

    // MARK: Uniform

    /// Uniform Double in [0, 1) with 53 random bits.
    public mutating func uniformDouble() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Uniform Float in [0, 1) with 24 random bits (one `next()`, not a rounded `uniformDouble()`).
    public mutating func uniformFloat() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// Uniform integer in `0..<bound` without modulo bias.
    public mutating func int(below bound: Int) -> Int {
        precondition(bound > 0, "SeededRNG.int(below:): bound must be positive")
        return Int(next(upperBound: UInt64(bound)))
    }

    // MARK: Normal

    /// A standard normal sample: Box–Muller in Double on two `uniformDouble()` draws, one value of the pair used
    /// (so the state stays four words). The first draw is floored at 2^-60 (|z| ≤ 9.2).
    public mutating func normal() -> Float { boxMuller(floor: 0x1p-60) }

    /// The standard normal FinchModel's weight initialisers (heads, LoRA, adapters, prefix and prompt tables) have
    /// always drawn: `normal()` with the first draw floored at 1e-300 instead. The two differ only when that draw is
    /// exactly 0 (one in 2^53); both are kept so the same seed keeps giving the same initial weights and training data.
    public mutating func weightNormal() -> Float { boxMuller(floor: 1e-300) }

    @inline(__always) private mutating func boxMuller(floor: Double) -> Float {
        let u1 = Swift.max(uniformDouble(), floor)
        let u2 = uniformDouble()
        return Float((-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2))
    }

    /// Two independent standard normals, Box–Muller computed in Float (`logf`, `cosf`, `sinf`) with both values
    /// of the pair used: fast enough for 100M-parameter initialisation, and not the same numbers as `normal()`.
    public mutating func fastNormalPair() -> (Float, Float) {
        let u1 = Float(Swift.max(uniformDouble(), 1e-30)), u2 = Float(uniformDouble())
        let r = (-2 * logf(u1)).squareRoot(), a = 2 * Float.pi * u2
        return (r * cosf(a), r * sinf(a))
    }

    // MARK: Buffers and collections

    /// Fills `count` floats at `ptr` with `mean + std · normal()`.
    public mutating func fillNormal(_ ptr: UnsafeMutablePointer<Float>, count: Int, mean: Float = 0, std: Float = 1) {
        for i in 0..<count { ptr[i] = mean + std * normal() }
    }

    /// Fills `count` floats at `ptr` with uniform values in `[low, high)` (`uniformFloat()`).
    public mutating func fillUniform(_ ptr: UnsafeMutablePointer<Float>, count: Int, low: Float = 0, high: Float = 1) {
        for i in 0..<count { ptr[i] = low + (high - low) * uniformFloat() }
    }

    /// Writes an inverted-dropout mask: each element is 0 with probability `p`, else `1 / (1 − p)`, so
    /// `x · mask` keeps the expectation of x. With `p == 0` the mask is all ones.
    public mutating func dropoutMask(_ ptr: UnsafeMutablePointer<Float>, count: Int, p: Float) {
        precondition(p >= 0 && p < 1, "dropout probability must be in [0, 1) (got \(p))")
        if p == 0 { ptr.update(repeating: 1, count: count); return }
        let keep = 1 / (1 - p)
        for i in 0..<count { ptr[i] = uniformFloat() < p ? 0 : keep }
    }

    /// Shuffles an array in place (Fisher–Yates with this generator).
    public mutating func shuffle<T>(_ a: inout [T]) {
        guard a.count > 1 else { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) {
            a.swapAt(i, int(below: i + 1))
        }
    }

    // MARK: Codable (hex strings: JSON numbers lose 64-bit precision)

    private enum CodingKeys: String, CodingKey { case state }

    public init(from decoder: Swift.Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let words = try c.decode([String].self, forKey: .state)
        let parsed = words.compactMap { UInt64($0, radix: 16) }
        guard parsed.count == 4, parsed.contains(where: { $0 != 0 }) else {
            throw DecodingError.dataCorruptedError(forKey: .state, in: c,
                debugDescription: "SeededRNG state must be four non-all-zero 64-bit hex words (got \(words))")
        }
        (s0, s1, s2, s3) = (parsed[0], parsed[1], parsed[2], parsed[3])
    }

    public func encode(to encoder: Swift.Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode([s0, s1, s2, s3].map { String($0, radix: 16) }, forKey: .state)
    }
}
