/// The text being edited and the cursor, in user-perceived characters (grapheme clusters), so
/// arrows and backspace move over "é", "👍🏽" or "한" as one character.
public struct LineBuffer: Equatable {
    public private(set) var chars: [Character] = []
    /// Cursor position: 0 = before the first character, `chars.count` = at the end.
    public private(set) var cursor = 0

    public init(_ text: String = "") {
        chars = Array(text)
        cursor = chars.count
    }

    public var text: String { String(chars) }
    public var isEmpty: Bool { chars.isEmpty }

    /// Inserts a typed scalar; a combining mark (or any scalar that joins the previous character,
    /// e.g. a skin-tone modifier) merges into the character before the cursor.
    public mutating func insert(_ scalar: Unicode.Scalar) {
        if cursor > 0 {
            var merged = String(chars[cursor - 1])
            merged.unicodeScalars.append(scalar)
            if merged.count == 1 {
                chars[cursor - 1] = merged.first!
                return
            }
        }
        chars.insert(Character(scalar), at: cursor)
        cursor += 1
    }

    public mutating func insert(_ text: String) { for s in text.unicodeScalars { insert(s) } }

    public mutating func moveLeft() { if cursor > 0 { cursor -= 1 } }
    public mutating func moveRight() { if cursor < chars.count { cursor += 1 } }
    public mutating func moveHome() { cursor = 0 }
    public mutating func moveEnd() { cursor = chars.count }

    public mutating func backspace() {
        guard cursor > 0 else { return }
        chars.remove(at: cursor - 1)
        cursor -= 1
    }

    public mutating func deleteForward() {
        guard cursor < chars.count else { return }
        chars.remove(at: cursor)
    }

    /// Ctrl-K
    public mutating func killToEnd() { chars.removeSubrange(cursor...) }

    /// Ctrl-U
    public mutating func killToStart() {
        chars.removeSubrange(..<cursor)
        cursor = 0
    }

    /// Start of the word before the cursor (skipping spaces first), as readline's Ctrl-W / Alt-B.
    private func previousWordStart() -> Int {
        var i = cursor
        while i > 0, chars[i - 1].isWhitespace { i -= 1 }
        while i > 0, !chars[i - 1].isWhitespace { i -= 1 }
        return i
    }

    private func nextWordEnd() -> Int {
        var i = cursor
        while i < chars.count, chars[i].isWhitespace { i += 1 }
        while i < chars.count, !chars[i].isWhitespace { i += 1 }
        return i
    }

    /// Ctrl-W
    public mutating func deleteWordBack() {
        let start = previousWordStart()
        chars.removeSubrange(start..<cursor)
        cursor = start
    }

    /// Alt-D
    public mutating func deleteWordForward() { chars.removeSubrange(cursor..<nextWordEnd()) }

    public mutating func moveWordLeft() { cursor = previousWordStart() }
    public mutating func moveWordRight() { cursor = nextWordEnd() }
}

/// Columns a character takes on a terminal: 2 for East Asian wide characters and emoji, 0 for
/// control characters, 1 otherwise (a small table, good enough for the prompt line).
public func displayWidth(_ ch: Character) -> Int {
    guard let first = ch.unicodeScalars.first else { return 0 }
    let v = first.value
    if v < 0x20 || (0x7F..<0xA0).contains(v) { return 0 }
    if ch.unicodeScalars.count > 1, ch.unicodeScalars.contains(where: { $0.properties.isEmojiPresentation }) { return 2 }
    let wide: [ClosedRange<UInt32>] = [
        0x1100...0x115F, 0x2E80...0x303E, 0x3041...0x33FF, 0x3400...0x4DBF, 0x4E00...0x9FFF,
        0xA000...0xA4CF, 0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE30...0xFE4F, 0xFF00...0xFF60,
        0xFFE0...0xFFE6, 0x1F300...0x1F64F, 0x1F900...0x1F9FF, 0x20000...0x3FFFD,
    ]
    return wide.contains { $0.contains(v) } ? 2 : 1
}

public func displayWidth<S: Sequence>(_ chars: S) -> Int where S.Element == Character {
    chars.reduce(0) { $0 + displayWidth($1) }
}
