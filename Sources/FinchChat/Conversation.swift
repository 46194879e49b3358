import Foundation

/// Who wrote a message, with the names chat-format JSONL uses.
public enum Role: String, Sendable {
    case system, user, assistant
}

/// One message of a conversation.
public struct Message: Equatable, Sendable {
    public var role: Role
    public var content: String
    /// True when the reply was cut short by the user (Ctrl-C); the text is kept as far as it was generated.
    public var interrupted: Bool

    public init(role: Role, content: String, interrupted: Bool = false) {
        self.role = role
        self.content = content
        self.interrupted = interrupted
    }
}

/// A chat: an optional system prompt plus the user/assistant turns, oldest first.
///
/// The system prompt is kept apart from the turns so that dropping old turns
/// (when the context window fills) can never drop it.
public struct Conversation: Equatable, Sendable {
    public var system: String?
    public var turns: [Message]

    public init(system: String? = nil, turns: [Message] = []) {
        self.system = system
        self.turns = turns
    }

    /// All messages in order, the system prompt first when there is one.
    public var messages: [Message] {
        var all: [Message] = []
        if let system, !system.isEmpty { all.append(Message(role: .system, content: system)) }
        return all + turns
    }

    /// The last user message, if the conversation ends with one (what a reply answers).
    public var pendingUserMessage: String? {
        guard let last = turns.last, last.role == .user else { return nil }
        return last.content
    }

    /// Removes the last exchange: the final assistant reply (if any) and the user message before it.
    /// Returns the number of messages removed (0 when there is nothing to undo).
    @discardableResult
    public mutating func undo() -> Int {
        var removed = 0
        if turns.last?.role == .assistant { turns.removeLast(); removed += 1 }
        if turns.last?.role == .user { turns.removeLast(); removed += 1 }
        return removed
    }

    /// Removes the oldest exchange (a user message and the replies up to the next user message).
    /// Never touches the system prompt. Returns the number of messages removed.
    @discardableResult
    public mutating func dropOldestExchange() -> Int {
        guard !turns.isEmpty else { return 0 }
        var end = 1
        while end < turns.count, turns[end].role != .user { end += 1 }
        turns.removeFirst(end)
        return end
    }

    /// Number of user/assistant exchanges (user messages) in the conversation.
    public var exchangeCount: Int { turns.filter { $0.role == .user }.count }
}
