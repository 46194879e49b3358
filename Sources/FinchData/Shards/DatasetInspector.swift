import Foundation

/// Human-readable views of a packed dataset (used by `finch data inspect`).
public enum DatasetInspector {
    /// Counts, sizes and the token-length histogram.
    public static func summary(_ m: DatasetManifest) -> String {
        var lines: [String] = []
        let bytes = m.shards.reduce(0) { $0 + $1.bytes }
        func pct(_ a: Int, _ b: Int) -> String { b == 0 ? "-" : String(format: "%.1f%%", 100 * Double(a) / Double(b)) }
        lines.append("kind \(m.kind.rawValue), format version \(m.formatVersion), template \(m.template?.name ?? "none"), max length \(m.maxLength), \(m.packed ? "packed" : "not packed")\(m.trainOnPrompt ? ", trains on prompts" : "")")
        lines.append("tokenizer sha256 \(m.tokenizer.sha256) (\(m.tokenizer.vocabSize) pieces)")
        for s in m.sources { lines.append("source \(s.path) [\(s.format.rawValue)]: \(s.records) records, \(s.skipped) skipped") }
        lines.append("records \(m.records), entries \(m.entries), tokens \(m.tokens), trained tokens \(m.trainedTokens) (\(pct(m.trainedTokens, m.tokens)))")
        lines.append("truncated \(m.truncated) (\(pct(m.truncated, m.records))), skipped \(m.skipped)\(m.skipped > 0 ? " (see skipped.txt)" : "")")
        lines.append(String(format: "shards %d, %d bytes = %.2f bytes/token (%.1f%% of raw 32-bit ids)", m.shards.count, bytes,
                            Double(bytes) / Double(max(1, m.tokens)), 100 * Double(bytes) / Double(max(1, 4 * m.tokens))))
        let l = m.lengths
        lines.append(String(format: "record length (tokens): min %d, mean %.1f, p50 %d, p90 %d, p99 %d, max %d", l.min, l.mean, l.p50, l.p90, l.p99, l.max))
        let peak = max(1, l.histogram.map(\.count).max() ?? 1)
        for b in l.histogram {
            let bar = String(repeating: "#", count: Int((50 * Double(b.count) / Double(peak)).rounded(.up)))
            let over = b.from > m.maxLength ? "  (over max length)" : ""
            lines.append(String(format: "%7d-%-7d %8d %@", b.from, b.to, b.count, bar + over))
        }
        return lines.joined(separator: "\n")
    }

    /// One document of an entry decoded, with trained runs wrapped by `mark` (e.g. bold or brackets).
    public static func render(_ e: Example, document: Int, tokenizer: any TextTokenizer,
                              mark: (String) -> String = { "[[" + $0 + "]]" }) throws -> String {
        let start = e.documents[..<document].reduce(0) { $0 + $1.length }
        let end = start + e.documents[document].length
        var out = ""
        var i = start
        while i < end {
            var j = i
            while j < end && e.mask[j] == e.mask[i] { j += 1 }
            let text = try pieceText(Array(e.ids[i..<j]), tokenizer)
            out += e.mask[i] != 0 ? mark(text) : text
            i = j
        }
        return out
    }

    /// Text of ids keeping special pieces visible (sentencepiece's decode drops control tokens such as </s>).
    static func pieceText(_ ids: [Int32], _ tok: any TextTokenizer) throws -> String {
        var out = ""
        var run: [Int32] = []
        func flush() throws {
            guard !run.isEmpty else { return }
            // Keep the leading space sentencepiece strips from a decoded run's first piece.
            let lead = tok.piece(Int(run[0]))?.hasPrefix("▁") == true && !out.isEmpty ? " " : ""
            out += lead + (try tok.decode(run)); run = []
        }
        for id in ids {
            let visible: Bool
            if let sp = tok as? SentencePieceTokenizer {
                let t = sp.type(Int(id))
                visible = t == .control || t == .userDefined || t == .unknown
            } else {
                visible = tok.isControl(Int(id))
            }
            if visible { try flush(); out += tok.piece(Int(id)) ?? "" } else { run.append(id) }
        }
        try flush()
        return out
    }
}
