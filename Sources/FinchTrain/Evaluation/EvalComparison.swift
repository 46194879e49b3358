import Foundation
import FinchModel

/// Several models' scores side by side: the printed table, eval.json and the bar chart.
public struct EvalComparison: Codable, Sendable {
    public var data: String
    public var models: [ModelScores]
    /// How replies were chosen (`EvalSettings.decodingDescription`); nil in files from before it was recorded.
    public var decoding: String?

    public init(data: String, models: [ModelScores], decoding: String? = nil) {
        self.data = data; self.models = models; self.decoding = decoding
    }

    /// Columns that at least one model measured: (header, value of a model, formatted).
    var columns: [(String, (ModelScores) -> String)] {
        func pct(_ v: Double?) -> String { v.map { String(format: "%.1f%%", 100 * $0) } ?? "–" }
        func num(_ v: Double?, _ f: String = "%.3f") -> String { v.map { String(format: f, $0) } ?? "–" }
        var c: [(String, (ModelScores) -> String)] = []
        func add(_ h: String, _ present: (ModelScores) -> Bool, _ f: @escaping (ModelScores) -> String) {
            if models.contains(where: present) { c.append((h, f)) }
        }
        add("exact match", { $0.exactMatch != nil }) { m in
            m.exactMatch.map { String(format: "%.1f%% ±%.1f", 100 * $0, 100 * (m.exactMatchStderr ?? 0)) } ?? "–"
        }
        add("token F1", { $0.tokenF1 != nil }) { pct($0.tokenF1) }
        add("BLEU", { $0.bleu != nil }) { num($0.bleu.map { $0 * 100 }, "%.1f") }
        add("ROUGE-L", { $0.rougeL != nil }) { num($0.rougeL.map { $0 * 100 }, "%.1f") }
        add("perplexity", { $0.perplexity != nil }) { num($0.perplexity, "%.2f") }
        add("mean reward", { $0.meanReward != nil }) { m in
            m.meanReward.map { String(format: "%.3f ±%.3f", $0, m.rewardStderr ?? 0) } ?? "–"
        }
        add("KL to ref", { $0.klToReference != nil }) { num($0.klToReference, "%.3f") }
        add("accuracy", { $0.accuracy != nil }) { pct($0.accuracy) }
        add("macro F1", { $0.macroF1 != nil }) { num($0.macroF1) }
        add("trainable params", { $0.trainableParameters != nil }) { m in m.trainableParameters.map { Self.count($0) } ?? "–" }
        add("train time", { $0.trainingSeconds != nil }) { m in m.trainingSeconds.map { String(format: "%.0f s", $0) } ?? "–" }
        return c
    }

    static func count(_ n: Int) -> String {
        n >= 1_000_000 ? String(format: "%.2fM", Double(n) / 1e6) : n >= 1000 ? String(format: "%.1fk", Double(n) / 1e3) : "\(n)"
    }

    /// The comparison as a Markdown table (one row per model).
    public func markdownTable() -> String {
        let cols = columns
        var lines = ["| model | " + cols.map(\.0).joined(separator: " | ") + " |",
                     "|---|" + cols.map { _ in "---:" }.joined(separator: "|") + "|"]
        for m in models { lines.append("| \(m.name) | " + cols.map { $0.1(m) }.joined(separator: " | ") + " |") }
        return lines.joined(separator: "\n")
    }

    /// The comparison as an aligned plain-text table for the terminal.
    public func textTable() -> String {
        let cols = columns
        let header = ["model"] + cols.map(\.0)
        let rows = models.map { m in [m.name] + cols.map { $0.1(m) } }
        let widths = header.indices.map { i in ([header[i]] + rows.map { $0[i] }).map(\.count).max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, s in
                let pad = String(repeating: " ", count: widths[i] - s.count)
                return i == 0 ? s + pad : pad + s
            }.joined(separator: "  ")
        }
        return ([line(header), widths.map { String(repeating: "─", count: $0) }.joined(separator: "  ")] + rows.map(line))
            .joined(separator: "\n")
    }

    /// A grouped bar chart of the metrics in [0, 1] (exact match, token F1, BLEU, ROUGE-L, accuracy, reward when in range).
    public func chartSVG(title: String = "finch eval") -> String {
        var groups: [String] = [], getters: [(ModelScores) -> Double?] = []
        func add(_ name: String, _ g: @escaping (ModelScores) -> Double?) {
            if models.contains(where: { g($0) != nil }) { groups.append(name); getters.append(g) }
        }
        add("exact match", \.exactMatch); add("token F1", \.tokenF1); add("BLEU", \.bleu); add("ROUGE-L", \.rougeL)
        add("mean reward", \.meanReward); add("accuracy", \.accuracy); add("macro F1", \.macroF1)
        let series = models.map { m in BarChart.Series(name: m.name, values: getters.map { $0(m) ?? .nan }) }
        return BarChart.svg(title: title, groups: groups, series: series)
    }

    /// Writes eval.json, eval.md and eval.svg into `folder` (created when missing).
    public func write(to folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        try AtomicFile.write(try enc.encode(self), to: folder.appendingPathComponent("eval.json"))
        let note = decoding.map { "Replies: \($0).\n\n" } ?? ""
        try AtomicFile.write(Data((note + markdownTable() + "\n").utf8), to: folder.appendingPathComponent("eval.md"))
        try BarChart.write(chartSVG(), to: folder.appendingPathComponent("eval.svg"))
    }

    /// Reads an eval.json written by ``write(to:)``.
    public static func read(_ url: URL) throws -> EvalComparison {
        let dec = JSONDecoder()
        dec.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try dec.decode(EvalComparison.self, from: Data(contentsOf: url))
    }
}
