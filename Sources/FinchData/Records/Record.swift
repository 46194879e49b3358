import Foundation

/// Who speaks a turn.
public enum Role: String, Codable, Sendable, CaseIterable {
    case system, user, assistant
}

/// One turn of a conversation.
public struct Message: Codable, Equatable, Sendable {
    public var role: Role
    public var content: String
    public init(_ role: Role, _ content: String) { self.role = role; self.content = content }
}

/// Where a record came from, printed as `file:line`.
public struct SourceLocation: Codable, Equatable, Hashable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public init(file: String, line: Int) { self.file = file; self.line = line }
    public var description: String { "\(file):\(line)" }
}

/// The on-disk shapes a record file can have.
public enum RecordFormat: String, CaseIterable, Codable, Sendable {
    /// `{instruction, input, output}` lines.
    case alpaca
    /// `{messages: [{role, content}]}` lines.
    case chat
    /// `{prompt, chosen, rejected}` lines (text form or message lists).
    case preference
    /// `{prompt}` lines (RL prompts, no response).
    case prompt
    /// Plain text (a `.txt` file, or `{text}` lines).
    case text
}

extension RecordFormat {
    /// What a record of this format becomes in a dataset: trained sequences (alpaca, chat, text), preference
    /// triples, or prompts. Records of one file must agree on it.
    public var datasetKind: String {
        switch self {
        case .alpaca, .chat, .text: return "sequences"
        case .preference: return "preference"
        case .prompt: return "prompts"
        }
    }
}

/// One validated training example.
public struct Record: Equatable, Sendable {
    public enum Body: Equatable, Sendable {
        /// A conversation; assistant turns are the responses (alpaca records become user + assistant).
        case chat([Message])
        /// A shared prompt (ending with a user turn) and two competing assistant replies.
        case preference(prompt: [Message], chosen: String, rejected: String)
        /// A prompt with no response (PPO / RL rollouts).
        case prompt([Message])
        /// Plain text (pretraining): everything is trained.
        case text(String)
    }

    public var location: SourceLocation
    public var body: Body

    public init(location: SourceLocation, body: Body) { self.location = location; self.body = body }

    /// The messages of a chat or prompt record (a preference record's prompt); empty for text.
    public var messages: [Message] {
        switch body {
        case .chat(let m), .prompt(let m): return m
        case .preference(let p, _, _): return p
        case .text: return []
        }
    }
}

/// A record that could not be read: names file, line and (when known) the field.
public struct RecordError: Error, Equatable, Sendable, CustomStringConvertible {
    public var location: SourceLocation
    public var field: String?
    public var message: String

    public init(_ location: SourceLocation, field: String? = nil, _ message: String) {
        self.location = location; self.field = field; self.message = message
    }

    public var description: String { "\(location): \(message)" }
}
