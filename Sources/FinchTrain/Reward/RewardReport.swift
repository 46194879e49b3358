import Foundation
import FinchModel

/// What a reward model's scores on held-out preference pairs say about it (`finch score --report DIR`):
/// - pairwise accuracy with a 95% Wilson interval (ties count as wrong);
/// - calibration of `p = σ(r_chosen − r_rejected)` as the probability that the chosen reply is preferred: each pair
///   enters once as (p, preferred) and once as (1 − p, not preferred), so a model that is right 70% of the time when
///   it says 0.7 is calibrated; 10 equal-width bins; ECE = Σ (n_bin / n) |accuracy_bin − confidence_bin|;
/// - length bias: accuracy when the chosen reply is shorter, longer or as long as the rejected one (tokens), and the
///   Pearson correlation of score with reply length over every scored reply;
/// - the score distribution of chosen and rejected replies and of the margins.
public struct RewardReport: Codable, Equatable, Sendable {
    public struct Interval: Codable, Equatable, Sendable { public var lower: Double; public var upper: Double }
    public struct Bin: Codable, Equatable, Sendable {
        public var lower: Double, upper: Double
        public var count: Int
        public var confidence: Double?
        public var accuracy: Double?
    }
    public struct Slice: Codable, Equatable, Sendable { public var pairs: Int; public var accuracy: Double? }
    public struct LengthBias: Codable, Equatable, Sendable {
        public var chosenShorter: Slice, chosenLonger: Slice, sameLength: Slice
        /// Pearson correlation of score with reply length over all replies (nil when either is constant).
        public var scoreLengthCorrelation: Double?
    }
    public struct Distribution: Codable, Equatable, Sendable {
        public var mean: Double, std: Double
        public var min: Double, p5: Double, p25: Double, median: Double, p75: Double, p95: Double, max: Double
    }

    public var pairs: Int
    public var accuracy: Double
    public var accuracyInterval95: Interval
    public var ece: Double
    public var calibration: [Bin]
    public var lengthBias: LengthBias
    public var chosenScores: Distribution
    public var rejectedScores: Distribution
    public var margins: Distribution

    public init(chosen: [Float], rejected: [Float], chosenLengths: [Int], rejectedLengths: [Int], bins: Int = 10) throws {
        let n = chosen.count
        guard n > 0, rejected.count == n, chosenLengths.count == n, rejectedLengths.count == n else {
            throw TrainingError("a reward report needs at least one preference pair (found \(n))")
        }
        pairs = n
        let wins = zip(chosen, rejected).filter { $0 > $1 }.count
        accuracy = Double(wins) / Double(n)
        accuracyInterval95 = Self.wilson(successes: wins, n: n)
        // Calibration, symmetrised: (p, 1) and (1 − p, 0) per pair.
        var sums = [(count: Int, confidence: Double, hits: Double)](repeating: (0, 0, 0), count: bins)
        for (c, r) in zip(chosen, rejected) {
            let p = LogSigmoid.sigmoid(Double(c) - Double(r))
            for (q, hit) in [(p, 1.0), (1 - p, 0.0)] {
                let b = Swift.min(bins - 1, Int(q * Double(bins)))
                sums[b].count += 1; sums[b].confidence += q; sums[b].hits += hit
            }
        }
        calibration = sums.enumerated().map { i, s in
            Bin(lower: Double(i) / Double(bins), upper: Double(i + 1) / Double(bins), count: s.count,
                confidence: s.count > 0 ? s.confidence / Double(s.count) : nil, accuracy: s.count > 0 ? s.hits / Double(s.count) : nil)
        }
        ece = sums.reduce(0.0) { $0 + ($1.count > 0 ? abs($1.hits - $1.confidence) : 0) } / Double(2 * n)
        func slice(_ keep: (Int) -> Bool) -> Slice {
            let idx = (0..<n).filter(keep)
            return Slice(pairs: idx.count, accuracy: idx.isEmpty ? nil : Double(idx.filter { chosen[$0] > rejected[$0] }.count) / Double(idx.count))
        }
        lengthBias = LengthBias(chosenShorter: slice { chosenLengths[$0] < rejectedLengths[$0] },
                                chosenLonger: slice { chosenLengths[$0] > rejectedLengths[$0] },
                                sameLength: slice { chosenLengths[$0] == rejectedLengths[$0] },
                                scoreLengthCorrelation: Self.pearson((chosen + rejected).map(Double.init), (chosenLengths + rejectedLengths).map(Double.init)))
        chosenScores = Self.distribution(chosen.map(Double.init))
        rejectedScores = Self.distribution(rejected.map(Double.init))
        margins = Self.distribution(zip(chosen, rejected).map { Double($0) - Double($1) })
    }

    /// The Wilson score interval at 95% (z = 1.96).
    public static func wilson(successes k: Int, n: Int, z: Double = 1.959964) -> Interval {
        let p = Double(k) / Double(n), z2 = z * z, d = 1 + z2 / Double(n)
        let centre = (p + z2 / (2 * Double(n))) / d
        let half = z * (p * (1 - p) / Double(n) + z2 / (4 * Double(n * n))).squareRoot() / d
        return Interval(lower: Swift.max(0, centre - half), upper: Swift.min(1, centre + half))
    }

    static func pearson(_ x: [Double], _ y: [Double]) -> Double? {
        let n = Double(x.count), mx = x.reduce(0, +) / n, my = y.reduce(0, +) / n
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for (a, b) in zip(x, y) { sxy += (a - mx) * (b - my); sxx += (a - mx) * (a - mx); syy += (b - my) * (b - my) }
        return sxx > 0 && syy > 0 ? sxy / (sxx * syy).squareRoot() : nil
    }

    /// Mean, population standard deviation and linear-interpolation quantiles (numpy's default).
    static func distribution(_ v: [Double]) -> Distribution {
        let s = v.sorted(), n = Double(v.count), mean = v.reduce(0, +) / n
        func q(_ f: Double) -> Double {
            let h = f * (n - 1), lo = Int(h.rounded(.down)), hi = Swift.min(s.count - 1, lo + 1)
            return s[lo] + (h - Double(lo)) * (s[hi] - s[lo])
        }
        let std = (v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / n).squareRoot()
        return Distribution(mean: mean, std: std, min: s[0], p5: q(0.05), p25: q(0.25), median: q(0.5), p75: q(0.75), p95: q(0.95), max: s[s.count - 1])
    }

    // MARK: writing

    /// `report.json`, `report.md`, `reliability.svg` and `scores.svg` in `folder` (each written atomically).
    public func write(to folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try enc.encode(self), to: folder.appendingPathComponent("report.json"))
        try AtomicFile.write(Data(markdown().utf8), to: folder.appendingPathComponent("report.md"))
        try AtomicFile.write(Data(reliabilitySVG().utf8), to: folder.appendingPathComponent("reliability.svg"))
        try AtomicFile.write(Data(distributionSVG().utf8), to: folder.appendingPathComponent("scores.svg"))
    }

    public func markdown() -> String {
        func pct(_ v: Double?) -> String { v.map { String(format: "%.1f%%", 100 * $0) } ?? "–" }
        func row(_ name: String, _ d: Distribution) -> String {
            "| \(name) | " + [d.mean, d.std, d.min, d.p5, d.median, d.p95, d.max].map { String(format: "%.3f", $0) }.joined(separator: " | ") + " |"
        }
        var lines = ["# Reward model report", "",
                     String(format: "**Pairwise accuracy** %.1f%% (95%% interval %.1f–%.1f%%) on %d pairs; ties count as wrong.",
                            100 * accuracy, 100 * accuracyInterval95.lower, 100 * accuracyInterval95.upper, pairs), "",
                     String(format: "**Calibration** of σ(r_chosen − r_rejected): ECE %.3f (10 bins; each pair counted as (p, preferred) and (1 − p, not)). See reliability.svg.", ece), "",
                     "| bin | pairs | confidence | accuracy |", "|---|---:|---:|---:|"]
        for b in calibration where b.count > 0 {
            lines.append(String(format: "| %.1f–%.1f | %d | %@ | %@ |", b.lower, b.upper, b.count, pct(b.confidence), pct(b.accuracy)))
        }
        let lb = lengthBias
        lines += ["", "**Length bias**", "", "| chosen reply is | pairs | accuracy |", "|---|---:|---:|",
                  "| shorter | \(lb.chosenShorter.pairs) | \(pct(lb.chosenShorter.accuracy)) |",
                  "| longer | \(lb.chosenLonger.pairs) | \(pct(lb.chosenLonger.accuracy)) |",
                  "| as long | \(lb.sameLength.pairs) | \(pct(lb.sameLength.accuracy)) |", "",
                  "Correlation of score with reply length (tokens): " + (lb.scoreLengthCorrelation.map { String(format: "%+.3f", $0) } ?? "–"), "",
                  "**Scores** (see scores.svg)", "", "| | mean | std | min | p5 | median | p95 | max |", "|---|---:|---:|---:|---:|---:|---:|---:|",
                  row("chosen", chosenScores), row("rejected", rejectedScores), row("margin", margins), ""]
        return lines.joined(separator: "\n")
    }

    /// Accuracy against confidence per bin, with the diagonal of perfect calibration.
    public func reliabilitySVG() -> String {
        let W = 420.0, H = 420.0, L = 60.0, T = 40.0, S = 320.0
        func x(_ v: Double) -> Double { L + S * v }
        func y(_ v: Double) -> Double { T + S * (1 - v) }
        var out = ["<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(W))\" height=\"\(Int(H))\" font-family=\"sans-serif\" font-size=\"12\">",
                   "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
                   String(format: "<text x=\"%.0f\" y=\"24\" font-size=\"14\">Reliability (ECE %.3f, %d pairs)</text>", L, ece, pairs),
                   String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#999\"/>", L, T, S, S),
                   String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#bbb\" stroke-dasharray=\"4 3\"/>", x(0), y(0), x(1), y(1))]
        for b in calibration {
            guard let acc = b.accuracy else { continue }
            out.append(String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#4e79a7\" fill-opacity=\"0.75\"><title>%.1f–%.1f: %d, accuracy %.3f</title></rect>",
                              x(b.lower) + 1, y(acc), S * (b.upper - b.lower) - 2, S * acc, b.lower, b.upper, b.count, acc))
        }
        for v in stride(from: 0.0, through: 1.0, by: 0.25) {
            out.append(String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.2f</text>", x(v), y(0) + 16, v))
            out.append(String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.2f</text>", L - 6, y(v) + 4, v))
        }
        out.append(String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">confidence σ(r_chosen − r_rejected)</text>", L + S / 2, H - 12))
        out.append(String(format: "<text x=\"16\" y=\"%.1f\" transform=\"rotate(-90 16 %.1f)\" text-anchor=\"middle\">observed frequency</text>", T + S / 2, T + S / 2))
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }

    /// Box plots (p5–p95 whiskers, p25–p75 box, median) of chosen scores, rejected scores and margins.
    public func distributionSVG() -> String {
        let rows = [("chosen", chosenScores, "#59a14f"), ("rejected", rejectedScores, "#e15759"), ("margin", margins, "#4e79a7")]
        let lo = rows.map(\.1.min).min()!, hi = rows.map(\.1.max).max()!
        let span = hi > lo ? hi - lo : 1, L = 90.0, W = 360.0
        func x(_ v: Double) -> Double { L + W * (v - lo) / span }
        var out = ["<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"480\" height=\"220\" font-family=\"sans-serif\" font-size=\"12\">",
                   "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
                   "<text x=\"\(Int(L))\" y=\"22\" font-size=\"14\">Reward scores (\(pairs) pairs)</text>"]
        for (i, (name, d, colour)) in rows.enumerated() {
            let cy = 60.0 + 50.0 * Double(i)
            out.append(String(format: "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%@</text>", L - 8, cy + 4, name))
            out.append(String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%@\"/>", x(d.p5), cy, x(d.p95), cy, colour))
            out.append(String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"20\" fill=\"%@\" fill-opacity=\"0.6\" stroke=\"%@\"/>",
                              x(d.p25), cy - 10, Swift.max(1, x(d.p75) - x(d.p25)), colour, colour))
            out.append(String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\" stroke-width=\"2\"/>", x(d.median), cy - 10, x(d.median), cy + 10))
        }
        for v in [lo, (lo + hi) / 2, hi] {
            out.append(String(format: "<text x=\"%.1f\" y=\"205\" text-anchor=\"middle\">%.2f</text>", x(v), v))
        }
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }
}
