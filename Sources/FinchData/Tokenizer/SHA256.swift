import CCrypto
import Foundation

/// SHA-256 through OpenSSL's libcrypto (it uses the CPU's SHA extensions, ~10× a portable implementation),
/// used for tokenizer fingerprints and shard checksums. Streaming: `update` any number of times, then
/// `finalizeHex` once.
public struct SHA256 {
    private final class Context {
        let ctx: OpaquePointer
        init() {
            ctx = EVP_MD_CTX_new()
            EVP_DigestInit_ex(ctx, EVP_sha256(), nil)
        }
        deinit { EVP_MD_CTX_free(ctx) }
    }
    private let context = Context()

    public init() {}

    /// Hex digest of `data`.
    public static func hex(_ data: Data) -> String {
        var s = SHA256()
        s.update(data)
        return s.finalizeHex()
    }

    public mutating func update(_ data: Data) {
        data.withUnsafeBytes { update(UnsafeRawBufferPointer($0)) }
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        EVP_DigestUpdate(context.ctx, base, bytes.count)
    }

    /// Lowercase hex of the digest.
    public mutating func finalizeHex() -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context.ctx, &digest, &length)
        let hexDigits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(64)
        for b in digest.prefix(Int(length)) { out.append(hexDigits[Int(b >> 4)]); out.append(hexDigits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
