import Foundation

/// ROUGE-L as rouge-score computes it (`RougeScorer(['rougeL'], use_stemmer=False)`): the longest common subsequence
/// of two token lists, P = LCS/|prediction|, R = LCS/|reference|, F = 2PR/(P+R). One implementation for `finch eval`
/// (`EvalMetrics.rougeL`) and for self-instruct's near-duplicate filter (`finch synthesize`), so both score alike.
public enum RougeL {
    public struct Score: Equatable, Sendable {
        public var precision: Double
        public var recall: Double
        public var fmeasure: Double
        public init(precision: Double, recall: Double, fmeasure: Double) {
            self.precision = precision; self.recall = recall; self.fmeasure = fmeasure
        }
    }

    @inline(__always) static func isLowerAlnumASCII(_ v: UInt32) -> Bool {
        (v >= 0x61 && v <= 0x7A) || (v >= 0x30 && v <= 0x39)
    }

    /// rouge-score's default tokeniser without stemming (`tokenize.tokenize(text, None)`): Python's `lower()`,
    /// every run of characters other than `[a-z0-9]` is a separator. ("İ" lowercases to "i" + U+0307 and the
    /// Kelvin sign to "k", as in Python.)
    public static func tokens(_ text: String) -> [String] {
        var tokens: [String] = [], current: [UInt8] = []
        func push(_ v: UInt32) {
            if isLowerAlnumASCII(v) {
                current.append(UInt8(v))
            } else if !current.isEmpty {
                tokens.append(String(decoding: current, as: UTF8.self))
                current.removeAll(keepingCapacity: true)
            }
        }
        for scalar in text.unicodeScalars {
            let v = scalar.value
            if v < 0x80 {
                push(v >= 0x41 && v <= 0x5A ? v + 0x20 : v)
            } else {
                for m in scalar.properties.lowercaseMapping.unicodeScalars { push(m.value) }
            }
        }
        push(0x20)
        return tokens
    }

    /// Length of the longest common subsequence of two token sequences.
    public static func lcsLength(_ a: [String], _ b: [String]) -> Int {
        if a.isEmpty || b.isEmpty { return 0 }
        var prev = [Int](repeating: 0, count: b.count + 1), cur = prev
        for x in a {
            for j in 1...b.count {
                cur[j] = x == b[j - 1] ? prev[j - 1] + 1 : max(prev[j], cur[j - 1])
            }
            swap(&prev, &cur)
        }
        return prev[b.count]
    }

    /// The score of already tokenised sides (callers comparing one text against many tokenise each once).
    public static func score(predictionTokens p: [String], referenceTokens r: [String]) -> Score {
        if p.isEmpty || r.isEmpty { return Score(precision: 0, recall: 0, fmeasure: 0) }
        let lcs = lcsLength(r, p)
        let precision = Double(lcs) / Double(p.count), recall = Double(lcs) / Double(r.count)
        let f = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
        return Score(precision: precision, recall: recall, fmeasure: f)
    }

    /// `score(reference, prediction)['rougeL']`; all 0 when either side has no token.
    public static func score(_ prediction: String, _ reference: String) -> Score {
        score(predictionTokens: tokens(prediction), referenceTokens: tokens(reference))
    }
}
