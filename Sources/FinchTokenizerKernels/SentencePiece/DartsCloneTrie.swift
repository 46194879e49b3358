/// Reader of a darts-clone double array (the trie inside a SentencePiece precompiled charsmap): 32-bit units,
/// each holding a label, an offset to its children and a has-leaf bit; a leaf unit holds the value.
struct DartsCloneTrie: Sendable {
    let units: [UInt32]

    init(units: [UInt32]) { self.units = units }

    @inline(__always) private static func offset(_ u: UInt32) -> Int { Int((u >> 10) << ((u & (1 << 9)) >> 6)) }
    @inline(__always) private static func label(_ u: UInt32) -> UInt32 { u & ((1 << 31) | 0xFF) }
    @inline(__always) private static func hasLeaf(_ u: UInt32) -> Bool { (u >> 8) & 1 == 1 }

    @inline(__always) private static func value(_ u: UInt32) -> Int { Int(u & ((1 << 31) - 1)) }

    /// The longest key that is a prefix of `text[from...]`: (length, value), or nil. As darts-clone's
    /// commonPrefixSearch followed by sentencepiece's pick of the longest match.
    static func longestPrefix(_ units: UnsafeBufferPointer<UInt32>, _ text: UnsafeRawBufferPointer, from: Int) -> (length: Int, value: Int)? {
        guard !units.isEmpty else { return nil }
        var best: (Int, Int)? = nil
        var pos = Self.offset(units[0])
        var i = from
        while i < text.count {
            let c = text[i]
            pos ^= Int(c)
            guard pos >= 0 && pos < units.count else { return best }
            let u = units[pos]
            if Self.label(u) != UInt32(c) { return best }
            pos ^= Self.offset(u)
            i += 1
            if Self.hasLeaf(u) {
                guard pos >= 0 && pos < units.count else { return best }
                best = (i - from, Self.value(units[pos]))
            }
        }
        return best
    }
}
