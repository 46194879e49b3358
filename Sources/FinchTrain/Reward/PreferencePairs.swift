import Foundation
import FinchData
import FinchModel

/// One tokenized preference pair: the shared prompt, then each reply (content + end-of-turn).
public struct EncodedPair: Sendable {
    public var prompt: [Int]
    public var chosen: [Int]
    public var rejected: [Int]
    /// The dataset's `margin` column (0 when absent).
    public var margin: Float
    public var location: String
    public var chosenSequence: [Int] { prompt + chosen }
    public var rejectedSequence: [Int] { prompt + rejected }
}

/// Preference files → tokenized pairs, held-out split, padded batches.
public enum PreferencePairs {
    /// Reads `{prompt, chosen, rejected[, margin]}` records (text or message forms, HH transcripts split into
    /// turns) and tokenizes them with the chat template (see `encode`).
    /// Pairs whose prompt + longer reply exceed `maxLength` follow `overlong` (drop, truncate with `fit`, or error);
    /// `report` receives the counts per file.
    public static func load(_ urls: [URL], encoder: ChatEncoder, maxLength: Int, limit: Int? = nil,
                            overlong: OverlongPolicy = .drop, report: ((OverlongReport) -> Void)? = nil) throws -> [EncodedPair] {
        var out: [EncodedPair] = []
        var counts = OverlongReport(policy: overlong, maxLength: maxLength)
        for url in urls {
            let file = try RecordReader.read(url, options: .init(format: .preference))
            let margins = try marginColumn(url)
            for r in file.records {
                if let l = limit, out.count >= l { break }
                guard case .preference(let prompt, let chosen, let rejected) = r.body else { continue }
                let p0 = try encoder.generationPrompt(prompt).map(Int.init)
                let r0 = try [chosen, rejected].map { try encoder.encodeReply($0).map(Int.init) }
                let length = p0.count + max(r0[0].count, r0[1].count)
                if counts.see(length: length, at: r.location) {
                    switch overlong {
                    case .drop: counts.count(r.location, dropped: 1); continue
                    case .error: throw counts.error(length: length, at: r.location)
                    case .truncate: counts.count(r.location, truncated: 1)
                    }
                }
                let (p, replies) = fit(prompt: p0, replies: r0, maxLength: maxLength)
                out.append(EncodedPair(prompt: p, chosen: replies[0], rejected: replies[1], margin: margins[r.location.line] ?? 0,
                                       location: r.location.description))
            }
        }
        report?(counts)
        if out.isEmpty, counts.dropped > 0 { throw TrainingError(counts.nothingLeft("preference pairs").message) }
        guard !out.isEmpty else { throw TrainingError("\(urls.map(\.path).joined(separator: ", ")): no preference pairs") }
        return out
    }

    /// A prompt and its competing replies as token ids: prompt = generation prompt, reply = content +
    /// assistant suffix, fitted into `maxLength` by `fit`. Training (`load`) and `finch score` both use it,
    /// so a saved reward model scores a pair exactly as it was trained on it.
    public static func encode(prompt: [Message], replies: [String], encoder: ChatEncoder, maxLength: Int) throws -> (prompt: [Int], replies: [[Int]]) {
        let p = try encoder.generationPrompt(prompt).map(Int.init)
        let r = try replies.map { try encoder.encodeReply($0).map(Int.init) }
        return fit(prompt: p, replies: r, maxLength: maxLength)
    }

    /// Fits prompt + each reply into `maxLength` tokens. Replies differ from their first token, so what is
    /// cut is the front of the prompt (its end, the question being answered, stays) and, only when a reply
    /// alone needs more than what is left after at most half the budget for the prompt, the reply's tail.
    public static func fit(prompt p: [Int], replies: [[Int]], maxLength: Int) -> (prompt: [Int], replies: [[Int]]) {
        let keepReply = max(1, maxLength - min(p.count, maxLength / 2))
        let r = replies.map { Array($0.prefix(keepReply)) }
        let longest = r.map(\.count).max() ?? 0
        return (Array(p.suffix(max(1, maxLength - longest))), r)
    }

    /// `margin` values by line number (JSONL files only).
    static func marginColumn(_ url: URL) throws -> [Int: Float] {
        guard let text = try? String(contentsOf: url, encoding: .utf8), text.contains("\"margin\"") else { return [:] }
        var m: [Int: Float] = [:]
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            guard line.contains("\"margin\""), let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
            if let v = o["margin"] as? NSNumber { m[i + 1] = v.floatValue }
            else if o["margin"] != nil { throw TrainingError("\(url.path):\(i + 1): field 'margin' must be a number") }
        }
        return m
    }

    /// A seeded split: the last `fraction` of a shuffled order is held out (at least one pair when
    /// fraction > 0 and there are two or more pairs).
    public static func split<T>(_ items: [T], evalFraction: Double, seed: UInt64) -> (train: [T], eval: [T]) {
        guard evalFraction > 0, items.count > 1 else { return (items, []) }
        var order = Array(items.indices)
        var rng = SeededRNG(seed: seed ^ 0x5eed_5917)
        rng.shuffle(&order)
        let n = min(items.count - 1, max(1, Int((Double(items.count) * evalFraction).rounded())))
        return (order.dropLast(n).map { items[$0] }, order.suffix(n).map { items[$0] })
    }

    /// Right-pads rows to the longest one with `padID`: ids [B·T], T, and each row's real length.
    public static func pad(_ rows: [[Int]], padID: Int) -> (ids: [Int], length: Int, lengths: [Int]) {
        let T = max(1, rows.map(\.count).max() ?? 1)
        var ids: [Int] = []
        ids.reserveCapacity(rows.count * T)
        for r in rows { ids += r + [Int](repeating: padID, count: T - r.count) }
        return (ids, T, rows.map(\.count))
    }
}
