/// sentencepiece's Normalizer (normalizer.cc, 0.1.97): the precompiled charsmap (longest rule wins) or identity,
/// user-defined symbols passed through untouched, spaces escaped to "▁", a dummy "▁" prefix (or suffix), and
/// extra whitespace removed when the spec asks. Malformed UTF-8 becomes U+FFFD, one byte at a time.
struct SentencePieceNormalizer: Sendable {
    let charsmap: DartsCloneTrie?
    /// The charsmap's replacement strings, each NUL-terminated.
    let replacements: [UInt8]
    let userDefined: ByteTrie?
    let addDummyPrefix: Bool, removeExtraWhitespaces: Bool, escapeWhitespaces: Bool, treatWhitespaceAsSuffix: Bool

    static let space: [UInt8] = [0xE2, 0x96, 0x81]   // "▁"
    static let replacement: [UInt8] = [0xEF, 0xBF, 0xBD]

    init(_ spec: SentencePieceModelSpec, userDefined: ByteTrie?) throws {
        self.userDefined = userDefined
        addDummyPrefix = spec.addDummyPrefix
        removeExtraWhitespaces = spec.removeExtraWhitespaces
        escapeWhitespaces = spec.escapeWhitespaces
        treatWhitespaceAsSuffix = spec.treatWhitespaceAsSuffix
        let blob = spec.precompiledCharsmap
        if blob.isEmpty {
            charsmap = nil; replacements = []
            return
        }
        // <trie size: uint32 LE><double array><replacement strings>
        guard blob.count > 4 else { throw SentencePieceModelSpec.FormatError(message: "precompiled charsmap is broken") }
        let trieBytes = Int(blob[0]) | Int(blob[1]) << 8 | Int(blob[2]) << 16 | Int(blob[3]) << 24
        guard trieBytes < blob.count - 4, trieBytes % 4 == 0 else {
            throw SentencePieceModelSpec.FormatError(message: "precompiled charsmap trie size \(trieBytes) exceeds the blob")
        }
        var units = [UInt32](repeating: 0, count: trieBytes / 4)
        for k in units.indices {
            let o = 4 + 4 * k
            units[k] = UInt32(blob[o]) | UInt32(blob[o + 1]) << 8 | UInt32(blob[o + 2]) << 16 | UInt32(blob[o + 3]) << 24
        }
        charsmap = DartsCloneTrie(units: units)
        replacements = Array(blob[(4 + trieBytes)...]) + [0]
    }

    /// Normalises `input` into `out` (replacing its contents).
    func normalize(_ input: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        out.removeAll(keepingCapacity: true)
        if input.isEmpty { return }
        // Raw views once per call: the loop below must not retain the tables per character.
        let units = charsmap?.units ?? []
        units.withUnsafeBufferPointer { units in
            replacements.withUnsafeBytes { replacements in
                if let userDefined {
                    userDefined.withView { run(input, &out, Rules(userDefined: $0, units: units, replacements: replacements)) }
                } else {
                    run(input, &out, Rules(userDefined: nil, units: units, replacements: replacements))
                }
            }
        }
    }

    private struct Rules {
        let userDefined: ByteTrie.View?
        let units: UnsafeBufferPointer<UInt32>
        let replacements: UnsafeRawBufferPointer

        /// One step of NormalizePrefix: calls `out` with what the next unit of `input[i...]` normalises to and
        /// returns how many bytes it consumes.
        @inline(__always)
        func prefix(_ input: UnsafeRawBufferPointer, _ i: Int, _ out: (UnsafeRawBufferPointer) -> Void) -> Int {
            if let userDefined {
                let n = longestMatch(userDefined, input, i)
                if n > 0 { out(UnsafeRawBufferPointer(rebasing: input[i..<i + n])); return n }
            }
            if !units.isEmpty, let (length, value) = DartsCloneTrie.longestPrefix(units, input, from: i) {
                let start = min(value, replacements.count)   // a broken charsmap yields an empty replacement
                var end = start
                while end < replacements.count && replacements[end] != 0 { end += 1 }
                out(UnsafeRawBufferPointer(rebasing: replacements[start..<end]))
                return length
            }
            let n = SentencePieceUTF8.validLength(input, i)
            if n == 0 {
                SentencePieceNormalizer.replacement.withUnsafeBytes { out($0) }
                return 1
            }
            out(UnsafeRawBufferPointer(rebasing: input[i..<i + n]))
            return n
        }
    }

    private func run(_ input: UnsafeRawBufferPointer, _ out: inout [UInt8], _ rules: Rules) {
        var i = 0
        let n = input.count
        if removeExtraWhitespaces {
            while i < n {
                var isSpace = false
                let used = rules.prefix(input, i) { isSpace = $0.count == 1 && $0[0] == 0x20 }
                if !isSpace { break }
                i += used
            }
            if i == n { return }
        }
        out.reserveCapacity(3 * (n - i) + 6)
        let escape = escapeWhitespaces
        func addSpace() {
            if escape { out.append(0xE2); out.append(0x96); out.append(0x81) } else { out.append(0x20) }
        }
        if !treatWhitespaceAsSuffix && addDummyPrefix { addSpace() }
        var prevSpace = removeExtraWhitespaces
        while i < n {
            // Plain ASCII other than space, with no rule for it: itself (the common case, without a closure).
            let c = input[i]
            if c < 0x80 && c != 0x20 && rules.units.isEmpty
                && (rules.userDefined.map { $0.child(0, c) < 0 } ?? true) {
                out.append(c)
                prevSpace = false
                i += 1
                continue
            }
            i += rules.prefix(input, i) { sp in
                var k = 0
                if prevSpace { while k < sp.count && sp[k] == 0x20 { k += 1 } }
                guard k < sp.count else { return }
                for j in k..<sp.count {
                    if escape && sp[j] == 0x20 { out.append(0xE2); out.append(0x96); out.append(0x81) } else { out.append(sp[j]) }
                }
                prevSpace = sp[sp.count - 1] == 0x20
            }
            if !removeExtraWhitespaces { prevSpace = false }
        }
        if removeExtraWhitespaces {
            if escape {
                while out.count >= 3 && out[out.count - 3] == 0xE2 && out[out.count - 2] == 0x96 && out[out.count - 1] == 0x81 {
                    out.removeLast(3)
                }
            } else {
                while out.last == 0x20 { out.removeLast() }
            }
        }
        if treatWhitespaceAsSuffix && addDummyPrefix { addSpace() }
    }
}

/// Longest key of `trie` that is a prefix of `text[from...]` (its byte length), or 0.
@inline(__always)
func longestMatch(_ trie: ByteTrie.View, _ text: UnsafeRawBufferPointer, _ from: Int) -> Int {
    var s: Int32 = 0, best = 0, i = from
    while i < text.count {
        s = trie.child(s, text[i])
        if s < 0 { break }
        i += 1
        if trie.value[Int(s)] >= 0 { best = i - from }
    }
    return best
}

/// UTF-8 as sentencepiece reads it (util.h/util.cc).
enum SentencePieceUTF8 {
    /// Bytes of the character at `i` as OneCharLen counts them from the lead byte alone, cut at the end.
    @inline(__always) static func oneCharLength(_ t: UnsafeRawBufferPointer, _ i: Int) -> Int {
        let c = t[i]
        let n = c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4
        return min(n, t.count - i)
    }

    /// Length of a valid character at `i` (IsValidDecodeUTF8: a literal U+FFFD counts as valid), 0 if malformed.
    @inline(__always) static func validLength(_ t: UnsafeRawBufferPointer, _ i: Int) -> Int {
        let c0 = UInt32(t[i])
        if c0 < 0x80 { return 1 }
        let left = t.count - i
        @inline(__always) func trail(_ k: Int) -> Bool { t[i + k] & 0xC0 == 0x80 }
        @inline(__always) func valid(_ cp: UInt32) -> Bool { cp < 0xD800 || (cp >= 0xE000 && cp <= 0x10FFFF) }
        if left >= 2 && c0 & 0xE0 == 0xC0 {
            let cp = (c0 & 0x1F) << 6 | UInt32(t[i + 1] & 0x3F)
            return trail(1) && cp >= 0x80 && valid(cp) ? 2 : 0
        } else if left >= 3 && c0 & 0xF0 == 0xE0 {
            let cp = (c0 & 0x0F) << 12 | UInt32(t[i + 1] & 0x3F) << 6 | UInt32(t[i + 2] & 0x3F)
            return trail(1) && trail(2) && cp >= 0x800 && valid(cp) ? 3 : 0
        } else if left >= 4 && c0 & 0xF8 == 0xF0 {
            let cp = (c0 & 0x07) << 18 | UInt32(t[i + 1] & 0x3F) << 12 | UInt32(t[i + 2] & 0x3F) << 6 | UInt32(t[i + 3] & 0x3F)
            return trail(1) && trail(2) && trail(3) && cp >= 0x10000 && valid(cp) ? 4 : 0
        }
        return 0
    }
}
