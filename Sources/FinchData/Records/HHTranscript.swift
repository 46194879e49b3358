import Foundation

/// Parses Anthropic HH-style transcripts (`\n\nHuman: ...\n\nAssistant: ...`) into turns.
public enum HHTranscript {
    static let markers: [(String, Role)] = [("\n\nHuman:", .user), ("\n\nAssistant:", .assistant), ("\n\nSystem:", .system)]

    /// Whether `text` looks like an HH transcript (starts with a Human or System marker after optional blanks).
    public static func looks(_ text: String) -> Bool {
        let t = text.drop(while: { $0 == "\n" })
        return t.hasPrefix("Human:") || t.hasPrefix("System:")
    }

    /// The turns of a transcript, contents trimmed. A trailing empty assistant turn (the open
    /// `\n\nAssistant:` a prompt ends with) is dropped, so a prompt parses to turns ending with the user.
    public static func parse(_ text: String) -> [Message] {
        // One pass over the UTF-8 bytes: every marker starts with "\n\n", so the first marker found at each
        // "\n\n" in order is the earliest (three String searches per turn were quadratic in the length).
        // JSONSerialization's strings are bridged UTF-16 on Linux: make the bytes native and contiguous once.
        var text = text
        text.makeContiguousUTF8()
        let t = text.withUTF8 { buf -> [UInt8] in
            var start = 0
            while start < buf.count && buf[start] == 0x0A { start += 1 }
            var bytes: [UInt8] = [0x0A, 0x0A]
            bytes.reserveCapacity(2 + buf.count - start)
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: buf[start...]))   // a memcpy
            return bytes
        }
        var out: [Message] = []
        var current: Role? = nil
        var contentStart = 0
        func flush(upTo end: Int) {
            guard let r = current else { return }
            out.append(Message(r, String(decoding: t[contentStart..<end], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)))
        }
        var i = 0
        while i + 1 < t.count {
            if t[i] == 0x0A && t[i + 1] == 0x0A,
               let (marker, role) = markerBytes.first(where: { m in i + m.0.count <= t.count && (0..<m.0.count).allSatisfy { t[i + $0] == m.0[$0] } }) {
                flush(upTo: i)
                current = role
                contentStart = i + marker.count
                i = contentStart
                continue
            }
            i += 1
        }
        flush(upTo: t.count)
        if let last = out.last, last.role == .assistant, last.content.isEmpty { out.removeLast() }
        return out
    }

    static let markerBytes: [([UInt8], Role)] = markers.map { (Array($0.0.utf8), $0.1) }
}
