import Foundation
import XCTest
import FinchGGUF

/// Test assets written by `python3 tools/vectors/gguf_vectors.py`.
enum Assets {
    static var root: URL {
        if let env = ProcessInfo.processInfo.environment["FINCH_TEST_ASSETS"], !env.isEmpty {
            return URL(fileURLWithPath: env)
        }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/finch/test-assets")
    }

    static var dir: URL { root.appendingPathComponent("gguf_vectors") }

    /// The assets folder, or a test failure telling how to create it.
    static func require(_ file: String = "synthetic.json") throws -> URL {
        let url = dir.appendingPathComponent(file)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw AssetError("missing test vectors \(url.path): run `python3 tools/vectors/gguf_vectors.py`")
        }
        return url
    }

    static func json(_ file: String) throws -> [String: Any] {
        let data = try Data(contentsOf: try require(file))
        guard let obj = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw AssetError("\(file) is not a JSON object")
        }
        return obj
    }

    static func floats(_ file: String) throws -> [Float] {
        let data = try Data(contentsOf: try require(file))
        return data.withUnsafeBytes { raw in
            (0..<data.count / 4).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
        }
    }
}

/// A plain error that fails the test with its message (used instead of a skip: missing vectors are a failure).
struct AssetError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Bit-exact float comparison where any NaN equals any NaN. Returns the first mismatching index.
func firstMismatch(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) -> Int? {
    if a.count != b.count { return min(a.count, b.count) }
    for i in 0..<a.count where a[i].bitPattern != b[i].bitPattern && !(a[i].isNaN && b[i].isNaN) {
        return i
    }
    return nil
}

/// Minimal SHA-256 (FIPS 180-4), for comparing dequantised tensors with the Python reference.
struct SHA256 {
    private var h: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
    private var buffer = [UInt8](repeating: 0, count: 64)
    private var buffered = 0
    private var length: UInt64 = 0
    private static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2]

    mutating func update(_ data: UnsafeRawBufferPointer) {
        length += UInt64(data.count)
        var i = 0
        if buffered > 0 {
            while buffered < 64 && i < data.count { buffer[buffered] = data[i]; buffered += 1; i += 1 }
            if buffered == 64 {
                buffer.withUnsafeBytes { compress($0.baseAddress!) }
                buffered = 0
            }
        }
        while i + 64 <= data.count { compress(data.baseAddress! + i); i += 64 }
        while i < data.count { buffer[buffered] = data[i]; buffered += 1; i += 1 }
    }

    mutating func update<T>(_ values: [T]) { values.withUnsafeBytes { update($0) } }

    mutating func finalize() -> String {
        let bits = length &* 8
        var pad: [UInt8] = [0x80]
        while (Int(length) + pad.count) % 64 != 56 { pad.append(0) }
        for s in stride(from: 56, through: 0, by: -8) { pad.append(UInt8(truncatingIfNeeded: bits >> UInt64(s))) }
        let saved = length
        pad.withUnsafeBytes { update($0) }
        length = saved
        return h.map { String(format: "%08x", $0) }.joined()
    }

    private mutating func compress(_ p: UnsafeRawPointer) {
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { w in
            SHA256.k.withUnsafeBufferPointer { k in
                for t in 0..<16 { w[t] = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 4 * t, as: UInt32.self)) }
                for t in 16..<64 {
                    let s0 = w[t - 15].rotr(7) ^ w[t - 15].rotr(18) ^ (w[t - 15] >> 3)
                    let s1 = w[t - 2].rotr(17) ^ w[t - 2].rotr(19) ^ (w[t - 2] >> 10)
                    w[t] = w[t - 16] &+ s0 &+ w[t - 7] &+ s1
                }
                var (a, b, c, d, e, f, g, hh) = (h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7])
                for t in 0..<64 {
                    let s1 = e.rotr(6) ^ e.rotr(11) ^ e.rotr(25)
                    let ch = (e & f) ^ (~e & g)
                    let t1 = hh &+ s1 &+ ch &+ k[t] &+ w[t]
                    let s0 = a.rotr(2) ^ a.rotr(13) ^ a.rotr(22)
                    let maj = (a & b) ^ (a & c) ^ (b & c)
                    let t2 = s0 &+ maj
                    (hh, g, f, e, d, c, b, a) = (g, f, e, d &+ t1, c, b, a, t1 &+ t2)
                }
                h[0] &+= a; h[1] &+= b; h[2] &+= c; h[3] &+= d; h[4] &+= e; h[5] &+= f; h[6] &+= g; h[7] &+= hh
            }
        }
    }
}

private extension UInt32 {
    @inline(__always) func rotr(_ n: UInt32) -> UInt32 { (self >> n) | (self << (32 &- n)) }
}

func sha256Hex(_ bytes: UnsafeRawBufferPointer) -> String {
    var s = SHA256()
    s.update(bytes)
    return s.finalize()
}
