import Foundation

/// The parts of a serialised `sentencepiece.ModelProto` that encoding needs, read straight from the protobuf
/// wire format (field numbers and defaults from sentencepiece_model.proto).
public struct SentencePieceModelSpec: Sendable {
    public enum PieceKind: Int, Sendable { case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6 }
    public enum ModelType: Int, Sendable { case unigram = 1, bpe = 2, word = 3, char = 4 }

    public struct Piece: Sendable {
        public var bytes: [UInt8]
        public var score: Float = 0
        public var kind: PieceKind = .normal
    }

    public var pieces: [Piece] = []
    public var modelType: ModelType = .unigram
    public var byteFallback = false
    public var treatWhitespaceAsSuffix = false
    /// The normaliser's precompiled rules (darts-clone trie + replacement strings); empty for identity.
    public var precompiledCharsmap: [UInt8] = []
    public var addDummyPrefix = true
    public var removeExtraWhitespaces = true
    public var escapeWhitespaces = true

    public struct FormatError: Error, CustomStringConvertible {
        public let message: String
        public var description: String { "SentencePiece model: \(message)" }
    }

    public init(_ bytes: [UInt8]) throws {
        try ProtoFields.forEach(bytes[...]) { field, value in
            switch (field, value) {
            case (1, .bytes(let b)): pieces.append(try Self.piece(b))
            case (2, .bytes(let b)): try readTrainer(b)
            case (3, .bytes(let b)): try readNormalizer(b)
            default: break
            }
        }
    }

    private static func piece(_ b: ArraySlice<UInt8>) throws -> Piece {
        var p = Piece(bytes: [])
        try ProtoFields.forEach(b) { field, value in
            switch (field, value) {
            case (1, .bytes(let s)): p.bytes = Array(s)
            case (2, .fixed32(let f)): p.score = Float(bitPattern: f)
            case (3, .varint(let t)):
                guard let kind = PieceKind(rawValue: Int(truncatingIfNeeded: t)) else { throw FormatError(message: "piece type \(t)") }
                p.kind = kind
            default: break
            }
        }
        return p
    }

    private mutating func readTrainer(_ b: ArraySlice<UInt8>) throws {
        try ProtoFields.forEach(b) { field, value in
            guard case .varint(let v) = value else { return }
            switch field {
            case 3:
                guard let t = ModelType(rawValue: Int(truncatingIfNeeded: v)) else { throw FormatError(message: "model type \(v)") }
                modelType = t
            case 24: treatWhitespaceAsSuffix = v != 0
            case 35: byteFallback = v != 0
            default: break
            }
        }
    }

    private mutating func readNormalizer(_ b: ArraySlice<UInt8>) throws {
        try ProtoFields.forEach(b) { field, value in
            switch (field, value) {
            case (2, .bytes(let s)): precompiledCharsmap = Array(s)
            case (3, .varint(let v)): addDummyPrefix = v != 0
            case (4, .varint(let v)): removeExtraWhitespaces = v != 0
            case (5, .varint(let v)): escapeWhitespaces = v != 0
            default: break
            }
        }
    }
}

/// Protobuf wire format: the fields of one message in order.
enum ProtoFields {
    enum Value { case varint(UInt64), fixed64(UInt64), bytes(ArraySlice<UInt8>), fixed32(UInt32) }

    static func forEach(_ b: ArraySlice<UInt8>, _ visit: (Int, Value) throws -> Void) throws {
        var i = b.startIndex
        func varint() throws -> UInt64 {
            var v: UInt64 = 0, shift: UInt64 = 0
            while i < b.endIndex, shift < 64 {
                let c = b[i]; i += 1
                v |= UInt64(c & 0x7f) << shift
                if c < 0x80 { return v }
                shift += 7
            }
            throw SentencePieceModelSpec.FormatError(message: "truncated varint")
        }
        func take(_ n: Int) throws -> ArraySlice<UInt8> {
            guard n >= 0, b.endIndex - i >= n else { throw SentencePieceModelSpec.FormatError(message: "truncated field") }
            defer { i += n }
            return b[i..<i + n]
        }
        while i < b.endIndex {
            let key = try varint()
            let field = Int(truncatingIfNeeded: key >> 3)
            switch key & 7 {
            case 0: try visit(field, .varint(try varint()))
            case 1: try visit(field, .fixed64(try take(8).reversed().reduce(0) { $0 << 8 | UInt64($1) }))
            case 2:
                let n = try varint()
                guard n <= UInt64(Int.max) else { throw SentencePieceModelSpec.FormatError(message: "field length \(n)") }
                try visit(field, .bytes(try take(Int(n))))
            case 5: try visit(field, .fixed32(try take(4).reversed().reduce(0) { $0 << 8 | UInt32($1) }))
            default: throw SentencePieceModelSpec.FormatError(message: "wire type \(key & 7)")
            }
        }
    }
}
