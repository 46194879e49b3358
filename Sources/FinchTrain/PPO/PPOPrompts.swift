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
    /// The prompts whose generation prompt fits `maxLength` tokens, by `overlong` (a truncated prompt keeps its end,
    /// which the rollout's prompt encoding does on its own; drop leaves it out; error stops).
    public static func fitting(_ prompts: [PPOPrompt], encoder: ChatEncoder, maxLength: Int, overlong: OverlongPolicy,
                               progress: ProgressReporter = ProgressReporter()) throws -> [PPOPrompt] {
        var report = OverlongReport(policy: overlong, maxLength: maxLength)
        var out: [PPOPrompt] = []
        for p in prompts {
            let length = try encoder.generationPrompt(p.messages).count
            let colon = p.location.lastIndex(of: ":")
            let loc = SourceLocation(file: colon.map { String(p.location[..<$0]) } ?? p.location,
                                     line: colon.flatMap { Int(p.location[p.location.index(after: $0)...]) } ?? 0)
            if report.see(length: length, at: loc) {
                switch overlong {
                case .drop: report.count(loc, dropped: 1); continue
                case .error: throw TrainingError(report.error(length: length, at: loc).description)
                case .truncate: report.count(loc, truncated: 1)
                }
            }
            out.append(p)
        }
        RLHFSetup.noteOverlong(progress)(report)
        if out.isEmpty, report.dropped > 0 { throw TrainingError(report.nothingLeft("prompts").message) }
        return out
    }

    public static func load(_ url: URL, limit: Int? = nil) throws -> [PPOPrompt] {
        let text = try UserTextFile.read(url, what: "prompts file")
        var out: [PPOPrompt] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if let l = limit, out.count >= l { break }
            let s = line.trimmingCharacters(in: .whitespaces)
            if s.isEmpty { continue }
            let loc = "\(url.path):\(i + 1)"
            let parsed: Any
            do { parsed = try JSONSerialization.jsonObject(with: Data(s.utf8), options: [.fragmentsAllowed]) } catch {
                throw TrainingError("\(loc): malformed JSON")
            }
            guard let o = parsed as? [String: Any] else { throw TrainingError("\(loc): expected a JSON object") }
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
            } else if let v = o["prompt"], !(v is NSNull) {
                throw TrainingError("\(loc): field 'prompt' must be a string or a message list, found \(v is NSNumber ? "a number" : v is [Any] ? "a list" : v is [String: Any] ? "an object" : "\(type(of: v))")")
            } else {
                throw TrainingError("\(loc): field 'prompt' (a string or a message list) is missing")
            }
        }
        guard !out.isEmpty else { throw TrainingError("\(url.path): no prompts") }
        return out
    }
}

/// Generation-prompt token ids of RL prompts (PPO, GRPO), encoded once each: the end of a long prompt is kept, so
/// that prompt and reply fit `maxLength` (and the model's positions).
final class PromptTokenCache {
    private let encoder: ChatEncoder
    private let room: Int
    private var cache: [String: [Int]] = [:]

    init(encoder: ChatEncoder, maxLength: Int, maxPositions: Int, maxNewTokens: Int) {
        self.encoder = encoder
        room = max(1, min(maxLength, maxPositions) - maxNewTokens)
    }

    func ids(_ p: PPOPrompt) throws -> [Int] {
        if let ids = cache[p.location] { return ids }
        let ids = Array(try encoder.generationPrompt(p.messages).map(Int.init).suffix(room))
        cache[p.location] = ids
        return ids
    }
}
