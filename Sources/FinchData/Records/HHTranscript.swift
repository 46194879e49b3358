import Foundation

/// Parses Anthropic HH-style transcripts (`\n\nHuman: ...\n\nAssistant: ...`) into turns.
public enum HHTranscript {
    static let markers: [(String, Role)] = [("\n\nHuman:", .user), ("\n\nAssistant:", .assistant), ("\n\nSystem:", .system)]

    /// Whether `text` looks like an HH transcript (starts with a Human or System marker after optional blanks).
    public static func looks(_ text: String) -> Bool {
        let t = "\n\n" + text.drop(while: { $0 == "\n" })
        return t.hasPrefix("\n\nHuman:") || t.hasPrefix("\n\nSystem:")
    }

    /// The turns of a transcript, contents trimmed. A trailing empty assistant turn (the open
    /// `\n\nAssistant:` a prompt ends with) is dropped, so a prompt parses to turns ending with the user.
    public static func parse(_ text: String) -> [Message] {
        let t = "\n\n" + text.drop(while: { $0 == "\n" })
        var out: [Message] = []
        var current: Role? = nil
        var contentStart = t.startIndex
        var searchFrom = t.startIndex
        func flush(upTo end: String.Index) {
            guard let r = current else { return }
            out.append(Message(r, t[contentStart..<end].trimmingCharacters(in: .whitespacesAndNewlines)))
        }
        while true {
            // The earliest marker at or after searchFrom.
            var next: (Range<String.Index>, Role)? = nil
            for (marker, role) in markers {
                if let r = t.range(of: marker, range: searchFrom..<t.endIndex), next == nil || r.lowerBound < next!.0.lowerBound {
                    next = (r, role)
                }
            }
            guard let (range, role) = next else { break }
            flush(upTo: range.lowerBound)
            current = role
            contentStart = range.upperBound
            searchFrom = range.upperBound
        }
        flush(upTo: t.endIndex)
        if let last = out.last, last.role == .assistant, last.content.isEmpty { out.removeLast() }
        return out
    }
}
