import Foundation

/// Errors from loading or running a `BPETokenizer`: every load error names the file and the key.
public enum BPETokenizerError: Error, CustomStringConvertible, Equatable {
    /// A malformed or inconsistent entry.
    case invalid(path: String, key: String, message: String)
    /// A valid entry Finch does not implement (WordPiece, Unigram, an unknown pre-tokenizer pattern…).
    case unsupported(path: String, key: String, what: String)
    /// A character the vocabulary cannot represent (no unk token, no byte fallback).
    case encode(source: String, message: String)

    public var description: String {
        switch self {
        case .invalid(let path, let key, let message): return "\(path): \(key): \(message)"
        case .unsupported(let path, let key, let what): return "\(path): \(key): unsupported \(what)"
        case .encode(let source, let message): return "\(source): cannot encode: \(message)"
        }
    }
}
