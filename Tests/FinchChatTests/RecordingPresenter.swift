import FinchChat

/// Keeps everything a session shows, for assertions.
final class RecordingPresenter: ChatPresenter {
    var said: [String] = []
    var notices: [String] = []
    var errors: [String] = []
    var replies: [String] = []
    var stats: [ReplyStats] = []
    private var current = ""

    func say(_ text: String) { said.append(text) }
    func notice(_ text: String) { notices.append(text) }
    func error(_ text: String) { errors.append(text) }
    func beginReply() { current = "" }
    func replyPiece(_ text: String) { current += text }
    func endReply(_ stats: ReplyStats, verbose: Bool) { replies.append(current); self.stats.append(stats) }
}

func temporaryFolder(_ name: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("finch-chat-\(name)-\(getpid())")
    try? FileManager.default.removeItem(at: url)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

import Foundation
