import Foundation

/// A small deterministic random number generator (xoshiro256**, seeded through splitmix64) whose
/// whole state is Codable, so a checkpoint restores the exact stream.
///
/// The state is encoded as four hexadecimal strings: JSON numbers cannot hold 64-bit integers exactly.
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

    /// Uniform Float in [0, 1) with 24 random bits.
    public mutating func uniform() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// Uniform Double in [0, 1) with 53 random bits.
    public mutating func uniformDouble() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Uniform integer in `0..<bound` without modulo bias.
    public mutating func int(below bound: Int) -> Int {
        precondition(bound > 0, "SeededRNG.int(below:): bound must be positive")
        return Int(next(upperBound: UInt64(bound)))
    }

    /// A standard normal sample (Box–Muller; one of the pair is used, so the state stays four words).
    public mutating func normal() -> Float {
        let u1 = Swift.max(uniformDouble(), 0x1p-60)
        let u2 = uniformDouble()
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }

    /// Fills `count` floats at `ptr` with `mean + std · N(0, 1)`.
    public mutating func fillNormal(_ ptr: UnsafeMutablePointer<Float>, count: Int, mean: Float = 0, std: Float = 1) {
        for i in 0..<count { ptr[i] = mean + std * normal() }
    }

    /// Fills `count` floats at `ptr` with uniform values in `[low, high)`.
    public mutating func fillUniform(_ ptr: UnsafeMutablePointer<Float>, count: Int, low: Float = 0, high: Float = 1) {
        for i in 0..<count { ptr[i] = low + (high - low) * uniform() }
    }

    /// Writes an inverted-dropout mask: each element is 0 with probability `p`, else `1 / (1 − p)`, so
    /// `x · mask` keeps the expectation of x. With `p == 0` the mask is all ones.
    public mutating func dropoutMask(_ ptr: UnsafeMutablePointer<Float>, count: Int, p: Float) {
        precondition(p >= 0 && p < 1, "dropout probability must be in [0, 1) (got \(p))")
        if p == 0 { ptr.update(repeating: 1, count: count); return }
        let keep = 1 / (1 - p)
        for i in 0..<count { ptr[i] = uniform() < p ? 0 : keep }
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

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let words = try c.decode([String].self, forKey: .state)
        let parsed = words.compactMap { UInt64($0, radix: 16) }
        guard parsed.count == 4, parsed.contains(where: { $0 != 0 }) else {
            throw DecodingError.dataCorruptedError(forKey: .state, in: c,
                debugDescription: "SeededRNG state must be four non-all-zero 64-bit hex words (got \(words))")
        }
        (s0, s1, s2, s3) = (parsed[0], parsed[1], parsed[2], parsed[3])
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode([s0, s1, s2, s3].map { String($0, radix: 16) }, forKey: .state)
    }
}
