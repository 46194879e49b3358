import Foundation

/// Lines entered at the prompt, oldest first, kept in memory and in a file (one entry a line,
/// by default `~/.finch_history`, or `$FINCH_HISTORY`), capped at `limit` entries.
public final class History {
    public private(set) var entries: [String] = []
    public let file: URL?
    public let limit: Int

    /// The default history file: `$FINCH_HISTORY` when set (empty = no file), else `~/.finch_history`.
    public static var defaultFile: URL? {
        if let env = ProcessInfo.processInfo.environment["FINCH_HISTORY"] {
            return env.isEmpty ? nil : URL(fileURLWithPath: env)
        }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".finch_history")
    }

    /// Loads `file` when it exists (an unreadable file just starts an empty history).
    public init(file: URL?, limit: Int = 1000) {
        self.file = file
        self.limit = limit
        if let file, let text = try? String(contentsOf: file, encoding: .utf8) {
            entries = text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init).suffix(limit)
        }
    }

    /// Adds a line (not blank ones, not a repeat of the previous entry) and rewrites the file.
    public func add(_ line: String) {
        guard !line.trimmingCharacters(in: .whitespaces).isEmpty, !line.contains("\n"), entries.last != line else { return }
        entries.append(line)
        if entries.count > limit { entries.removeFirst(entries.count - limit) }
        guard let file else { return }
        // Another finch chat may have added lines since we loaded: keep theirs too.
        var onDisk = (try? String(contentsOf: file, encoding: .utf8))?.split(separator: "\n").map(String.init) ?? []
        if onDisk.last != line { onDisk.append(line) }
        let data = Data((onDisk.suffix(limit).joined(separator: "\n") + "\n").utf8)
        try? data.write(to: file, options: .atomic)
    }
}

/// Up/down walk through the history while editing; the line being typed is kept as a draft at the end.
public struct HistoryCursor {
    public let entries: [String]
    public private(set) var index: Int
    private var draft = ""

    public init(entries: [String]) {
        self.entries = entries
        index = entries.count
    }

    /// The older entry to show, or nil at the oldest one.
    public mutating func up(current: String) -> String? {
        guard index > 0 else { return nil }
        if index == entries.count { draft = current }
        index -= 1
        return entries[index]
    }

    /// The newer entry (or the draft), or nil when already at the draft.
    public mutating func down() -> String? {
        guard index < entries.count else { return nil }
        index += 1
        return index == entries.count ? draft : entries[index]
    }
}
