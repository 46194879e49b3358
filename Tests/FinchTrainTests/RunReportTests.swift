import XCTest
import Foundation
import FinchTrain

/// Run and sweep folders as the trainers write them: `metrics.jsonl` through `MetricsLog`, the configuration through
/// `Recipe.write(to:)`, result JSON files beside them.
enum ReportFixture {
    /// A run that logs training lines every step and an evaluation every 10 steps; `config` is added to a small
    /// configuration shared by all fixture runs.
    @discardableResult
    static func run(_ dir: URL, lr: Double, steps: Int = 40, config: [String: Any] = [:], ppo: Bool = false) throws -> URL {
        let folder = try RunFolder(url: dir)
        let log = try MetricsLog(url: folder.metricsURL)
        for s in 1...steps {
            let loss = 0.8 + 2.5 * exp(-Double(s) * lr * 100) + 0.05 * sin(Double(s))
            var r: [String: Any] = ["step": s, "loss": loss, "lr": lr, "grad_norm": 1.0 / Double(s), "tokens_per_s": 900.0 + Double(s)]
            if ppo { r["reward"] = 1 - loss / 4; r["kl"] = Double(s) * 0.01 }
            try log.append(r)
            if s % 10 == 0 { try log.append(["step": s, "eval_loss": loss + 0.2, "eval_ppl": exp(loss + 0.2)]) }
        }
        var values: [String: Any] = ["lr": lr, "method": "lora", "lora-r": 8, "seq-len": 128, "template": "chatml",
                                     "lora-targets": ["q_proj", "v_proj"]]
        for (k, v) in config { values[k] = v }
        try Recipe(defaults: values).write(to: folder)
        let summary: [String: Any] = ["final_loss": 0.9, "steps": steps, "end_reason": "completed"]
        try JSONSerialization.data(withJSONObject: summary).write(to: dir.appendingPathComponent("summary.json"))
        return dir
    }

    /// A sweep folder: `trials.jsonl` (ids, params, metric values, status, rung) and a run folder per finished trial.
    static func sweep(_ dir: URL) throws -> URL {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let trials: [[String: Any]] = [
            ["trial": "t0", "params": ["lr": 1e-3, "lora-r": 8], "metric": "eval_loss", "value": 1.7, "status": "completed", "rung": 1],
            ["trial": "t1", "params": ["lr": 3e-3, "lora-r": 16], "metric": "eval_loss", "value": 1.2, "status": "completed", "rung": 1],
            ["trial": "t2", "params": ["lr": 1e-2, "lora-r": 4], "metric": "eval_loss", "status": "pruned", "rung": 0],
            ["trial": "t3", "params": ["lr": 2e-3, "lora-r": 8], "metric": "eval_loss", "value": 1.5, "status": "completed", "rung": 1],
        ]
        let lines = try trials.map { String(decoding: try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]), as: UTF8.self) }
        try (lines.joined(separator: "\n") + "\n").write(to: dir.appendingPathComponent("trials.jsonl"), atomically: true, encoding: .utf8)
        for (id, lr) in [("t0", 1e-3), ("t1", 3e-3), ("t3", 2e-3)] {
            try run(dir.appendingPathComponent("trials/\(id)"), lr: lr, steps: 20)
        }
        return dir
    }

    /// Two runs that differ in `lr` and `lora-r`, the second with a configuration value that needs escaping.
    static func pair(in dir: URL) throws -> [URL] {
        [try run(dir.appendingPathComponent("lora-r8"), lr: 1e-3),
         try run(dir.appendingPathComponent("lora-r16"), lr: 3e-3, config: ["lora-r": 16, "note": "<script>alert('x') & \"y\"</script>"])]
    }
}

final class RunReportTests: XCTestCase {
    func testThePageShowsEveryRunAChartPerKeyAndTheConfigurationDifferences() throws {
        let dir = try TrainerFixture.tempDir()
        let report = try RunReport.load(try ReportFixture.pair(in: dir))
        XCTAssertEqual(report.runs.map(\.name), ["lora-r8", "lora-r16"])
        XCTAssertEqual(report.metricKeys, ["loss", "eval_loss", "eval_ppl", "grad_norm", "lr", "tokens_per_s"])
        let html = ReportHTML.render(report)
        for name in ["lora-r8", "lora-r16"] { XCTAssert(html.contains(">\(name)</th>"), "no column for \(name)") }
        for (i, key) in report.metricKeys.enumerated() {
            XCTAssert(html.contains("<figure class=\"chart\" id=\"chart-\(i + 1)\" data-index=\"\(i)\" data-key=\"\(key)\">"), "no chart for \(key)")
        }
        XCTAssertEqual(html.components(separatedBy: "<figure class=\"chart\"").count - 1, 6)
        // Each run is a line in each chart (loss: 40 points per run) with its legend entry.
        let loss = try XCTUnwrap(html.components(separatedBy: "id=\"chart-1\"").last?.components(separatedBy: "</figure>").first)
        XCTAssertEqual(loss.components(separatedBy: "<polyline").count - 1, 2)
        XCTAssert(loss.contains("<div class=\"legend\"><span><i style=\"background:#1f77b4\"></i>lora-r8</span><span><i style=\"background:#d62728\"></i>lora-r16</span></div>"))
        XCTAssert(loss.contains("stroke=\"#1f77b4\"") && loss.contains("stroke=\"#d62728\""))

        // lr, lora-r and note differ; method, seq-len, template and the target list agree.
        let rows = Dictionary(uniqueKeysWithValues: report.configRows.map { ($0.key, $0) })
        XCTAssertEqual(rows["lr"]?.values, ["0.001", "0.003"])
        XCTAssertEqual(rows["lora-targets"]?.values, ["[q_proj, v_proj]", "[q_proj, v_proj]"])
        XCTAssertEqual(Set(report.configRows.filter(\.differs).map(\.key)), ["lr", "lora-r", "note"])
        XCTAssert(html.contains("<tr class=\"diff\"><th scope=\"row\">lr <span class=\"differs\">differs</span></th><td>0.001</td><td>0.003</td></tr>"))
        XCTAssert(html.contains("<tr><th scope=\"row\">method</th><td>lora</td><td>lora</td></tr>"))
        XCTAssert(html.contains("<td class=\"missing\">–</td>"), "the first run has no 'note': shown as missing")
        XCTAssert(html.contains("<strong>3 differ</strong>"))

        // Evaluation: the last value of each metric and summary.json.
        XCTAssert(html.contains("<h3>summary.json</h3>"))
        XCTAssert(html.contains("<tr><th scope=\"row\">end_reason</th><td>completed</td><td>completed</td></tr>"))
        XCTAssertEqual(report.finalMetrics.first { $0.key == "eval_loss" }?.values.count, 2)
        XCTAssertFalse(html.contains("id=\"sweeps\""), "no sweep given: no sweep section")
    }

    func testTextFromTheFoldersIsEscapedAndThePageNeedsNoNetwork() throws {
        let dir = try TrainerFixture.tempDir()
        var runs = try ReportFixture.pair(in: dir)
        runs.append(try ReportFixture.run(dir.appendingPathComponent("a<b>&c"), lr: 2e-3))
        let html = ReportHTML.render(try RunReport.load(runs))
        XCTAssert(html.contains("&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"))
        XCTAssertFalse(html.contains("alert('x')"), "a configuration value reached the page unescaped")
        XCTAssert(html.contains(">a&lt;b&gt;&amp;c</th>"))
        XCTAssertFalse(html.contains("a<b>&c"))
        // The chart data in the page's JSON cannot close its script element.
        let data = try XCTUnwrap(html.components(separatedBy: "id=\"finch-data\">").last?.components(separatedBy: "</script>").first)
        XCTAssertFalse(data.contains("<"))
        XCTAssert(data.contains("a\\u003cb>\\u0026c"))
        // Self-contained: exactly one inline style, no external scripts, styles, fonts, images or links.
        XCTAssertFalse(html.contains("http://") || html.contains("https://"), "the page refers to the network")
        for pattern in ["src=", "<link", "@import", "url(", "@font-face"] { XCTAssertFalse(html.contains(pattern), pattern) }
        XCTAssertEqual(html.components(separatedBy: "<style>").count - 1, 1)
        for href in html.components(separatedBy: "href=\"").dropFirst() { XCTAssert(href.hasPrefix("#chart="), String(href.prefix(40))) }
    }

    func testEqualFolderNamesAreToldApart() throws {
        let dir = try TrainerFixture.tempDir()
        let a = try ReportFixture.run(dir.appendingPathComponent("a/sft"), lr: 1e-3)
        let b = try ReportFixture.run(dir.appendingPathComponent("b/sft"), lr: 1e-3)
        let c = try ReportFixture.run(dir.appendingPathComponent("c"), lr: 1e-3)
        XCTAssertEqual(try RunReport.load([a, b, c]).runs.map(\.name), ["a/sft", "b/sft", "c"])
        XCTAssertEqual(try RunReport.load([a, URL(fileURLWithPath: a.path + "/")]).runs.map(\.name), ["a/sft", "a/sft #2"])
    }

    func testASweepFolderRanksItsTrialsAndAddsTheirRuns() throws {
        let dir = try TrainerFixture.tempDir()
        let sweep = try ReportFixture.sweep(dir.appendingPathComponent("lr-sweep"))
        // A torn last line (the sweep is still writing) is left out, as in metrics.jsonl.
        let handle = try FileHandle(forWritingTo: sweep.appendingPathComponent("trials.jsonl"))
        handle.seekToEndOfFile(); handle.write(Data("{\"trial\": \"t4\", \"par".utf8)); try handle.close()
        let report = try RunReport.load([sweep])
        let s = try XCTUnwrap(report.sweeps.first)
        XCTAssertEqual(s.metric, "eval_loss")
        XCTAssertTrue(s.lowerIsBetter)
        XCTAssertEqual(s.trials.map(\.id), ["t1", "t3", "t0", "t2"], "ranked by eval_loss, lowest first; no value last")
        XCTAssertEqual(s.trials[0].params, ["lr": "0.003", "lora-r": "16"])
        XCTAssertEqual(report.runs.map(\.name), ["lr-sweep/t1", "lr-sweep/t3", "lr-sweep/t0"])
        let html = ReportHTML.render(report)
        XCTAssert(html.contains("ranked by eval_loss, lowest first"))
        XCTAssert(html.contains("<tr class=\"best\"><td class=\"num\">1</td><td>t1</td><td class=\"num\">1.2</td><td>completed</td><td>1</td><td>16</td><td>0.003</td></tr>"))
        XCTAssert(html.contains("<td>t2</td><td class=\"num\">–</td><td>pruned</td>"))

        // Accuracy-like metrics rank highest first; a sweep without trial folders still shows its table.
        let other = dir.appendingPathComponent("acc-sweep")
        try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
        try "{\"trial\": 1, \"params\": {\"lr\": 0.1}, \"metric\": \"eval_accuracy\", \"value\": 0.5, \"status\": \"completed\", \"rung\": 0}\n{\"trial\": 2, \"params\": {\"lr\": 0.2}, \"metric\": \"eval_accuracy\", \"value\": 0.7, \"status\": \"completed\", \"rung\": 0}\n"
            .write(to: other.appendingPathComponent("trials.jsonl"), atomically: true, encoding: .utf8)
        let acc = try RunReport.load([other])
        XCTAssertEqual(acc.sweeps.first?.trials.map(\.id), ["2", "1"])
        XCTAssert(acc.runs.isEmpty)
        XCTAssert(ReportHTML.render(acc).contains("highest first"))
    }

    func testAYAMLOnlyConfigurationIsFlattenedAndResultFilesAreTabulated() throws {
        let dir = try TrainerFixture.tempDir()
        let run = try ReportFixture.run(dir.appendingPathComponent("yaml"), lr: 1e-3)
        try FileManager.default.removeItem(at: run.appendingPathComponent("config.json"))
        try "lr: 1.0e-03\nmodel:\n  flavour: llama\n  rope:\n    theta: 10000\n".write(to: run.appendingPathComponent("config.yaml"), atomically: true, encoding: .utf8)
        try "{\"loss\": 2.5, \"perplexity\": 12.2, \"tokens\": 900}".write(to: run.appendingPathComponent("base_before.json"), atomically: true, encoding: .utf8)
        let loaded = try XCTUnwrap(RunReport.load([run]).runs.first)
        XCTAssertEqual(loaded.configFile, "config.yaml")
        XCTAssertEqual(loaded.config, ["lr": "0.001", "model.flavour": "llama", "model.rope.theta": "10000"])
        XCTAssertEqual(loaded.results["base_before.json"], ["loss": "2.5", "perplexity": "12.2", "tokens": "900"])
        XCTAssertEqual(RunReport.flatten(["models": [["name": "base", "f1": 0.5], ["name": "lora", "f1": 0.6]]]),
                       ["models.base.f1": "0.5", "models.lora.f1": "0.6"])
    }

    func testBadInputIsRefusedWithAClearError() throws {
        let dir = try TrainerFixture.tempDir()
        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "no error" } catch { return "\(error)" }
        }
        let missing = dir.appendingPathComponent("nothing-here")
        XCTAssertEqual(message { _ = try RunReport.load([missing]) }, "\(missing.path): no such folder")
        let empty = dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        XCTAssert(message { _ = try RunReport.load([empty]) }.contains("\(empty.path) is not a run folder (no metrics.jsonl)"))
        let good = try ReportFixture.run(dir.appendingPathComponent("good"), lr: 1e-3)
        let bad = try ReportFixture.run(dir.appendingPathComponent("bad"), lr: 1e-3, steps: 3)
        var lines = try String(contentsOf: bad.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
        lines[1] = "{\"step\": 2, \"loss\": 1.5"
        try (lines.joined(separator: "\n") + "\n").write(to: bad.appendingPathComponent("metrics.jsonl"), atomically: true, encoding: .utf8)
        XCTAssertEqual(message { _ = try RunReport.load([good, bad]) }, "\(bad.path)/metrics.jsonl:2: not a JSON object")
        XCTAssertEqual(message { _ = try RunReport.load([]) }, "give at least one run folder")

        // --out: refused when it exists unless --overwrite; written through a temporary name.
        let out = dir.appendingPathComponent("report.html")
        try "old".write(to: out, atomically: true, encoding: .utf8)
        let html = ReportHTML.render(try RunReport.load([good]))
        XCTAssertEqual(message { try ReportHTML.write(html, to: out, overwrite: false) },
                       "--out \(out.path) already exists: give --overwrite to replace it, or another --out")
        XCTAssertEqual(try String(contentsOf: out, encoding: .utf8), "old")
        try ReportHTML.write(html, to: out, overwrite: true)
        XCTAssertEqual(try String(contentsOf: out, encoding: .utf8), html)
        XCTAssert(message { try ReportHTML.write(html, to: dir, overwrite: true) }.contains("is a folder"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains(".tmp-") }, [])
    }

    func testTheRunFoldersAreLeftAsTheyWere() throws {
        let dir = try TrainerFixture.tempDir()
        let runs = try ReportFixture.pair(in: dir)
        func snapshot() throws -> [String: Data] {
            var out: [String: Data] = [:]
            for run in runs {
                for name in try FileManager.default.contentsOfDirectory(atPath: run.path) where !name.hasPrefix("checkpoints") {
                    out[run.lastPathComponent + "/" + name] = try Data(contentsOf: run.appendingPathComponent(name))
                }
            }
            return out
        }
        let before = try snapshot()
        try ReportHTML.write(ReportHTML.render(try RunReport.load(runs)), to: dir.appendingPathComponent("r.html"), overwrite: false)
        XCTAssertEqual(try snapshot(), before)
    }

    func testPPOKeysGetChartsAndLossSVGIsDrawnAsBefore() throws {
        let dir = try TrainerFixture.tempDir()
        let run = try ReportFixture.run(dir.appendingPathComponent("ppo"), lr: 1e-3, steps: 12, ppo: true)
        let report = try RunReport.load([run])
        XCTAssertEqual(Array(report.metricKeys.prefix(4)), ["loss", "eval_loss", "reward", "kl"])
        // loss.svg keeps its legend where it was for its own short series names.
        let svg = LossCurve.svg(LossCurve.panels(fromMetrics: report.runs[0].records))
        XCTAssert(svg.contains("<line x1=\"630.0\" y1=\"38.0\" x2=\"650.0\""), "loss.svg's legend moved")
    }
}
