import Foundation
import FinchModel
import Yams

/// What a sweep shows: `results.md` (the trials sorted by the metric), `sweep.svg` (the metric against each
/// hyper-parameter, and every trial's evaluation curve with the halving rungs) and `best.yaml` (the base recipe with
/// the best trial's values: `finch CMD --config best.yaml --out RUN` trains it again).
struct SweepResults {
    let settings: SweepRunner.Settings
    let space: SearchSpace
    let trials: [SweepTrial]
    let base: [String: Any]

    var higherIsBetter: Bool { settings.metric == "exact_match" }

    /// Completed trials best first, then stopped ones (by their last evaluation), then running and failed ones.
    var ranked: [SweepTrial] {
        func key(_ t: SweepTrial) -> (Int, Double) {
            let order: [SweepTrial.Status: Int] = [.completed: 0, .stopped: 1, .running: 2, .failed: 3]
            let v = t.value.map { higherIsBetter && t.status == .completed ? -$0 : $0 } ?? .infinity
            return (order[t.status]!, v)
        }
        return trials.sorted { key($0) < key($1) || (key($0) == key($1) && $0.trial < $1.trial) }
    }

    var best: SweepTrial? { ranked.first { $0.status == .completed && $0.value != nil } }

    static func format(_ v: Double?, metric: String, stderr: Double? = nil) -> String {
        guard let v else { return "–" }
        if metric == "exact_match" { return String(format: "%.1f%%", 100 * v) + (stderr.map { String(format: " ±%.1f", 100 * $0) } ?? "") }
        return String(format: "%.4f", v)
    }

    func write(to out: URL) throws {
        try AtomicFile.write(Data(markdown().utf8), to: out.appendingPathComponent("results.md"))
        try LossCurve.write(panels(), to: out.appendingPathComponent("sweep.svg"), width: 820, panelHeight: 300)
        if let b = best {
            var recipe = base
            for (k, v) in b.params { recipe[k] = v.native }
            let header = "# finch sweep: trial \(b.folderName) of \(trials.count), \(settings.metric) \(Self.format(b.value, metric: settings.metric, stderr: b.stderr))\n" +
                "# base \(settings.baseConfig) with the searched values: finch \(settings.command) --config best.yaml --out RUN\n"
            try AtomicFile.write(Data((header + (try Recipe(defaults: recipe).yaml())).utf8), to: out.appendingPathComponent("best.yaml"))
        }
    }

    func markdown() -> String {
        let keys = space.parameters.map(\.key)
        let done = trials.filter { $0.status != .running }.count
        var lines = ["# Sweep: \(settings.metric) (\(higherIsBetter ? "higher" : "lower") is better)", "",
                     "`finch sweep --command \(settings.command) --config \(settings.baseConfig) --space \(settings.space)`, " +
                     "\(settings.search.rawValue) search, \(done)/\(settings.trials) trials done" +
                     (settings.halving.map { String(format: ", successive halving η=%g from %d steps", $0.eta, $0.graceSteps) } ?? "") + ".", ""]
        lines.append("| # | trial | status | \(settings.metric) | rung | " + keys.joined(separator: " | ") + " | time |")
        lines.append("|---:|---|---|---:|---:|" + keys.map { _ in "---:|" }.joined() + "---:|")
        for (i, t) in ranked.enumerated() {
            let cells = ["\(i + 1)", t.folderName, t.status.rawValue, Self.format(t.value, metric: settings.metric, stderr: t.stderr),
                         t.rung >= 0 ? "\(t.rung)" : "–"] + keys.map { t.params[$0]?.description ?? "–" }
                + [t.seconds.map { String(format: "%.0f s", $0) } ?? "–"]
            lines.append("| " + cells.joined(separator: " | ") + " |")
        }
        let notes = ranked.filter { $0.note != nil }
        if !notes.isEmpty {
            lines += ["", "Notes:", ""] + notes.map { "- trial \($0.folderName): \($0.note!)" }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// One panel per hyper-parameter (the metric against its value; log scales as log10) and one of the curves.
    func panels() -> [LossCurve.Panel] {
        var panels: [LossCurve.Panel] = []
        let yLabel = settings.metric == "exact_match" ? "exact match (%)" : "eval loss"
        func y(_ t: SweepTrial) -> Double? { t.value.map { higherIsBetter ? 100 * $0 : $0 } }
        for p in space.parameters {
            var title = p.key, xLabel = p.key
            if p.distribution.isLog { xLabel = "log10 " + p.key }
            if case .choice(let c) = p.distribution {
                xLabel = p.key + ": " + c.enumerated().map { "\($0.offset)=\($0.element)" }.joined(separator: ", ")
            }
            func x(_ t: SweepTrial) -> Double? {
                guard let v = t.params[p.key], let u = p.distribution.coordinate(of: v) else { return nil }
                return p.distribution.isLog ? u / log(10) : u
            }
            var series: [LossCurve.Series] = []
            for (status, colour) in [(SweepTrial.Status.completed, "#1f77b4"), (.stopped, "#999999")] {
                let pts = trials.filter { $0.status == status }.compactMap { t -> (x: Double, y: Double)? in
                    guard let a = x(t), let b = y(t) else { return nil }
                    return (a, b)
                }.sorted { $0.x < $1.x }
                if !pts.isEmpty { series.append(LossCurve.Series(name: status == .completed ? "completed" : "stopped early", points: pts, color: colour, markers: true, line: false)) }
            }
            if series.isEmpty { continue }
            title = "\(settings.metric) against \(p.key)"
            var xRange: (Double, Double)? = nil
            if case .choice(let c) = p.distribution { xRange = (0, Double(c.count - 1)) }
            else if let (lo, hi) = p.distribution.range { xRange = p.distribution.isLog ? (lo / log(10), hi / log(10)) : (lo, hi) }
            panels.append(LossCurve.Panel(title: title, yLabel: yLabel, series: series, xLabel: xLabel, xRange: xRange))
        }
        let curves = trials.filter { !$0.curve.isEmpty }.map { t in
            LossCurve.Series(name: "\(t.folderName) \(t.status.rawValue)", points: t.curve.map { ($0[0], $0[1]) },
                             color: t.status == .stopped ? "#bbbbbb" : nil, markers: true)
        }
        if !curves.isEmpty {
            let rungs = settings.halving.map { h in h.milestones(maxSteps: trials.map(\.maxSteps).max() ?? 0) } ?? []
            let title = "Evaluation curves" + (rungs.isEmpty ? "" : " (halving rungs at steps \(rungs.map(String.init).joined(separator: ", ")))")
            panels.append(LossCurve.Panel(title: title, yLabel: settings.curveKey.replacingOccurrences(of: "_", with: " "), series: curves))
        }
        return panels
    }
}
