import Foundation
import FinchData

/// One RL prompt: its text (as the reward program sees it), its chat messages, and the record's other fields
/// (e.g. `task`, `answer`), passed on to a reward command.
public struct PPOPrompt: @unchecked Sendable {
    public var text: String
    public var messages: [Message]
    public var extra: [String: Any]
    public var location: String
}

/// Reads `{prompt, ...}` JSONL lines (prompt = a string or a list of `{role, content}` messages).
public enum PPOPrompts {
    public static func load(_ url: URL, limit: Int? = nil) throws -> [PPOPrompt] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { throw TrainingError("cannot read prompts file \(url.path)") }
        var out: [PPOPrompt] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if let l = limit, out.count >= l { break }
            let s = line.trimmingCharacters(in: .whitespaces)
            if s.isEmpty { continue }
            let loc = "\(url.path):\(i + 1)"
            guard let o = try? JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String: Any] else {
                throw TrainingError("\(loc): not a JSON object")
            }
            var extra = o
            extra["prompt"] = nil
            if let p = o["prompt"] as? String {
                out.append(PPOPrompt(text: p, messages: [Message(.user, p)], extra: extra, location: loc))
            } else if let list = o["prompt"] as? [[String: Any]] {
                let msgs = try list.map { m -> Message in
                    guard let r = (m["role"] as? String).flatMap(Role.init(rawValue:)), let c = m["content"] as? String else {
                        throw TrainingError("\(loc): field 'prompt' holds a message without role/content")
                    }
                    return Message(r, c)
                }
                out.append(PPOPrompt(text: msgs.last?.content ?? "", messages: msgs, extra: extra, location: loc))
            } else {
                throw TrainingError("\(loc): field 'prompt' (a string or a message list) is missing")
            }
        }
        guard !out.isEmpty else { throw TrainingError("\(url.path): no prompts") }
        return out
    }
}
