import Foundation
import FinchData

/// One prompt of a `finch generate` prompts file.
public struct GenerationPrompt: Equatable {
    /// 1-based line number in the prompts file.
    public var line: Int
    /// The conversation to answer (ends with a user message).
    public var conversation: Conversation
    /// The answer the record already had (final assistant turn, `output`, or `chosen`), kept for evaluation.
    public var reference: String?

    public init(line: Int, conversation: Conversation, reference: String? = nil) {
        self.line = line
        self.conversation = conversation
        self.reference = reference
    }
}

/// Reads a prompts file with FinchData's record reader, so prompts are read exactly as training reads
/// records: chat (`messages`; a final assistant turn becomes the reference), Alpaca (`instruction`, `input`;
/// `output` is the reference), preference (`prompt`; `chosen` is the reference) or prompt (`prompt`) lines.
/// Errors name the file and line.
public enum PromptFile {
    public static func read(_ url: URL, system: String? = nil) throws -> [GenerationPrompt] {
        let file = try RecordReader.read(url)
        return try file.records.map { record in
            var messages: [FinchData.Message]
            var reference: String?
            switch record.body {
            case .chat(let m):
                messages = m
                if messages.last?.role == .assistant { reference = messages.removeLast().content }
            case .prompt(let m):
                messages = m
            case .preference(let prompt, let chosen, _):
                messages = prompt
                reference = chosen
            case .text:
                throw ChatFileError("\(record.location): a text record has no prompt to answer")
            }
            var conversation = Conversation(system: system)
            for m in messages {
                let message = Message(role: Role(rawValue: m.role.rawValue)!, content: m.content)
                if m.role == .system { conversation.system = m.content } else { conversation.turns.append(message) }
            }
            guard conversation.turns.last?.role == .user else {
                throw ChatFileError("\(record.location): the prompt must end with a user turn")
            }
            return GenerationPrompt(line: record.location.line, conversation: conversation, reference: reference)
        }
    }
}
