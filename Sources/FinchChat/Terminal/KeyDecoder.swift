/// A key press as the line editor understands it.
public enum Key: Equatable {
    case text(Unicode.Scalar)
    case enter, backspace, delete, left, right, home, end, up, down
    case wordLeft, wordRight, deleteWordBack, deleteWordForward, killToEnd, killToStart
    case interrupt      // Ctrl-C
    case endOfFile      // Ctrl-D
    case clearScreen    // Ctrl-L
    case ignored
}

/// Turns the bytes a terminal sends into keys: UTF-8 text, control characters and the usual
/// VT100/xterm escape sequences. Keeps partial sequences between calls (a read may split them).
public struct KeyDecoder {
    public init() {}

    private var pending: [UInt8] = []

    public mutating func feed(_ bytes: [UInt8]) -> [Key] {
        pending += bytes
        var keys: [Key] = []
        var i = 0
        while i < pending.count {
            guard let (key, length) = decode(at: i) else { break }   // incomplete: wait for more bytes
            keys.append(key)
            i += length
        }
        pending.removeFirst(i)
        return keys
    }

    /// True when bytes of an unfinished sequence are waiting (a lone ESC, half a UTF-8 character).
    public var hasPending: Bool { !pending.isEmpty }

    /// Gives up on an unfinished sequence (a lone ESC press).
    public mutating func flushPending() -> [Key] {
        pending.removeAll()
        return []
    }

    private func decode(at i: Int) -> (Key, Int)? {
        let b = pending[i]
        switch b {
        case 0x1B: return decodeEscape(at: i)
        case 0x0D, 0x0A: return (.enter, 1)
        case 0x7F, 0x08: return (.backspace, 1)
        case 0x01: return (.home, 1)            // Ctrl-A
        case 0x02: return (.left, 1)            // Ctrl-B
        case 0x03: return (.interrupt, 1)       // Ctrl-C
        case 0x04: return (.endOfFile, 1)       // Ctrl-D
        case 0x05: return (.end, 1)             // Ctrl-E
        case 0x06: return (.right, 1)           // Ctrl-F
        case 0x0B: return (.killToEnd, 1)       // Ctrl-K
        case 0x0C: return (.clearScreen, 1)     // Ctrl-L
        case 0x0E: return (.down, 1)            // Ctrl-N
        case 0x10: return (.up, 1)              // Ctrl-P
        case 0x15: return (.killToStart, 1)     // Ctrl-U
        case 0x17: return (.deleteWordBack, 1)  // Ctrl-W
        case 0x09: return (.text(" "), 1)       // Tab: no completion, insert a space
        case 0x00..<0x20: return (.ignored, 1)
        default: return decodeUTF8(at: i)
        }
    }

    private func decodeUTF8(at i: Int) -> (Key, Int)? {
        let b = pending[i]
        let length: Int
        switch b {
        case 0x00..<0x80: return (.text(Unicode.Scalar(b)), 1)
        case 0xC2..<0xE0: length = 2
        case 0xE0..<0xF0: length = 3
        case 0xF0..<0xF5: length = 4
        default: return (.ignored, 1)   // stray continuation or invalid lead byte
        }
        guard i + length <= pending.count else { return nil }
        var value = UInt32(b) & (0xFF >> (length + 1))
        for k in 1..<length {
            let c = pending[i + k]
            guard c & 0xC0 == 0x80 else { return (.ignored, k) }
            value = value << 6 | UInt32(c & 0x3F)
        }
        guard let scalar = Unicode.Scalar(value) else { return (.ignored, length) }
        return (.text(scalar), length)
    }

    private func decodeEscape(at i: Int) -> (Key, Int)? {
        guard i + 1 < pending.count else { return nil }
        let next = pending[i + 1]
        switch next {
        case UInt8(ascii: "["):
            // CSI: parameters 0x30–0x3F, intermediates 0x20–0x2F, final byte 0x40–0x7E.
            var j = i + 2
            while j < pending.count, (0x20...0x3F).contains(pending[j]) { j += 1 }
            guard j < pending.count else { return nil }
            let params = String(decoding: pending[(i + 2)..<j], as: UTF8.self)
            return (csiKey(params: params, final: pending[j]), j - i + 1)
        case UInt8(ascii: "O"):
            guard i + 2 < pending.count else { return nil }
            return (csiKey(params: "", final: pending[i + 2]), 3)
        case UInt8(ascii: "b"): return (.wordLeft, 2)
        case UInt8(ascii: "f"): return (.wordRight, 2)
        case UInt8(ascii: "d"): return (.deleteWordForward, 2)
        case 0x7F, 0x08: return (.deleteWordBack, 2)
        case 0x0D: return (.enter, 2)
        default: return (.ignored, 2)
        }
    }

    private func csiKey(params: String, final: UInt8) -> Key {
        // Modifiers arrive as "1;5" (Ctrl) or "1;3" (Alt): Ctrl/Alt + arrows move by word.
        let parts = params.split(separator: ";")
        let modified = parts.count > 1 && parts[1] != "1"
        switch final {
        case UInt8(ascii: "A"): return .up
        case UInt8(ascii: "B"): return .down
        case UInt8(ascii: "C"): return modified ? .wordRight : .right
        case UInt8(ascii: "D"): return modified ? .wordLeft : .left
        case UInt8(ascii: "H"): return .home
        case UInt8(ascii: "F"): return .end
        case UInt8(ascii: "~"):
            switch parts.first.map(String.init) ?? "" {
            case "1", "7": return .home
            case "4", "8": return .end
            case "3": return .delete
            default: return .ignored
            }
        default: return .ignored
        }
    }
}
