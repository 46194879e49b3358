import Foundation
import FinchData

/// One tokenized KTO example: a prompt, one completion (content + end-of-turn) and its thumbs-up / thumbs-down label.
public struct EncodedExample: Sendable {
    public var prompt: [Int]
    public var completion: [Int]
    public var desirable: Bool
    public var location: String
    public var sequence: [Int] { prompt + completion }
}

/// KTO data → tokenized examples. Two forms are read:
/// - unpaired records, TRL's format: `{"prompt": …, "completion": …, "label": true|false}` (prompt a string or a
///   message list; completion a string or a list ending with an assistant turn) — what `/good` and `/bad` in
///   `finch chat` append;
/// - preference pairs (`{prompt, chosen, rejected}` and the other forms `finch dpo` reads), each unpaired into a
///   desirable and an undesirable example, as TRL's `unpair_preference_dataset` does.
public enum KTOExamples {
    public static func load(_ urls: [URL], encoder: ChatEncoder, maxLength: Int, limit: Int? = nil,
                            overlong: OverlongPolicy = .drop, report: ((OverlongReport) -> Void)? = nil) throws -> [EncodedExample] {
        var out: [EncodedExample] = []
        var counts = OverlongReport(policy: overlong, maxLength: maxLength)
        func add(_ prompt: [Message], _ completion: String, _ desirable: Bool, _ loc: SourceLocation) throws {
            if let l = limit, out.count >= l { return }
            let p0 = try encoder.generationPrompt(prompt).map(Int.init)
            let c0 = try encoder.encodeReply(completion).map(Int.init)
            if counts.see(length: p0.count + c0.count, at: loc) {
                switch overlong {
                case .drop: counts.count(loc, dropped: 1); return
                case .error: throw counts.error(length: p0.count + c0.count, at: loc)
                case .truncate: counts.count(loc, truncated: 1)
                }
            }
            let (p, c) = PreferencePairs.fit(prompt: p0, replies: [c0], maxLength: maxLength)
            out.append(EncodedExample(prompt: p, completion: c[0], desirable: desirable, location: loc.description))
        }
        for url in urls {
            let text = try UserTextFile.read(url, what: "KTO data")
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            let firstObject = lines.lazy.compactMap { line -> [String: Any]? in
                let t = line.trimmingCharacters(in: .whitespaces)
                return t.isEmpty ? nil : (try? JSONSerialization.jsonObject(with: Data(t.utf8))) as? [String: Any]
            }.first
            if let o = firstObject, o["label"] == nil, o["chosen"] != nil || o["rejected"] != nil {
                let file = try RecordReader.read(url, options: .init(format: .preference))
                for r in file.records {
                    guard case .preference(let prompt, let chosen, let rejected) = r.body else { continue }
                    try add(prompt, chosen, true, r.location)
                    try add(prompt, rejected, false, r.location)
                }
                continue
            }
            for (i, raw) in lines.enumerated() {
                let line = raw.trimmingCharacters(in: .whitespaces)
                if line.isEmpty { continue }
                let loc = SourceLocation(file: url.path, line: i + 1)
                guard let o = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                    throw TrainingError("\(loc): malformed JSON (expected an object {prompt, completion, label})")
                }
                let (prompt, completion, desirable) = try unpaired(o, loc)
                try add(prompt, completion, desirable, loc)
            }
        }
        report?(counts)
        if out.isEmpty, counts.dropped > 0 { throw TrainingError(counts.nothingLeft("KTO examples").message) }
        guard !out.isEmpty else { throw TrainingError("\(urls.map(\.path).joined(separator: ", ")): no KTO examples") }
        return out
    }

    /// The prompt messages, completion text and label of an unpaired record (prompt and completion parsed as every
    /// record format parses them).
    static func unpaired(_ o: [String: Any], _ loc: SourceLocation) throws -> ([Message], String, Bool) {
        guard let label = o["label"] else { throw TrainingError("\(loc): missing field \"label\" (true for a desirable completion, false for an undesirable one)") }
        // JSON true/false, not 1/0 (a number would pass `as? Bool`).
        guard let n = label as? NSNumber, ["c", "B"].contains(String(cString: n.objCType)), let desirable = label as? Bool else {
            throw TrainingError("\(loc): field \"label\" must be true or false")
        }
        guard let p = o["prompt"] else { throw TrainingError("\(loc): missing field \"prompt\"") }
        guard let c = o["completion"] else { throw TrainingError("\(loc): missing field \"completion\"") }
        var prompt = try Record.promptTurns(p, field: "prompt", at: loc)
        if prompt.last?.role == .assistant { prompt.removeLast() }
        guard prompt.last?.role == .user else { throw TrainingError("\(loc): prompt must end with a user turn") }
        let completion = try Record.replyText(c, field: "completion", at: loc)
        guard !completion.isEmpty else { throw TrainingError("\(loc): field \"completion\" is empty") }
        return (prompt, completion, desirable)
    }
}
