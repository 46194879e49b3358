import CZstd
import Foundation

/// zstd frames through libzstd: one compressor/decompressor context per instance (not thread-safe;
/// make one per thread).
public final class ZstdCodec {
    private let cctx: OpaquePointer
    private let dctx: OpaquePointer
    public let level: Int32

    /// Frames carry zstd's content checksum, so a corrupted frame fails to decode.
    public init(level: Int32 = 6) {
        cctx = ZSTD_createCCtx()
        dctx = ZSTD_createDCtx()
        self.level = level
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)
    }

    deinit { ZSTD_freeCCtx(cctx); ZSTD_freeDCtx(dctx) }

    /// One complete, independently decodable frame.
    public func compress(_ input: UnsafeRawBufferPointer) throws -> Data {
        let bound = ZSTD_compressBound(input.count)
        var out = Data(count: bound)
        let n = out.withUnsafeMutableBytes { dst in
            ZSTD_compress2(cctx, dst.baseAddress, bound, input.baseAddress, input.count)
        }
        if ZSTD_isError(n) != 0 { throw ShardError.zstd(file: "<memory>", message: String(cString: ZSTD_getErrorName(n))) }
        out.count = n
        return out
    }

    /// Decodes one frame (the content size is read from the frame header, and must not exceed `maxSize`).
    public func decompress(_ frame: UnsafeRawBufferPointer, file: String, maxSize: Int = 1 << 34) throws -> [UInt8] {
        let size = ZSTD_getFrameContentSize(frame.baseAddress, frame.count)
        if size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN {
            throw ShardError.zstd(file: file, message: "not a zstd frame with a known size")
        }
        if size > UInt64(max(0, maxSize)) {   // checked before allocating: a 14-byte frame can claim gigabytes
            throw ShardError.zstd(file: file, message: "frame claims \(size) bytes, more than the \(maxSize) its entry can take")
        }
        // Uninitialised: the frame fills every byte, or we throw.
        return try [UInt8](unsafeUninitializedCapacity: Int(size)) { dst, count in
            let n = ZSTD_decompressDCtx(dctx, dst.baseAddress, dst.count, frame.baseAddress, frame.count)
            if ZSTD_isError(n) != 0 { throw ShardError.zstd(file: file, message: String(cString: ZSTD_getErrorName(n))) }
            guard n == dst.count else { throw ShardError.zstd(file: file, message: "frame decoded to \(n) bytes, header says \(dst.count)") }
            count = n
        }
    }
}

/// Problems with a packed dataset on disk; every case names the file.
public enum ShardError: Error, CustomStringConvertible {
    case zstd(file: String, message: String)
    case checksum(file: String, expected: String, actual: String)
    case corrupt(file: String, message: String)
    case manifest(file: String, message: String)
    case tokenizerMismatch(dataset: String, expected: String, actual: String)

    public var description: String {
        switch self {
        case .zstd(let f, let m): return "\(f): zstd error: \(m)"
        case .checksum(let f, let e, let a): return "\(f): checksum mismatch (manifest sha256 \(e.prefix(16))…, file \(a.prefix(16))…): the shard is corrupt or truncated"
        case .corrupt(let f, let m): return "\(f): corrupt: \(m)"
        case .manifest(let f, let m): return "\(f): \(m)"
        case .tokenizerMismatch(let d, let e, let a): return "\(d): dataset was packed with tokenizer sha256 \(e.prefix(16))…, but this tokenizer is \(a.prefix(16))…"
        }
    }
}
