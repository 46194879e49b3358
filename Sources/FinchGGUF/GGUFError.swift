/// FinchGGUF: reading GGUF files (llama.cpp's model container) and ggml's tensor block formats.
///
/// Every failure is a ``GGUFError`` naming the file and the place (byte offset, metadata key or tensor).

/// The error thrown for any unreadable, malformed or unsupported GGUF input.
public struct GGUFError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What went wrong, broadly.
    public enum Kind: String, Sendable {
        /// The file could not be opened, stat'ed or mapped.
        case io
        /// The file ends before a structure that must be there.
        case truncated
        /// The first four bytes are not "GGUF".
        case badMagic
        /// GGUF version 1 or newer than 3.
        case unsupportedVersion
        /// A count, length, shape, offset or value is out of range or inconsistent.
        case malformed
        /// A tensor type ggml knows but this reader cannot dequantise (e.g. Q8_1, IQ2_XXS).
        case unsupportedType
    }

    public let kind: Kind
    /// The file path ("" when not reading a file, e.g. `GGMLQuants.dequantize` on a raw buffer).
    public let file: String
    /// Byte offset in the file where the problem was found, when known.
    public let offset: Int?
    /// The metadata key or tensor the problem belongs to, e.g. "tensor 'blk.0.attn_q.weight'".
    public let context: String?
    public let message: String

    public init(_ kind: Kind, file: String, offset: Int? = nil, context: String? = nil, _ message: String) {
        self.kind = kind
        self.file = file
        self.offset = offset
        self.context = context
        self.message = message
    }

    public var description: String {
        var s = file.isEmpty ? "GGUF" : file
        if let offset { s += " at byte \(offset)" }
        if let context { s += " (\(context))" }
        return s + ": " + message
    }

    /// The same error attributed to `file` (and `context` when none was set).
    func attributed(file: String, context: String? = nil) -> GGUFError {
        GGUFError(kind, file: file, offset: offset, context: self.context ?? context, message)
    }
}
