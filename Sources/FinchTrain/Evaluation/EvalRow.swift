import Foundation
import FinchData

/// One row of an evaluation file: an instruction with its reference (`{instruction, input, output, task, answer}`,
/// `task == "open_ended"` scored by BLEU / ROUGE-L, other tasks by exact match / token F1), a chat record
/// (`{messages}` / `{prompt, response}`), or a classification example (`{text, label}`).
public struct EvalRow: Equatable, Sendable {
    /// The user turn: the instruction, then a blank line and the input when there is one (as `finch sft` renders alpaca).
    public var prompt: String
    /// The reference response (empty for classification rows).
    public var reference: String
    /// The checkable answer (defaults to `reference`).
    public var answer: String
    /// Task family; "open_ended" for free-text rows, "classify" for `{text, label}` rows.
    public var task: String
    /// Gold label of a classification row.
    public var label: String?
    /// Where the row came from (file:line), for error messages.
    public var location: String

    public init(prompt: String, reference: String, answer: String? = nil, task: String, label: String? = nil, location: String = "") {
        self.prompt = prompt; self.reference = reference; self.answer = answer ?? reference
        self.task = task; self.label = label; self.location = location
    }

    /// True for rows scored by exact match and token F1.
    public var isCheckable: Bool { task != "open_ended" && label == nil }
    /// True for free-text rows scored by BLEU and ROUGE-L.
    public var isOpenEnded: Bool { task == "open_ended" }

    /// Reads a JSONL evaluation file (blank lines skipped). Errors name file:line.
    public static func read(_ url: URL, limit: Int? = nil) throws -> [EvalRow] {
        let text = try UserTextFile.read(url, what: "the evaluation file")
        var rows: [EvalRow] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if let limit, rows.count >= limit { break }
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            let loc = "\(url.lastPathComponent):\(i + 1)"
            let parsed: Any
            do { parsed = try JSONSerialization.jsonObject(with: Data(trimmed.utf8), options: [.fragmentsAllowed]) } catch {
                throw TrainingError("\(loc): malformed JSON")
            }
            guard let o = parsed as? [String: Any] else { throw TrainingError("\(loc): expected a JSON object") }
            rows.append(try parse(o, location: loc))
        }
        return rows
    }

    static func parse(_ o: [String: Any], location loc: String) throws -> EvalRow {
        func str(_ k: String) -> String? { o[k].map { ($0 as? String) ?? "\($0)" } }
        if let text = str("text"), let label = str("label") {
            return EvalRow(prompt: text, reference: "", task: "classify", label: label, location: loc)
        }
        if let instruction = str("instruction") {
            var user = instruction
            if let input = str("input"), !input.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { user += "\n\n" + input }
            guard let output = str("output") ?? str("answer") else { throw TrainingError("\(loc): no \"output\" (reference answer)") }
            return EvalRow(prompt: user, reference: output, answer: str("answer"), task: str("task") ?? "open_ended", location: loc)
        }
        if let prompt = str("prompt"), let response = str("response") ?? str("chosen") ?? str("answer") {
            return EvalRow(prompt: prompt, reference: response, answer: str("answer"), task: str("task") ?? "open_ended", location: loc)
        }
        if let messages = o["messages"] as? [[String: Any]], let last = messages.last, (last["role"] as? String) == "assistant",
           messages.count >= 2, let user = messages[messages.count - 2]["content"] as? String, let reply = last["content"] as? String {
            return EvalRow(prompt: user, reference: reply, answer: str("answer"), task: str("task") ?? "open_ended", location: loc)
        }
        throw TrainingError("\(loc): expected {instruction, input, output[, task, answer]}, {prompt, response}, {messages} or {text, label}")
    }
}
