import Foundation

/// Decodes ids one at a time and hands out only complete characters: a token that ends inside a UTF-8
/// sequence (a byte-level piece, a `<0xNN>` byte) is held until the rest arrives. The concatenation of what
/// `append` and `finish` return equals `decode(allIDs)`.
///
/// Works with any `TextTokenizer`: it decodes a short window (the previous emission's ids as context, so
/// SentencePiece's leading-space rule and byte pieces decode as in the whole text) and returns what the new
/// ids add, unless the text so far ends in an incomplete sequence (U+FFFD).
public struct StreamingDecoder {
    public let tokenizer: any TextTokenizer
    private var ids: [Int32] = []
    /// ids[..<readOffset] are already emitted; ids[..<prefixOffset] were dropped or are context only.
    private var prefixOffset = 0
    private var readOffset = 0
    private var started = false

    public init(tokenizer: any TextTokenizer) { self.tokenizer = tokenizer }

    /// The complete characters the id adds (possibly "").
    public mutating func append(_ id: Int32) throws -> String {
        ids.append(id)
        return try emit(final: false)
    }

    /// Everything still held (an incomplete sequence decodes to U+FFFD), then starts over.
    public mutating func finish() throws -> String {
        let s = try emit(final: true)
        ids.removeAll(); prefixOffset = 0; readOffset = 0; started = false
        return s
    }

    private mutating func emit(final: Bool) throws -> String {
        let prefixText = try tokenizer.decodeIDs(Array(ids[prefixOffset..<readOffset]))
        let newText = try tokenizer.decodeIDs(Array(ids[prefixOffset...]))
        let p = prefixText.unicodeScalars, n = newText.unicodeScalars
        guard n.count > p.count || (final && readOffset < ids.count) else { return "" }
        if !final, n.last == "\u{FFFD}" { return "" }
        var out = String.UnicodeScalarView()
        out.append(contentsOf: n.dropFirst(p.count))
        // keep the last emitted ids as context for the next window
        prefixOffset = readOffset
        readOffset = ids.count
        if prefixOffset > 64 {
            ids.removeFirst(prefixOffset)
            readOffset -= prefixOffset
            prefixOffset = 0
        }
        return String(out)
    }
}
