import Foundation
import FinchData

/// Text and classification metrics used by `finch eval`.
///
/// Pure functions over strings and numbers (ROUGE-L lives in FinchData's `RougeL`, shared with `finch synthesize`),
/// so each metric can be checked by hand against a small worked example.
public enum EvalMetrics {

    // MARK: - Normalisation and tokenisation

    /// Tasks of the shipped corpora whose answer is about letter case, so exact match
    /// must not lowercase (otherwise "Nest" would pass for "NEST").
    public static let caseSensitiveTasks: Set<String> = ["uppercase", "title_case"]

    /// Normalises an answer for exact match: trims, lowercases (unless `keepCase`), collapses
    /// runs of whitespace to one space and strips trailing periods.
    public static func normalizeAnswer(_ text: String, keepCase: Bool = false) -> String {
        var words = (keepCase ? text : text.lowercased()).split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
        while words.hasSuffix(".") { words.removeLast() }
        return words.trimmingCharacters(in: .whitespaces)
    }

    /// SQuAD-style normalisation for token F1: lowercase, punctuation removed,
    /// the articles "a", "an", "the" dropped, whitespace-split.
    public static func squadTokens(_ text: String) -> [String] {
        let noPunct = String(text.lowercased().unicodeScalars.map { scalar -> Character in
            CharacterSet.punctuationCharacters.contains(scalar) || CharacterSet.symbols.contains(scalar)
                ? " " : Character(scalar)
        })
        let articles: Set<Substring> = ["a", "an", "the"]
        return noPunct.split(whereSeparator: { $0.isWhitespace })
            .filter { !articles.contains($0) }
            .map(String.init)
    }

    /// A simple word split: case-sensitive, words split on whitespace, each punctuation character a token of
    /// its own (so "cat." is ["cat", "."]). Not used by BLEU or ROUGE-L, which follow sacrebleu's 13a
    /// tokeniser (``tokenize13a(_:)``) and rouge-score's (``rougeTokens(_:)``).
    public static func wordTokens(_ text: String) -> [String] {
        var tokens: [String] = []
        var current = ""
        for ch in text {
            if ch.isWhitespace {
                if !current.isEmpty { tokens.append(current); current = "" }
            } else if ch.isPunctuation || ch.isSymbol {
                if !current.isEmpty { tokens.append(current); current = "" }
                tokens.append(String(ch))
            } else {
                current.append(ch)
            }
        }
        if !current.isEmpty { tokens.append(current) }
        return tokens
    }

    // MARK: - Exact match and token F1

    /// True when prediction and reference agree after ``normalizeAnswer(_:keepCase:)``.
    public static func exactMatch(_ prediction: String, _ reference: String, caseSensitive: Bool = false) -> Bool {
        normalizeAnswer(prediction, keepCase: caseSensitive) == normalizeAnswer(reference, keepCase: caseSensitive)
    }

    /// Exact match with the case rule of a corpus task (case-sensitive for ``caseSensitiveTasks``).
    public static func exactMatch(_ prediction: String, _ reference: String, task: String) -> Bool {
        exactMatch(prediction, reference, caseSensitive: caseSensitiveTasks.contains(task))
    }

    /// SQuAD-style token F1 between bags of ``squadTokens(_:)``.
    /// Two empty answers score 1; one empty answer scores 0.
    public static func tokenF1(_ prediction: String, _ reference: String) -> Double {
        let p = squadTokens(prediction), r = squadTokens(reference)
        if p.isEmpty || r.isEmpty { return p.isEmpty && r.isEmpty ? 1 : 0 }
        var refCounts: [String: Int] = [:]
        for t in r { refCounts[t, default: 0] += 1 }
        var common = 0
        for t in p where (refCounts[t] ?? 0) > 0 {
            refCounts[t]! -= 1
            common += 1
        }
        if common == 0 { return 0 }
        let precision = Double(common) / Double(p.count)
        let recall = Double(common) / Double(r.count)
        return 2 * precision * recall / (precision + recall)
    }

    // MARK: - BLEU (sacrebleu's corpus_bleu)

    /// Python's `str.isspace()` (what `str.split()` and `str.rstrip()` split on and strip): Unicode White_Space
    /// plus the separators U+001C–U+001F.
    static func isPythonSpace(_ v: UInt32) -> Bool {
        switch v {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    /// Every non-overlapping occurrence of `pattern`, left to right, replaced by `replacement` (Python's `str.replace`).
    static func replacing(_ s: [UInt32], _ pattern: String, with replacement: String) -> [UInt32] {
        let p = pattern.unicodeScalars.map(\.value), r = replacement.unicodeScalars.map(\.value)
        guard s.count >= p.count, let first = p.first else { return s }
        var out: [UInt32] = []
        out.reserveCapacity(s.count)
        var i = 0
        while i < s.count {
            if s[i] == first, i + p.count <= s.count, s[i..<(i + p.count)].elementsEqual(p) {
                out.append(contentsOf: r)
                i += p.count
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return out
    }

    @inline(__always) static func isASCIIDigit(_ v: UInt32) -> Bool { v >= 0x30 && v <= 0x39 }
    @inline(__always) static func isPeriodOrComma(_ v: UInt32) -> Bool { v == 0x2E || v == 0x2C }

    /// The class `[\{-\~\[-\` -\&\(-\+\:-\@\/]` of 13a's first rule: ASCII space and punctuation except
    /// `'`, `,`, `-` and `.`.
    static func is13aSeparated(_ v: UInt32) -> Bool {
        switch v {
        case 0x20...0x26, 0x28...0x2B, 0x2F, 0x3A...0x40, 0x5B...0x60, 0x7B...0x7E: return true
        default: return false
        }
    }

    /// One pass of a two-character `re.sub` (left to right, non-overlapping): wherever `a` matches a code point
    /// and `b` the next one, the pair is replaced by `replace(x, y)`.
    static func substitutePairs(_ s: [UInt32], _ a: (UInt32) -> Bool, _ b: (UInt32) -> Bool,
                                _ replace: (UInt32, UInt32, inout [UInt32]) -> Void) -> [UInt32] {
        var out: [UInt32] = []
        out.reserveCapacity(s.count + s.count / 2)
        var i = 0
        while i < s.count {
            if i + 1 < s.count, a(s[i]), b(s[i + 1]) {
                replace(s[i], s[i + 1], &out)
                i += 2
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return out
    }

    /// sacrebleu's default tokeniser `13a` (mteval-v13a, as `BLEU._preprocess_segment` applies it: the segment is
    /// first right-stripped), with tokens as code-point sequences (Python compares strings by code point, not by
    /// canonical equivalence as Swift's `String` does).
    static func tokenize13aCodePoints(_ text: String) -> [[UInt32]] {
        var s = text.unicodeScalars.map(\.value)
        while let last = s.last, isPythonSpace(last) { s.removeLast() }
        // Language-independent part.
        s = replacing(s, "<skipped>", with: "")
        s = replacing(s, "-\n", with: "")
        s = replacing(s, "\n", with: " ")
        if s.contains(0x26) {
            s = replacing(s, "&quot;", with: "\"")
            s = replacing(s, "&amp;", with: "&")
            s = replacing(s, "&lt;", with: "<")
            s = replacing(s, "&gt;", with: ">")
        }
        // Language-dependent part (tokenizer_re.TokenizerRegexp) on " line ".
        var t: [UInt32] = [0x20]
        t.reserveCapacity(s.count * 2 + 2)
        for v in s {
            if is13aSeparated(v) { t.append(0x20); t.append(v); t.append(0x20) } else { t.append(v) }
        }
        t.append(0x20)
        // Period and comma unless preceded by a digit: ([^0-9])([\.,]) → "\1 \2 ".
        t = substitutePairs(t, { !isASCIIDigit($0) }, isPeriodOrComma) { x, y, out in out += [x, 0x20, y, 0x20] }
        // Period and comma unless followed by a digit: ([\.,])([^0-9]) → " \1 \2".
        t = substitutePairs(t, isPeriodOrComma, { !isASCIIDigit($0) }) { x, y, out in out += [0x20, x, 0x20, y] }
        // Dash after a digit: ([0-9])(-) → "\1 \2 ".
        t = substitutePairs(t, isASCIIDigit, { $0 == 0x2D }) { x, y, out in out += [x, 0x20, y, 0x20] }
        // str.split().
        var tokens: [[UInt32]] = [], current: [UInt32] = []
        for v in t {
            if isPythonSpace(v) {
                if !current.isEmpty { tokens.append(current); current.removeAll(keepingCapacity: true) }
            } else {
                current.append(v)
            }
        }
        if !current.isEmpty { tokens.append(current) }
        return tokens
    }

    /// sacrebleu's 13a tokenisation of one segment (`BLEU().tokenizer(line.rstrip()).split()`).
    public static func tokenize13a(_ text: String) -> [String] {
        tokenize13aCodePoints(text).map { cps in
            var s = String.UnicodeScalarView()
            for v in cps { s.append(Unicode.Scalar(v)!) }
            return String(s)
        }
    }

    /// sacrebleu's `BLEUScore`: the score in 0…100 and its sufficient statistics.
    public struct BLEUScore: Equatable, Sendable {
        /// BLEU in 0…100, as sacrebleu prints it.
        public var score: Double
        /// Clipped n-gram matches per order.
        public var counts: [Int]
        /// Hypothesis n-grams per order.
        public var totals: [Int]
        /// Precisions in percent (smoothed as used in the score; 0 for an order that was not reached).
        public var precisions: [Double]
        /// Brevity penalty.
        public var bp: Double
        /// Hypothesis and reference lengths in 13a tokens, summed over the corpus.
        public var sysLen: Int
        public var refLen: Int
    }

    /// sacrebleu's `BLEU.compute_bleu` for the `exp` smoothing method (mteval's: the k-th order without a
    /// match has precision 1 / (2^k · total)), in percent. With `effectiveOrder` the geometric mean runs over
    /// the orders with at least one hypothesis n-gram only.
    static func computeBLEU(correct: [Int], total: [Int], sysLen: Int, refLen: Int,
                            effectiveOrder: Bool, maxOrder: Int) -> BLEUScore {
        var bp = 1.0
        if sysLen < refLen { bp = sysLen > 0 ? exp(1 - Double(refLen) / Double(sysLen)) : 0 }
        var precisions = [Double](repeating: 0, count: maxOrder)
        if correct.allSatisfy({ $0 == 0 }) {
            return BLEUScore(score: 0, counts: correct, totals: total, precisions: precisions, bp: bp,
                             sysLen: sysLen, refLen: refLen)
        }
        var smoothMteval = 1.0
        var effOrder = maxOrder
        for n in 1...maxOrder {
            if total[n - 1] == 0 { break }
            if effectiveOrder { effOrder = n }
            if correct[n - 1] == 0 {
                smoothMteval *= 2
                precisions[n - 1] = 100 / (smoothMteval * Double(total[n - 1]))
            } else {
                precisions[n - 1] = 100 * Double(correct[n - 1]) / Double(total[n - 1])
            }
        }
        // sacrebleu's my_log floors log(0) at -9999999999, which makes the score 0.
        let logSum = precisions[..<effOrder].reduce(0.0) { $0 + ($1 == 0 ? -9_999_999_999 : log($1)) }
        let score = bp * exp(logSum / Double(effOrder))
        return BLEUScore(score: score, counts: correct, totals: total, precisions: precisions, bp: bp,
                         sysLen: sysLen, refLen: refLen)
    }

    /// sacrebleu's BLEU with one reference per hypothesis, mixed case, 13a tokenisation and `exp` smoothing:
    /// `sacrebleu.corpus_bleu(hypotheses, [references])` (effectiveOrder false, its default) or, per sentence,
    /// `sacrebleu.sentence_bleu(h, [r])` (effectiveOrder true). The score is in 0…100.
    public static func sacreBLEU(hypotheses: [String], references: [String], effectiveOrder: Bool = false,
                                 maxOrder: Int = 4) -> BLEUScore {
        precondition(hypotheses.count == references.count, "BLEU: \(hypotheses.count) hypotheses but \(references.count) references")
        var ids: [[UInt32]: Int] = [:]
        func intern(_ tokens: [[UInt32]]) -> [Int] {
            tokens.map { t in
                if let id = ids[t] { return id }
                let id = ids.count
                ids[t] = id
                return id
            }
        }
        func ngrams(_ s: [Int]) -> [ArraySlice<Int>: Int] {
            var counts: [ArraySlice<Int>: Int] = [:]
            for n in 1...maxOrder where s.count >= n {
                for i in 0...(s.count - n) { counts[s[i..<(i + n)], default: 0] += 1 }
            }
            return counts
        }
        var correct = [Int](repeating: 0, count: maxOrder), total = correct
        var sysLen = 0, refLen = 0
        for (h, r) in zip(hypotheses, references) {
            let ht = intern(tokenize13aCodePoints(h)), rt = intern(tokenize13aCodePoints(r))
            sysLen += ht.count
            refLen += rt.count
            let refCounts = ngrams(rt)
            for (gram, count) in ngrams(ht) {
                total[gram.count - 1] += count
                if let rc = refCounts[gram] { correct[gram.count - 1] += min(count, rc) }
            }
        }
        return computeBLEU(correct: correct, total: total, sysLen: sysLen, refLen: refLen,
                           effectiveOrder: effectiveOrder, maxOrder: maxOrder)
    }

    /// Corpus BLEU as `sacrebleu.corpus_bleu(hypotheses, [references])` with its defaults (13a tokenisation, mixed
    /// case, `exp` smoothing, max order 4), divided by 100: a value in [0, 1] (`finch eval` prints it ×100).
    public static func corpusBLEU(hypotheses: [String], references: [String], maxOrder: Int = 4) -> Double {
        sacreBLEU(hypotheses: hypotheses, references: references, maxOrder: maxOrder).score / 100
    }

    /// Sentence BLEU as `sacrebleu.sentence_bleu(hypothesis, [reference])` with its defaults (13a, `exp`
    /// smoothing, effective order), divided by 100.
    public static func sentenceBLEU(_ hypothesis: String, _ reference: String, maxOrder: Int = 4) -> Double {
        sacreBLEU(hypotheses: [hypothesis], references: [reference], effectiveOrder: true, maxOrder: maxOrder).score / 100
    }

    // MARK: - ROUGE-L (rouge-score)

    /// rouge-score's default tokeniser without stemming (``RougeL/tokens(_:)``).
    public static func rougeTokens(_ text: String) -> [String] { RougeL.tokens(text) }

    /// Length of the longest common subsequence of two token sequences.
    public static func lcsLength(_ a: [String], _ b: [String]) -> Int { RougeL.lcsLength(a, b) }

    /// rouge-score's `Score` for ROUGE-L.
    public typealias RougeScore = RougeL.Score

    /// ROUGE-L as `rouge_scorer.RougeScorer(['rougeL'], use_stemmer=False).score(reference, prediction)['rougeL']`
    /// (``RougeL/score(_:_:)``, shared with `finch synthesize`'s near-duplicate filter).
    public static func rougeLScore(_ prediction: String, _ reference: String) -> RougeScore { RougeL.score(prediction, reference) }

    /// ROUGE-L F-measure, rouge-score's `fmeasure` (``rougeLScore(_:_:)``), in [0, 1]. `finch eval` reports the
    /// mean over rows (and over a row's replies), printed ×100.
    public static func rougeL(_ prediction: String, _ reference: String) -> Double {
        rougeLScore(prediction, reference).fmeasure
    }

    // MARK: - Perplexity and summary statistics

    /// Perplexity exp(ΣNLL / N) from a summed natural-log negative log-likelihood over N tokens.
    /// Returns NaN when no token was scored.
    public static func perplexity(summedNLL: Double, tokenCount: Int) -> Double {
        tokenCount > 0 ? exp(summedNLL / Double(tokenCount)) : .nan
    }

    /// Arithmetic mean; NaN for an empty array.
    public static func mean(_ values: [Double]) -> Double {
        values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count)
    }

    /// Standard error of the mean: sample standard deviation (n − 1) over √n; 0 below two values.
    public static func standardError(_ values: [Double]) -> Double {
        guard values.count > 1 else { return 0 }
        let m = mean(values)
        let variance = values.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(values.count - 1)
        return (variance / Double(values.count)).squareRoot()
    }
}

/// Precision, recall and F1 of one class in a ``ClassificationReport``.
public struct ClassScores: Equatable, Codable, Sendable {
    /// True positives / predicted positives (0 when nothing was predicted as this class).
    public var precision: Double
    /// True positives / actual positives (0 when the class never occurs).
    public var recall: Double
    /// Harmonic mean of precision and recall (0 when both are 0).
    public var f1: Double
    /// Number of gold examples with this label.
    public var support: Int

    public init(precision: Double, recall: Double, f1: Double, support: Int) {
        self.precision = precision
        self.recall = recall
        self.f1 = f1
        self.support = support
    }
}

/// Accuracy, per-class scores and macro F1 of predicted labels against gold labels.
public struct ClassificationReport: Codable, Sendable {
    /// Fraction of examples whose prediction equals the gold label.
    public var accuracy: Double
    /// Scores per class, for every label seen in gold or predictions.
    public var perClass: [String: ClassScores]
    /// Unweighted mean of per-class F1 over ``classes``.
    public var macroF1: Double
    /// Class names, sorted, in the order used for the macro average.
    public var classes: [String]

    /// Builds the report. `classes` fixes the label set (e.g. from `--labels`);
    /// when nil, the union of gold and predicted labels is used.
    public init(predictions: [String], gold: [String], classes: [String]? = nil) {
        precondition(predictions.count == gold.count, "ClassificationReport: \(predictions.count) predictions but \(gold.count) gold labels")
        let labels = classes ?? Array(Set(gold).union(predictions)).sorted()
        var tp: [String: Int] = [:], predicted: [String: Int] = [:], actual: [String: Int] = [:]
        var correct = 0
        for (p, g) in zip(predictions, gold) {
            predicted[p, default: 0] += 1
            actual[g, default: 0] += 1
            if p == g { tp[g, default: 0] += 1; correct += 1 }
        }
        var per: [String: ClassScores] = [:]
        for label in labels {
            let t = Double(tp[label] ?? 0)
            let pc = predicted[label] ?? 0, ac = actual[label] ?? 0
            let precision = pc > 0 ? t / Double(pc) : 0
            let recall = ac > 0 ? t / Double(ac) : 0
            let f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
            per[label] = ClassScores(precision: precision, recall: recall, f1: f1, support: ac)
        }
        accuracy = gold.isEmpty ? .nan : Double(correct) / Double(gold.count)
        perClass = per
        self.classes = labels
        macroF1 = labels.isEmpty ? .nan : labels.reduce(0) { $0 + per[$1]!.f1 } / Double(labels.count)
    }
}
