/// Holds back streamed text that might be the start of a stop string, so a stop string is never shown.
public struct StopStringFilter {
    public let stops: [String]
    private var pending = ""

    public init(stops: [String]) { self.stops = stops.filter { !$0.isEmpty } }

    /// Adds a piece of text. Returns the text safe to show now and, when a stop string appeared, which one
    /// (the text from the stop string on is dropped).
    public mutating func feed(_ piece: String) -> (text: String, stop: String?) {
        pending += piece
        guard !stops.isEmpty else { defer { pending = "" }; return (pending, nil) }
        var earliest: (Range<String.Index>, String)?
        for stop in stops {
            if let r = pending.range(of: stop), earliest == nil || r.lowerBound < earliest!.0.lowerBound { earliest = (r, stop) }
        }
        if let (range, stop) = earliest {
            let text = String(pending[..<range.lowerBound])
            pending = ""
            return (text, stop)
        }
        // Keep the longest tail of `pending` that is a proper prefix of some stop string.
        var keep = 0
        for stop in stops {
            for n in stride(from: min(stop.count - 1, pending.count), to: keep, by: -1)
            where pending.hasSuffix(String(stop.prefix(n))) {
                keep = n
                break
            }
        }
        let cut = pending.index(pending.endIndex, offsetBy: -keep)
        let text = String(pending[..<cut])
        pending = String(pending[cut...])
        return (text, nil)
    }

    /// The held-back text, when the reply ends without a stop string.
    public mutating func flush() -> String {
        defer { pending = "" }
        return pending
    }
}

/// Turns generated token ids into text as they come. SentencePiece pieces are not independent (a leading
/// "▁" becomes a space except at the start, and byte-fallback pieces form one character only together),
/// so the whole reply is decoded each time and only the new tail is emitted; text ending in an
/// incomplete character (U+FFFD) is held back until the character is complete.
public struct IncrementalDetokenizer {
    private let decode: ([Int]) throws -> String
    private var ids: [Int] = []
    private var emitted = ""

    public init(decode: @escaping ([Int]) throws -> String) { self.decode = decode }

    /// The new text after adding `id` (often empty while a character is incomplete).
    public mutating func add(_ id: Int) throws -> String {
        ids.append(id)
        let text = try decode(ids)
        if text.hasSuffix("\u{FFFD}") { return "" }
        guard text.hasPrefix(emitted) else { return "" }   // decoding changed earlier text: wait
        let new = String(text.dropFirst(emitted.count))
        emitted = text
        return new
    }

    /// Whatever is still held back (an incomplete character at the very end).
    public mutating func finish() throws -> String {
        let text = try decode(ids)
        guard text.hasPrefix(emitted) else { return "" }
        let rest = String(text.dropFirst(emitted.count))
        emitted = text
        return rest
    }
}
