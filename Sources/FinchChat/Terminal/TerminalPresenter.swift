import Foundation

/// Shows a chat on a terminal: replies stream as they come, notices are dimmed, errors go to stderr.
final class TerminalPresenter: ChatPresenter {
    private let out: FDWriter
    private let err = FDWriter(fd: 2)
    private let color: Bool
    private var replyEndsWithNewline = true

    init(out: FDWriter) {
        self.out = out
        color = ProcessInfo.processInfo.environment["NO_COLOR"] == nil
    }

    private func dim(_ s: String) -> String { color ? "\u{1B}[2m\(s)\u{1B}[0m" : s }

    func say(_ text: String) { out.write(text + "\n") }
    func notice(_ text: String) { out.write(dim("[\(text)]") + "\n") }
    func error(_ text: String) { err.write((color ? "\u{1B}[31merror:\u{1B}[0m " : "error: ") + text + "\n") }

    func beginReply() { replyEndsWithNewline = true }

    func replyPiece(_ text: String) {
        guard !text.isEmpty else { return }
        out.write(text)
        replyEndsWithNewline = text.hasSuffix("\n")
    }

    func endReply(_ stats: ReplyStats, verbose: Bool) {
        var tail = ""
        switch stats.stopReason {
        case .interrupted: tail = " " + dim("[interrupted]")
        case .maxTokens: tail = " " + dim("[max_tokens reached]")
        case .contextFull: tail = " " + dim("[context full]")
        default: break
        }
        out.write(tail + (replyEndsWithNewline && tail.isEmpty ? "" : "\n"))
        if verbose { out.write(dim("[\(stats.summary)]") + "\n") }
    }
}

/// Scripted use (stdin not a terminal): one reply per line with no decoration. Newlines and
/// backslashes inside a reply are escaped as `\n`, `\r` and `\\` so each reply stays one line.
final class PipePresenter: ChatPresenter {
    private let out: FDWriter
    private let err = FDWriter(fd: 2)
    private var reply = ""

    init(out: FDWriter) { self.out = out }

    func say(_ text: String) { err.write(text + "\n") }
    func notice(_ text: String) { err.write("[\(text)]\n") }
    func error(_ text: String) { err.write("error: \(text)\n") }
    func beginReply() { reply = "" }
    func replyPiece(_ text: String) { reply += text }

    func endReply(_ stats: ReplyStats, verbose: Bool) {
        out.write(PipeFormat.escape(reply) + "\n")
        if verbose { err.write("[\(stats.summary)]\n") }
    }
}

/// How replies are written when standard input is not a terminal.
public enum PipeFormat {
    /// The one-line form of a reply: `\` → `\\`, newline → `\n`, carriage return → `\r`.
    public static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
            .replacingOccurrences(of: "\r", with: "\\r")
    }
}
