import Foundation

/// One prompt of a `finch generate` prompts file.
public struct GenerationPrompt: Equatable {
    /// 1-based line number in the prompts file.
    public var line: Int
    /// The conversation to answer (ends with a user message).
    public var conversation: Conversation
    /// The answer the record already had (a final assistant message or `output`), kept for evaluation.
    public var reference: String?
}

/// Reads JSONL prompts. Each line is one of:
/// `{"messages":[{"role":…,"content":…},…]}` (a final assistant message becomes the reference),
/// `{"prompt":"text"}` or `{"prompt":[messages]}`,
/// `{"instruction":"…","input":"…","output":"…"}` (Alpaca; the user message is instruction, a blank line, input),
/// or a bare JSON string. Blank lines are skipped. Errors name the file and line.
public enum PromptFile {
    public static func read(_ url: URL, system: String? = nil) throws -> [GenerationPrompt] {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw ChatFileError("\(url.path): cannot read (\(error.localizedDescription))")
        }
        var prompts: [GenerationPrompt] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty { continue }
            do {
                prompts.append(try parse(line, lineNumber: index + 1, system: system))
            } catch let error as ChatFileError {
                throw ChatFileError("\(url.path):\(index + 1): \(error.description)")
            }
        }
        return prompts
    }

    static func parse(_ line: String, lineNumber: Int, system: String?) throws -> GenerationPrompt {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed]) } catch {
            throw ChatFileError("not valid JSON")
        }
        var conversation = Conversation(system: system)
        var reference: String?
        if let s = object as? String {
            conversation.turns = [Message(role: .user, content: s)]
        } else if let json = object as? [String: Any] {
            if let list = json["messages"] ?? (json["prompt"] as? [Any]) {
                let messages = try parseMessages(list)
                for m in messages {
                    if m.role == .system { conversation.system = m.content } else { conversation.turns.append(m) }
                }
                if conversation.turns.last?.role == .assistant { reference = conversation.turns.removeLast().content }
            } else if let prompt = json["prompt"] as? String {
                conversation.turns = [Message(role: .user, content: prompt)]
                reference = json["response"] as? String ?? json["chosen"] as? String
            } else if let instruction = json["instruction"] as? String {
                let input = json["input"] as? String ?? ""
                conversation.turns = [Message(role: .user, content: input.isEmpty ? instruction : instruction + "\n\n" + input)]
                reference = json["output"] as? String
            } else {
                throw ChatFileError("expected a \"messages\", \"prompt\" or \"instruction\" field")
            }
        } else {
            throw ChatFileError("expected a JSON object or string")
        }
        guard conversation.turns.last?.role == .user else {
            throw ChatFileError("the conversation must end with a user message")
        }
        return GenerationPrompt(line: lineNumber, conversation: conversation, reference: reference)
    }

    static func parseMessages(_ value: Any) throws -> [Message] {
        guard let list = value as? [[String: Any]] else { throw ChatFileError("\"messages\" must be a list of objects") }
        return try list.enumerated().map { i, m in
            guard let roleName = m["role"] as? String, let role = Role(rawValue: roleName) else {
                throw ChatFileError("message \(i + 1): role must be \"system\", \"user\" or \"assistant\"")
            }
            guard let content = m["content"] as? String else { throw ChatFileError("message \(i + 1): content must be a string") }
            return Message(role: role, content: content)
        }
    }
}
