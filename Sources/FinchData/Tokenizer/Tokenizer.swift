import Foundation

/// What every tokenizer Finch runs offers: SentencePiece (`SentencePieceTokenizer`, through libsentencepiece)
/// and byte-level / SentencePiece-style BPE from `tokenizer.json` or a GGUF vocabulary (`BPETokenizer`).
///
/// `encode` never adds BOS/EOS (callers add them, see `addsBOS`); it maps the tokenizer's added/special
/// tokens that occur in the text to their ids exactly as the model's runtime does (Hugging Face
/// `tokenizers` with `add_special_tokens=False`; SentencePiece has none). `decode` is the inverse: control
/// tokens vanish, byte pieces are reassembled, and a cut in the middle of a UTF-8 sequence decodes to the
/// complete characters only when followed by the rest (see `StreamingDecoder`).
public protocol TextTokenizer: AnyObject, Sendable {
    /// Where it came from (path), for messages.
    var source: String { get }
    /// Identifies the exact vocabulary and rules (sha256 hex): a dataset records the tokenizer it was packed with.
    var fingerprint: String { get }
    var vocabSize: Int { get }
    /// -1 when the tokenizer defines none.
    var bosID: Int { get }
    var eosID: Int { get }
    var padID: Int { get }
    var unkID: Int { get }
    /// Whether the model's runtime puts BOS before a prompt (transformers' post-processor, GGUF
    /// `tokenizer.ggml.add_bos_token`, SentencePiece models: true).
    var addsBOS: Bool { get }

    /// Token ids of `text` (no BOS/EOS).
    func encode(_ text: String) throws -> [Int32]
    /// Appends the ids of UTF-8 `bytes` (the packing fast path).
    func encode(utf8 bytes: UnsafeRawBufferPointer, appendingTo ids: inout [Int32]) throws
    /// Text of `ids`.
    func decodeIDs(_ ids: [Int32]) throws -> String
    /// The vocabulary string of an id (as stored: "Ġthe", "▁the", "<0x0A>"), nil when out of range.
    func piece(_ id: Int) -> String?
    /// The id of a vocabulary string, nil when absent.
    func id(of piece: String) -> Int?
    /// Whether an id is a control/special token (rendered as nothing by `decode`, never trained as text).
    func isControl(_ id: Int) -> Bool
    /// Writes the tokenizer's own files into a model or dataset folder (`tokenizer.model` or `tokenizer.json`).
    func save(toFolder folder: URL) throws
}

extension TextTokenizer {
    /// Text of `ids` (any integer collection).
    public func decode<C: Collection>(_ ids: C) throws -> String where C.Element: BinaryInteger {
        try decodeIDs(ids.map { Int32(truncatingIfNeeded: $0) })
    }

    /// The id of a piece that must exist (e.g. a template's end-of-turn token).
    public func requireID(_ piece: String) throws -> Int {
        guard let id = id(of: piece) else { throw TokenizerError.missingPiece(piece: piece, model: source) }
        return id
    }
}
