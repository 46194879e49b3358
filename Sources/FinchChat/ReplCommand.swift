import Foundation

/// One line typed at the chat prompt: a message to the model or a `/command`.
public enum ReplCommand: Equatable {
    case message(String)
    case help
    /// `/system` alone shows the system prompt; `/system TEXT` sets it.
    case system(String?)
    case reset
    case undo
    case retry
    /// The text after `/set`, e.g. `temperature=0.8 top_k=40`.
    case set(String)
    case show
    case save(path: String)
    /// `/prefer 1|2 [FILE]` (1 = the earlier answer, 2 = the newest); `/prefer FILE` only sets the file.
    case prefer(choice: Int?, path: String?)
    /// `/good [FILE]` / `/bad [FILE]`: label the last answer for KTO (`good` = desirable).
    case feedback(good: Bool, path: String?)
    case quit

    /// Command names with their one-line help, in `/help` order.
    public static let helpLines: [(String, String)] = [
        ("/help", "show this help"),
        ("/system TEXT", "set the system prompt (/system alone shows it)"),
        ("/reset", "start a new conversation (keeps the system prompt)"),
        ("/undo", "remove the last message and its reply"),
        ("/retry", "generate the last reply again"),
        ("/set KEY=VALUE ...", "change sampling: " + SamplingSettings.keys.joined(separator: " ")),
        ("/show", "show settings, context use and the speed of the last reply"),
        ("/save FILE", "append the conversation to FILE as a chat JSONL record (for SFT)"),
        ("/prefer 1|2 [FILE]", "after /retry: record which of the last two answers is better (preference JSONL)"),
        ("/good [FILE], /bad [FILE]", "label the last answer thumbs-up or thumbs-down (KTO JSONL for finch kto)"),
        ("/quit", "leave (or Ctrl-D on an empty line)"),
    ]

    /// Parses a line. Lines not starting with `/` are messages; `//text` sends `/text` as a message.
    public static func parse(_ line: String) throws -> ReplCommand {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        guard trimmed.hasPrefix("/") else { return .message(line) }
        if trimmed.hasPrefix("//") { return .message(String(trimmed.dropFirst())) }
        let body = trimmed.dropFirst()
        let name = String(body.prefix(while: { !$0.isWhitespace })).lowercased()
        let rest = body.dropFirst(name.count).trimmingCharacters(in: .whitespaces)
        func noArguments(_ command: ReplCommand) throws -> ReplCommand {
            guard rest.isEmpty else { throw ReplCommandError("/\(name) takes no arguments") }
            return command
        }
        func words() throws -> [String] {
            do { return try ShellWords.split(rest) } catch { throw ReplCommandError("/\(name): \(error)") }
        }
        switch name {
        case "help", "h", "?": return .help
        case "system": return .system(rest.isEmpty ? nil : rest)
        case "reset", "clear": return try noArguments(.reset)
        case "undo": return try noArguments(.undo)
        case "retry": return try noArguments(.retry)
        case "set":
            guard !rest.isEmpty else { throw ReplCommandError("/set needs KEY=VALUE (example: /set temperature=0.8)") }
            return .set(rest)
        case "show": return try noArguments(.show)
        case "save":
            let w = try words()
            guard w.count == 1 else { throw ReplCommandError("/save needs one file name (example: /save chats.jsonl)") }
            return .save(path: w[0])
        case "prefer":
            let w = try words()
            let usage = "/prefer needs 1 or 2 and optionally a file (example: /prefer 2 prefs.jsonl)"
            switch w.count {
            case 1 where w[0] == "1" || w[0] == "2": return .prefer(choice: Int(w[0]), path: nil)
            case 1: return .prefer(choice: nil, path: w[0])
            case 2 where w[0] == "1" || w[0] == "2": return .prefer(choice: Int(w[0]), path: w[1])
            default: throw ReplCommandError(usage)
            }
        case "good", "bad":
            let w = try words()
            guard w.count <= 1 else { throw ReplCommandError("/\(name) takes at most one file name (example: /\(name) feedback.jsonl)") }
            return .feedback(good: name == "good", path: w.first)
        case "quit", "exit", "bye", "q": return try noArguments(.quit)
        default:
            throw ReplCommandError("unknown command /\(name) (type /help for the list; //text sends a message starting with /)")
        }
    }
}

/// A `/command` that cannot be understood.
public struct ReplCommandError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
