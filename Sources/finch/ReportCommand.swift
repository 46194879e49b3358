import ArgumentParser
import Foundation
import FinchTrain

/// `finch report RUN... --out report.html`: several runs compared in one self-contained page (curves overlaid,
/// configurations side by side with the differences marked, evaluation results, a sweep's trials ranked).
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Compare runs in one self-contained HTML page (curves, configurations, evaluations, sweep trials).",
        discussion: """
        Each RUN is a run folder (metrics.jsonl, config.json or config.yaml, summary.json, …) or a sweep folder \
        (trials.jsonl and trials/<id>/). The page needs no server and no network: open it from disk. \
        report.html#chart=N shows chart N alone. Nothing in the run folders is changed.
        Example: finch report runs/sft-lora runs/sft-full --out runs/compare.html
        """)

    @Argument(help: "Run or sweep folders to compare.") var runs: [String]
    @Option(help: "The HTML file to write.") var out: String
    @Flag(help: "Replace --out if it exists.") var overwrite = false

    func run() throws {
        let report = try RunReport.load(runs.map { URL(fileURLWithPath: $0) })
        let url = URL(fileURLWithPath: out)
        try ReportHTML.write(ReportHTML.render(report), to: url, overwrite: overwrite)
        let differing = report.configRows.filter(\.differs).count
        print("wrote \(url.path): \(report.runs.count) run(s), \(report.metricKeys.count) chart(s), \(differing) configuration key(s) differ"
              + (report.sweeps.isEmpty ? "" : ", \(report.sweeps.map(\.trials.count).reduce(0, +)) sweep trial(s)"))
    }
}
