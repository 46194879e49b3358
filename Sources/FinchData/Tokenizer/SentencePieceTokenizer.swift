import CSentencePiece
import FinchTokenizerKernels
import Foundation

/// Errors from loading, running or training a SentencePiece model.
public enum TokenizerError: Error, CustomStringConvertible {
    case load(path: String, message: String)
    case encode(String)
    case decode(String)
    case train(String)
    case missingPiece(piece: String, model: String)

    public var description: String {
        switch self {
        case .load(let path, let message): return "\(path): cannot load SentencePiece model: \(message)"
        case .encode(let m): return "SentencePiece encode failed: \(m)"
        case .decode(let m): return "SentencePiece decode failed: \(m)"
        case .train(let m): return "SentencePiece training failed: \(m)"
        case .missingPiece(let piece, let model): return "\(model): piece \"\(piece)\" is not in the vocabulary"
        }
    }
}

/// The kind of a vocabulary entry (sentencepiece's ModelProto.SentencePiece.Type).
public enum PieceType: String, Codable, Sendable {
    case normal, unknown, control, userDefined = "user_defined", unused, byte
}

/// One vocabulary entry.
public struct VocabEntry: Equatable, Sendable {
    public let id: Int
    public let piece: String
    public let score: Float
    public let type: PieceType
}

/// A SentencePiece model loaded through libsentencepiece (any `.model`, including Hugging Face
/// Llama-family `tokenizer.model` files). Encoding never adds BOS/EOS; callers add them explicitly.
/// Thread-safe for concurrent encode/decode (the underlying processor is immutable after load).
public final class SentencePieceTokenizer: TextTokenizer, @unchecked Sendable {
    private let handle: OpaquePointer
    /// The serialized model exactly as loaded.
    public let modelBytes: Data
    /// sha256 (lowercase hex) of `modelBytes`: identifies the tokenizer a dataset was packed with.
    public let fingerprint: String
    /// Where the model came from (path, or "<memory>"), for error messages.
    public let source: String

    public let vocabSize: Int
    public let bosID: Int
    public let eosID: Int
    /// -1 when the model defines no pad piece.
    public let padID: Int
    public let unkID: Int
    /// Finch's own encoder for this model (same ids as the library, see `SentencePieceEncoder`), or nil when
    /// the model uses a feature it leaves to the library (`nativeFallbackReason`) or `FINCH_SPM_LIBRARY=1`.
    public let native: SentencePieceEncoder?
    public let nativeFallbackReason: String?

    /// Loads a `.model` file.
    public convenience init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw TokenizerError.load(path: url.path, message: "\(error.localizedDescription)")
        }
        try self.init(modelBytes: data, source: url.path)
    }

    /// Loads a serialized model held in memory.
    public init(modelBytes: Data, source: String = "<memory>") throws {
        var err: UnsafeMutablePointer<CChar>? = nil
        let h = modelBytes.withUnsafeBytes { raw in csp_load_bytes(raw.baseAddress, raw.count, &err) }
        guard let h else { throw TokenizerError.load(path: source, message: Self.take(err)) }
        handle = h
        self.modelBytes = modelBytes
        self.source = source
        fingerprint = SHA256.hex(modelBytes)
        vocabSize = Int(csp_vocab_size(h))
        bosID = Int(csp_bos_id(h)); eosID = Int(csp_eos_id(h))
        padID = Int(csp_pad_id(h)); unkID = Int(csp_unk_id(h))
        if ProcessInfo.processInfo.environment["FINCH_SPM_LIBRARY"] == "1" {
            native = nil; nativeFallbackReason = "FINCH_SPM_LIBRARY=1"
        } else {
            do { native = try SentencePieceEncoder(modelBytes: modelBytes); nativeFallbackReason = nil }
            catch { native = nil; nativeFallbackReason = "\(error)" }
        }
    }

    /// Which encoder `encode` runs, for benchmark and inspection output.
    public var encoderDescription: String {
        native != nil ? "native" : "libsentencepiece (\(nativeFallbackReason ?? ""))"
    }

    deinit { csp_free(handle) }

    /// Token ids of `text` (no BOS/EOS).
    public func encode(_ text: String) throws -> [Int32] {
        if let native { return native.encode(text) }
        var text = text
        var ids: [Int32] = []
        try text.withUTF8 { try encode(utf8: UnsafeRawBufferPointer($0), appendingTo: &ids) }
        return ids
    }

    /// Appends the ids of UTF-8 `bytes` to `ids` (the fast path used when packing: no String round trip).
    /// The native encoder runs when it supports the model; otherwise the library, whose repeated words are
    /// served from a shared cache when that gives exactly its ids (`memoizesWords`). `libraryEncode` is the
    /// library's uncached call.
    public func encode(utf8 bytes: UnsafeRawBufferPointer, appendingTo ids: inout [Int32]) throws {
        if bytes.isEmpty { return }
        if let native { return native.encode(bytes, appendingTo: &ids) }
        let text = bytes.baseAddress!.assumingMemoryBound(to: CChar.self)
        // Identity-normalised text never has more ids than bytes; other normalisers may expand, so retry.
        var capacity = bytes.count + 2
        while true {
            var count = 0
            var err: UnsafeMutablePointer<CChar>? = nil
            let done = try withUnsafeTemporaryAllocation(of: Int32.self, capacity: capacity) { buf -> Bool in
                let rc = csp_encode_ids_into(handle, text, bytes.count, buf.baseAddress, capacity, &count, &err)
                guard rc == 0 else { throw TokenizerError.encode(Self.take(err)) }
                guard count <= capacity else { return false }
                ids.append(contentsOf: UnsafeBufferPointer(rebasing: buf[0..<count]))
                return true
            }
            if done { return }
            capacity = count
        }
    }

    /// Whether `encode` memoises words for this model (see csp_encode_ids_into: identity normaliser and no
    /// piece with "▁" after another character, which makes each cut one the library itself would make).
    public var memoizesWords: Bool { csp_word_cache_enabled(handle) != 0 }

    /// The library's own Encode, uncached (tests compare it with `encode`).
    public func libraryEncode(_ text: String) throws -> [Int32] {
        var text = text
        return try text.withUTF8 { try libraryEncode(utf8: UnsafeRawBufferPointer($0)) }
    }

    /// The library's own Encode of raw bytes (which may be malformed UTF-8).
    public func libraryEncode(utf8: UnsafeRawBufferPointer) throws -> [Int32] {
        var ids: UnsafeMutablePointer<Int32>? = nil
        var count = 0
        var err: UnsafeMutablePointer<CChar>? = nil
        let rc = csp_encode_ids(handle, utf8.baseAddress?.assumingMemoryBound(to: CChar.self), utf8.count, &ids, &count, &err)
        guard rc == 0, let ids else { throw TokenizerError.encode(Self.take(err)) }
        defer { csp_free_buffer(ids) }
        return Array(UnsafeBufferPointer(start: ids, count: count))
    }

    /// Piece strings of `text` (no BOS/EOS), as sentencepiece's EncodeAsPieces returns them.
    public func encodePieces(_ text: String) throws -> [String] {
        var text = text
        return try text.withUTF8 { utf8 in
            var buf: UnsafeMutablePointer<CChar>? = nil
            var count = 0, bytes = 0
            var err: UnsafeMutablePointer<CChar>? = nil
            let rc = utf8.withMemoryRebound(to: CChar.self) { c in
                csp_encode_pieces(handle, c.baseAddress, c.count, &buf, &count, &bytes, &err)
            }
            guard rc == 0, let buf else { throw TokenizerError.encode(Self.take(err)) }
            defer { csp_free_buffer(buf) }
            var out: [String] = []
            out.reserveCapacity(count)
            var start = 0
            let raw = UnsafeRawPointer(buf).assumingMemoryBound(to: UInt8.self)
            for i in 0..<bytes where raw[i] == 0 {
                out.append(String(decoding: UnsafeBufferPointer(start: raw + start, count: i - start), as: UTF8.self))
                start = i + 1
            }
            return out
        }
    }

    /// Text of `ids` (sentencepiece Decode: control pieces vanish, byte pieces are reassembled).
    public func decodeIDs(_ ids32: [Int32]) throws -> String {
        var text: UnsafeMutablePointer<CChar>? = nil
        var length = 0
        var err: UnsafeMutablePointer<CChar>? = nil
        let rc = ids32.withUnsafeBufferPointer { csp_decode_ids(handle, $0.baseAddress, $0.count, &text, &length, &err) }
        guard rc == 0, let text else { throw TokenizerError.decode(Self.take(err)) }
        defer { csp_free_buffer(text) }
        return Self.string(text, length)
    }

    /// The normalized text sentencepiece segments (with the U+2581 meta symbol).
    public func normalize(_ text: String) throws -> String {
        var text = text
        return try text.withUTF8 { utf8 in
            var out: UnsafeMutablePointer<CChar>? = nil
            var length = 0
            var err: UnsafeMutablePointer<CChar>? = nil
            let rc = utf8.withMemoryRebound(to: CChar.self) { c in
                csp_normalize(handle, c.baseAddress, c.count, &out, &length, &err)
            }
            guard rc == 0, let out else { throw TokenizerError.encode(Self.take(err)) }
            defer { csp_free_buffer(out) }
            return Self.string(out, length)
        }
    }

    /// The piece string of an id, or nil when out of range.
    public func piece(_ id: Int) -> String? {
        var p: UnsafeMutablePointer<CChar>? = nil
        var length = 0
        guard csp_id_to_piece(handle, Int32(id), &p, &length) == 0, let p else { return nil }
        defer { csp_free_buffer(p) }
        return Self.string(p, length)
    }

    /// The id of a piece, or nil when the vocabulary does not contain it.
    public func id(of piece: String) -> Int? {
        var piece = piece
        let id = piece.withUTF8 { u in u.withMemoryRebound(to: CChar.self) { Int(csp_piece_to_id(handle, $0.baseAddress, $0.count)) } }
        if id == unkID && piece != self.piece(unkID) { return nil }
        return id
    }

    public func score(_ id: Int) -> Float { csp_score(handle, Int32(id)) }

    public func type(_ id: Int) -> PieceType {
        switch Int(csp_piece_type(handle, Int32(id))) {
        case Int(CSP_UNKNOWN): return .unknown
        case Int(CSP_CONTROL): return .control
        case Int(CSP_USER_DEFINED): return .userDefined
        case Int(CSP_UNUSED): return .unused
        case Int(CSP_BYTE): return .byte
        default: return .normal
        }
    }

    /// Every vocabulary entry in id order.
    public var vocabulary: [VocabEntry] {
        (0..<vocabSize).map { VocabEntry(id: $0, piece: piece($0) ?? "", score: score($0), type: type($0)) }
    }

    /// SentencePiece models (Llama 2, TinyLlama, Gemma, Finch's own) put BOS before a prompt when they have one.
    public var addsBOS: Bool { bosID >= 0 }

    public func isControl(_ id: Int) -> Bool { type(id) == .control }

    /// Writes `tokenizer.model` into `folder`.
    public func save(toFolder folder: URL) throws { try write(to: folder.appendingPathComponent("tokenizer.model")) }

    /// Writes the model bytes atomically to `url`.
    public func write(to url: URL) throws { try modelBytes.write(to: url, options: .atomic) }

    private static func string(_ p: UnsafeMutablePointer<CChar>, _ length: Int) -> String {
        String(decoding: UnsafeRawBufferPointer(start: p, count: length), as: UTF8.self)
    }

    private static func take(_ p: UnsafeMutablePointer<CChar>?) -> String {
        guard let p else { return "unknown error" }
        defer { csp_free_buffer(p) }
        return String(cString: p)
    }
}

extension SentencePieceTokenizer {
    /// Loads from a `.model` file, or from `tokenizer.model` inside a folder (a model or dataset folder).
    public static func load(path: String) throws -> SentencePieceTokenizer {
        var isDir: ObjCBool = false
        var url = URL(fileURLWithPath: path)
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            url = url.appendingPathComponent("tokenizer.model")
        }
        return try SentencePieceTokenizer(contentsOf: url)
    }
}
