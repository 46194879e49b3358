import Foundation
import FinchTokenizerKernels

/// A token matched in the text before pre-tokenization (`tokenizers`' AddedToken; GGUF control and
/// user-defined tokens).
public struct AddedToken: Sendable, Equatable {
    public var id: Int32
    public var content: String
    public var special: Bool
    public var lstrip = false
    public var rstrip = false
    public var singleWord = false
    public var normalized = false

    public init(id: Int32, content: String, special: Bool, lstrip: Bool = false, rstrip: Bool = false,
                singleWord: Bool = false, normalized: Bool = false) {
        self.id = id; self.content = content; self.special = special
        self.lstrip = lstrip; self.rstrip = rstrip; self.singleWord = singleWord; self.normalized = normalized
    }
}

/// Cuts text at added tokens the way `tokenizers`' AddedVocabulary does: leftmost-longest matches anywhere
/// (special tokens included), `single_word` needing non-word characters around, `lstrip`/`rstrip`
/// swallowing neighbouring whitespace.
struct AddedTokenSplitter: Sendable {
    let tokens: [AddedToken]
    private let bytes: [[UInt8]]
    /// Candidates (indices into `tokens`) by first byte, longest first.
    private let byFirst: [[Int]]
    let isEmpty: Bool

    init(_ tokens: [AddedToken]) {
        let usable = tokens.filter { !$0.content.isEmpty }
        self.tokens = usable
        let bs = usable.map { Array($0.content.utf8) }
        bytes = bs
        var table = [[Int]](repeating: [], count: 256)
        for (i, b) in bs.enumerated() { table[Int(b[0])].append(i) }
        for k in 0..<256 { table[k].sort { bs[$0].count > bs[$1].count || (bs[$0].count == bs[$1].count && $0 < $1) } }
        byFirst = table
        isEmpty = usable.isEmpty
    }

    enum Piece { case text(Int, Int), token(Int32) }

    /// Rust regex `\w`: alphanumeric, marks, connector punctuation.
    static func isWordScalar(_ v: UInt32) -> Bool {
        guard let s = Unicode.Scalar(v) else { return false }
        if s.properties.isAlphabetic { return true }
        switch s.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber, .nonspacingMark, .spacingMark, .enclosingMark,
             .connectorPunctuation: return true
        default: return v == 0x200C || v == 0x200D
        }
    }

    static func isSpace(_ v: UInt32) -> Bool { Unicode.Scalar(v)?.properties.isWhitespace ?? false }

    /// Last scalar before `i` (start of it and value).
    static func scalarBefore(_ p: UnsafePointer<UInt8>, _ i: Int) -> (Int, UInt32) {
        var j = i - 1
        while j > 0 && (p[j] & 0xC0) == 0x80 { j -= 1 }
        return (j, decodeScalar(p, j, i).scalar)
    }

    /// Calls `body` with every text stretch and matched token of `p[0..<n]`, in order.
    func split(_ p: UnsafePointer<UInt8>, _ n: Int, _ body: (Piece) throws -> Void) rethrows {
        if isEmpty { if n > 0 { try body(.text(0, n)) }; return }
        var offset = 0      // end of what has been emitted
        var i = 0
        while i < n {
            let cands = byFirst[Int(p[i])]
            var matched = -1
            if !cands.isEmpty {
                for c in cands {
                    let b = bytes[c]
                    if b.count <= n - i && b.withUnsafeBufferPointer({ memcmp($0.baseAddress!, p + i, b.count) == 0 }) {
                        matched = c; break
                    }
                }
            }
            if matched < 0 { i += 1; continue }
            let tok = tokens[matched]
            var start = i, stop = i + bytes[matched].count
            if tok.singleWord {
                let startOK = start == 0 || !AddedTokenSplitter.isWordScalar(AddedTokenSplitter.scalarBefore(p, start).1)
                let stopOK = stop == n || !AddedTokenSplitter.isWordScalar(decodeScalar(p, stop, n).scalar)
                if !startOK || !stopOK { i = stop; continue }
            }
            if tok.lstrip {
                var s = start
                while s > offset {
                    let (j, v) = AddedTokenSplitter.scalarBefore(p, s)
                    if !AddedTokenSplitter.isSpace(v) { break }
                    s = j
                }
                start = max(s, offset)
            }
            if tok.rstrip {
                while stop < n {
                    let (v, len) = decodeScalar(p, stop, n)
                    if !AddedTokenSplitter.isSpace(v) { break }
                    stop += len
                }
            }
            if start > offset { try body(.text(offset, start)) }
            try body(.token(tok.id))
            offset = stop
            i = stop
        }
        if offset < n { try body(.text(offset, n)) }
    }
}
