import Foundation

/// Text and classification metrics used by `finch eval`.
///
/// Pure functions over strings and numbers, no dependency on the rest of Finch,
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

    /// Tokeniser for BLEU and ROUGE-L: case-sensitive, words split on whitespace,
    /// each punctuation character a token of its own (so "cat." is ["cat", "."]).
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

    // MARK: - BLEU

    /// Clipped n-gram matches and hypothesis n-gram total for one order.
    static func ngramMatches(_ hyp: [String], _ ref: [String], order n: Int) -> (matches: Int, total: Int) {
        guard hyp.count >= n else { return (0, 0) }
        var refCounts: [ArraySlice<String>: Int] = [:]
        if ref.count >= n { for i in 0...(ref.count - n) { refCounts[ref[i..<i + n], default: 0] += 1 } }
        var hypCounts: [ArraySlice<String>: Int] = [:]
        for i in 0...(hyp.count - n) { hypCounts[hyp[i..<i + n], default: 0] += 1 }
        var matches = 0
        for (gram, count) in hypCounts { matches += min(count, refCounts[gram] ?? 0) }
        return (matches, hyp.count - n + 1)
    }

    /// Brevity penalty exp(1 − r/c) when the candidate length c is below the reference length r.
    static func brevityPenalty(hypothesisLength c: Int, referenceLength r: Int) -> Double {
        if c == 0 { return 0 }
        return c >= r ? 1 : exp(1 - Double(r) / Double(c))
    }

    /// Corpus BLEU (Papineni et al. 2002) with one reference per hypothesis:
    /// clipped n-gram precisions summed over the corpus for orders 1...`maxOrder`,
    /// geometric mean, times the corpus brevity penalty. Returns a value in [0, 1];
    /// 0 when any order has no match (no smoothing).
    public static func corpusBLEU(hypotheses: [String], references: [String], maxOrder: Int = 4) -> Double {
        precondition(hypotheses.count == references.count, "corpusBLEU: \(hypotheses.count) hypotheses but \(references.count) references")
        var matches = [Int](repeating: 0, count: maxOrder), totals = [Int](repeating: 0, count: maxOrder)
        var hypLen = 0, refLen = 0
        for (h, r) in zip(hypotheses, references) {
            let ht = wordTokens(h), rt = wordTokens(r)
            hypLen += ht.count; refLen += rt.count
            for n in 1...maxOrder {
                let m = ngramMatches(ht, rt, order: n)
                matches[n - 1] += m.matches; totals[n - 1] += m.total
            }
        }
        var logSum = 0.0
        for n in 0..<maxOrder {
            if matches[n] == 0 || totals[n] == 0 { return 0 }
            logSum += log(Double(matches[n]) / Double(totals[n]))
        }
        return brevityPenalty(hypothesisLength: hypLen, referenceLength: refLen) * exp(logSum / Double(maxOrder))
    }

    /// Smoothed sentence BLEU (Lin & Och 2004, "add-one" for orders ≥ 2): the
    /// unigram precision is unsmoothed, higher orders use (m + 1) / (t + 1), so a
    /// short sentence without a 4-gram match still gets a useful non-zero score.
    public static func sentenceBLEU(_ hypothesis: String, _ reference: String, maxOrder: Int = 4) -> Double {
        let ht = wordTokens(hypothesis), rt = wordTokens(reference)
        if ht.isEmpty { return 0 }
        var logSum = 0.0
        for n in 1...maxOrder {
            let m = ngramMatches(ht, rt, order: n)
            let p = n == 1 ? Double(m.matches) / Double(m.total)
                           : Double(m.matches + 1) / Double(m.total + 1)
            if p == 0 { return 0 }
            logSum += log(p)
        }
        return brevityPenalty(hypothesisLength: ht.count, referenceLength: rt.count) * exp(logSum / Double(maxOrder))
    }

    // MARK: - ROUGE-L

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

    /// ROUGE-L F-measure (Lin 2004) on lowercased ``wordTokens(_:)``:
    /// P = LCS/|prediction|, R = LCS/|reference|, F = (1+β²)PR / (R + β²P).
    public static func rougeL(_ prediction: String, _ reference: String, beta: Double = 1) -> Double {
        let p = wordTokens(prediction.lowercased()), r = wordTokens(reference.lowercased())
        let lcs = lcsLength(p, r)
        if lcs == 0 { return 0 }
        let precision = Double(lcs) / Double(p.count), recall = Double(lcs) / Double(r.count)
        let b2 = beta * beta
        return (1 + b2) * precision * recall / (recall + b2 * precision)
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
