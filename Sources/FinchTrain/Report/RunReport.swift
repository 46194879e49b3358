import Foundation
import FinchModel
import Yams

/// What `finch report` compares: several run folders read into one value (curves, configurations, evaluation files,
/// sweep trials). `ReportHTML` renders it; nothing here writes into a run folder.
public struct RunReport {
    /// One run folder.
    public struct Run {
        /// Unique within the report: the folder's last path component, lengthened by its parent when two are equal.
        public var name: String
        public var url: URL
        /// `metrics.jsonl`, in order.
        public var records: [[String: Any]]
        /// The flattened configuration (`a.b.c` → value as text); empty when the folder has none.
        public var config: [String: String]
        /// `config.json` or `config.yaml`, whichever was read.
        public var configFile: String?
        /// Flattened top-level JSON files other than the configuration (`summary.json`, `base_before.json`,
        /// `eval.json`, …): file name → key → value as text.
        public var results: [String: [String: String]]
    }

    /// One trial of a sweep folder's `trials.jsonl`.
    public struct Trial {
        public var id: String
        public var params: [String: String]
        public var value: Double?
        public var status: String
        public var rung: String
    }

    /// A sweep folder: `trials.jsonl` and `trials/<id>/` run folders (those are also in `runs`).
    public struct Sweep {
        public var name: String
        public var url: URL
        /// The metric the trials are ranked by, when the file names it.
        public var metric: String?
        public var lowerIsBetter: Bool
        /// Best first; trials without a value last, in file order.
        public var trials: [Trial]
    }

    public var runs: [Run]
    public var sweeps: [Sweep]

    /// Top-level JSON files of a run larger than this are not tabulated (they are data, not results).
    static let resultFileLimit = 1 << 20
    /// Rows kept per result file, so a long per-example list does not bury the rest of the page.
    static let resultRowLimit = 200

    /// Reads every folder: a run folder needs `metrics.jsonl`; a sweep folder (`trials.jsonl`) adds its trials and the
    /// run folders under `trials/`. Errors name the folder or the file and line.
    public static func load(_ folders: [URL]) throws -> RunReport {
        guard !folders.isEmpty else { throw TrainingError("give at least one run folder") }
        let fm = FileManager.default
        var found: [(url: URL, name: String)] = [], sweeps: [Sweep] = []
        for folder in folders.map({ $0.standardizedFileURL }) {
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: folder.path, isDirectory: &isDir) else { throw TrainingError("\(folder.path): no such folder") }
            guard isDir.boolValue else { throw TrainingError("\(folder.path) is a file, not a run folder") }
            let trialsURL = folder.appendingPathComponent("trials.jsonl")
            let isRun = fm.fileExists(atPath: folder.appendingPathComponent("metrics.jsonl").path)
            let isSweep = fm.fileExists(atPath: trialsURL.path)
            guard isRun || isSweep else {
                throw TrainingError("\(folder.path) is not a run folder (no metrics.jsonl) nor a sweep folder (no trials.jsonl)")
            }
            if isRun { found.append((folder, folder.lastPathComponent)) }
            if isSweep {
                let sweep = try loadSweep(folder, trialsURL)
                sweeps.append(sweep)
                // Each trial's run folder, in the ranking's order, named after the sweep.
                for t in sweep.trials {
                    let dir = folder.appendingPathComponent("trials").appendingPathComponent(t.id)
                    if fm.fileExists(atPath: dir.appendingPathComponent("metrics.jsonl").path) {
                        found.append((dir, "\(folder.lastPathComponent)/\(t.id)"))
                    }
                }
            }
        }
        let names = uniqueNames(found.map { ($0.url, $0.name) })
        let runs = try zip(found, names).map { f, name in try loadRun(f.url, name: name) }
        return RunReport(runs: runs, sweeps: sweeps)
    }

    /// Names that differ: equal names take their parent folder's name in front (`a/sft`, `b/sft`), and any still equal
    /// (the same folder given twice) a number (`sft #2`).
    static func uniqueNames(_ items: [(URL, String)]) -> [String] {
        let first = items.map(\.1)
        var names = first
        for (i, item) in items.enumerated() where first.filter({ $0 == item.1 }).count > 1 {
            let parent = item.0.deletingLastPathComponent().lastPathComponent
            names[i] = parent.isEmpty || parent == "/" ? item.1 : "\(parent)/\(item.1)"
        }
        var seen: [String: Int] = [:]
        return names.map { n in
            seen[n, default: 0] += 1
            return seen[n]! == 1 ? n : "\(n) #\(seen[n]!)"
        }
    }

    static func loadRun(_ url: URL, name: String) throws -> Run {
        let records = try MetricsLog.read(url.appendingPathComponent("metrics.jsonl"))
        var run = Run(name: name, url: url, records: records, config: [:], configFile: nil, results: [:])
        let fm = FileManager.default
        let jsonURL = url.appendingPathComponent("config.json"), yamlURL = url.appendingPathComponent("config.yaml")
        if fm.fileExists(atPath: jsonURL.path) {
            // JSON first: it keeps numbers' types exactly (YAML would read `1e-3` as a string).
            guard let data = try? Data(contentsOf: jsonURL),
                  let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
                throw TrainingError("\(jsonURL.path): not a JSON object")
            }
            run.config = flatten(obj); run.configFile = "config.json"
        } else if fm.fileExists(atPath: yamlURL.path) {
            let text = try UserTextFile.read(yamlURL, what: "configuration")
            let value: Any?
            do { value = try Yams.load(yaml: text) } catch { throw TrainingError("\(yamlURL.path): not valid YAML: \(error)") }
            guard let map = value as? [String: Any] else { throw TrainingError("\(yamlURL.path): not a mapping of options") }
            run.config = flatten(map); run.configFile = "config.yaml"
        }
        // Any other top-level JSON file is a result of the run (summary.json, base_before.json, eval.json, timing.json,
        // report.json, classify.json, …): tabulated as it is, so files added later appear without a change here.
        let names = ((try? fm.contentsOfDirectory(atPath: url.path)) ?? []).filter {
            $0.hasSuffix(".json") && !$0.hasPrefix(".") && $0 != "config.json"
        }
        for file in names.sorted() {
            let f = url.appendingPathComponent(file)
            guard let size = (try? fm.attributesOfItem(atPath: f.path))?[.size] as? NSNumber,
                  size.intValue <= resultFileLimit, let data = try? Data(contentsOf: f) else { continue }
            guard let obj = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else {
                run.results[file] = ["(file)": "not valid JSON"]
                continue
            }
            var flat = flatten(obj)
            if flat.count > resultRowLimit {
                let kept = flat.keys.sorted().prefix(resultRowLimit)
                flat = Dictionary(uniqueKeysWithValues: kept.map { ($0, flat[$0]!) })
                flat["…"] = "\(flatten(obj).count - resultRowLimit) more values not shown"
            }
            run.results[file] = flat
        }
        return run
    }

    static func loadSweep(_ folder: URL, _ trialsURL: URL) throws -> Sweep {
        // The same JSONL rules as metrics.jsonl: a torn last line (a sweep still running) is skipped, other damage named.
        let records = try MetricsLog.read(trialsURL)
        var metric: String? = nil, direction: String? = nil
        for name in ["sweep.json", "config.json"] {
            if let data = try? Data(contentsOf: folder.appendingPathComponent(name)),
               let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] {
                metric = metric ?? (obj["metric"] as? String)
                direction = direction ?? (obj["direction"] as? String) ?? (obj["mode"] as? String) ?? (obj["goal"] as? String)
            }
        }
        var trials: [Trial] = []
        for (i, r) in records.enumerated() {
            let id = r["trial"].map(scalarText) ?? r["id"].map(scalarText) ?? "\(i)"
            let value = number(r["value"]) ?? number(r["metric"]) ?? number(r["score"])
            if let m = r["metric"] as? String { metric = metric ?? m }
            direction = direction ?? (r["direction"] as? String) ?? (r["mode"] as? String)
            trials.append(Trial(id: id, params: flatten(r["params"] ?? [String: Any]()), value: value,
                                status: r["status"].map(scalarText) ?? "", rung: r["rung"].map(scalarText) ?? ""))
        }
        let lower = direction.map { ["min", "minimize", "minimise", "lower"].contains($0.lowercased()) }
            ?? lowerIsBetter(metric ?? "loss")
        // The last record of a trial is its latest state (a trial promoted to a higher rung is logged again).
        var latest: [String: Int] = [:]
        for (i, t) in trials.enumerated() { latest[t.id] = i }
        let unique = trials.enumerated().filter { latest[$0.element.id] == $0.offset }.map(\.element)
        let ranked = unique.filter { $0.value != nil }
            .sorted { lower ? $0.value! < $1.value! : $0.value! > $1.value! }
        return Sweep(name: folder.lastPathComponent, url: folder, metric: metric, lowerIsBetter: lower,
                     trials: ranked + unique.filter { $0.value == nil })
    }

    /// Losses, perplexities, errors and divergences fall as a run improves; accuracies, rewards and scores rise.
    static func lowerIsBetter(_ metric: String) -> Bool {
        let m = metric.lowercased()
        if ["acc", "reward", "f1", "match", "bleu", "rouge", "score", "margin"].contains(where: { m.contains($0) }) { return false }
        return true
    }

    // MARK: - What the page shows

    /// Every numeric metric key the runs log (not `step`): the curves `loss.svg` draws first, then the other
    /// evaluation metrics, then the rest (`lr`, `grad_norm`, `tokens_per_s`, …), each group alphabetical.
    public var metricKeys: [String] {
        var keys = Set<String>()
        for r in runs { for rec in r.records { for (k, v) in rec where k != "step" && Self.number(v) != nil { keys.insert(k) } } }
        func rank(_ k: String) -> Int {
            if let i = MetricsLog.chartKeys.firstIndex(of: k) { return i }
            return k.hasPrefix("eval_") ? 100 : 200
        }
        return keys.sorted { (rank($0), $0) < (rank($1), $1) }
    }

    /// One run's `(step, value)` points of a key.
    public func series(_ run: Run, key: String) -> [(x: Double, y: Double)] { MetricsLog.series(run.records, key: key) }

    /// The configuration keys of all runs, with each run's value (nil where a run lacks the key) and whether they differ.
    public var configRows: [(key: String, values: [String?], differs: Bool)] {
        let keys = Set(runs.flatMap(\.config.keys)).sorted()
        return keys.map { k in
            let values = runs.map { $0.config[k] }
            return (k, values, Set(values.map { $0 ?? "\u{0}missing" }).count > 1)
        }
    }

    /// The last logged value of every metric key per run (nil where a run never logged it).
    public var finalMetrics: [(key: String, values: [Double?])] {
        metricKeys.map { k in (k, runs.map { series($0, key: k).last?.y }) }
    }

    /// The result files any run has, each with its keys and every run's value.
    public var resultTables: [(file: String, rows: [(key: String, values: [String?])])] {
        let files = Set(runs.flatMap(\.results.keys)).sorted { (Self.resultOrder($0), $0) < (Self.resultOrder($1), $1) }
        return files.map { f in
            let keys = Set(runs.flatMap { $0.results[f]?.keys.map { $0 } ?? [] }).sorted()
            return (f, keys.map { k in (k, runs.map { $0.results[f]?[k] }) })
        }
    }

    static func resultOrder(_ file: String) -> Int {
        ["summary.json", "base_before.json", "eval.json"].firstIndex(of: file) ?? 10
    }

    // MARK: - Values as text

    /// A finite number from a JSON value (booleans are not numbers here).
    static func number(_ v: Any?) -> Double? {
        guard let n = v as? NSNumber, !isBool(n), n.doubleValue.isFinite else { return nil }
        return n.doubleValue
    }

    /// On Linux `NSNumber(1) is Bool` holds, so booleans are told apart by their stored type.
    static func isBool(_ n: NSNumber) -> Bool { ["c", "B"].contains(String(cString: n.objCType)) }

    /// A scalar as the configuration files spell it (`true`, `3`, `0.0003`, `q_proj`), lists as `[a, b]`.
    static func scalarText(_ v: Any) -> String {
        switch v {
        case let s as String: return s
        case is NSNull: return "null"
        case let n as NSNumber:
            if isBool(n) { return n.boolValue ? "true" : "false" }
            if ["f", "d"].contains(String(cString: n.objCType)) {
                let d = n.doubleValue
                return d == d.rounded() && abs(d) < 1e15 ? String(format: "%.1f", d) : "\(d)"
            }
            return n.stringValue
        case let a as [Any]: return "[" + a.map(scalarText).joined(separator: ", ") + "]"
        case let m as [String: Any]: return "{" + m.keys.sorted().map { "\($0): \(scalarText(m[$0]!))" }.joined(separator: ", ") + "}"
        default: return "\(v)"
        }
    }

    /// Nested objects become dotted keys (`a.b.c`); lists of objects are indexed by their `name` when they have one
    /// (`models.base.perplexity`), else by position (`items.0.x`); lists of scalars stay one value.
    public static func flatten(_ v: Any, prefix: String = "") -> [String: String] {
        func join(_ k: String) -> String { prefix.isEmpty ? k : "\(prefix).\(k)" }
        switch v {
        case let m as [String: Any]:
            var out: [String: String] = [:]
            for (k, x) in m { out.merge(flatten(x, prefix: join(k))) { a, _ in a } }
            return out
        case let a as [Any] where a.contains(where: { $0 is [String: Any] || $0 is [Any] }):
            var out: [String: String] = [:]
            for (i, x) in a.enumerated() {
                if var m = x as? [String: Any], let name = m.removeValue(forKey: "name") as? String {
                    out.merge(flatten(m, prefix: join(name))) { a, _ in a }
                } else {
                    out.merge(flatten(x, prefix: join("\(i)"))) { a, _ in a }
                }
            }
            return out
        default:
            let text = scalarText(v)
            return [prefix.isEmpty ? "(value)" : prefix: text.count > 300 ? String(text.prefix(300)) + "…" : text]
        }
    }
}
