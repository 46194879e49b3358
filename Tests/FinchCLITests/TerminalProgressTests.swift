import XCTest
import FinchCLI
import FinchTrain

/// A trainer's progress events as the CLI renders them: rates measured by the library's reporter, lines drawn by
/// `TerminalProgress`.
final class TerminalProgressTests: XCTestCase {
    func testTerminalPlainAndQuiet() {
        var out = ""
        var now = 100.0
        let tty = TerminalProgress(mode: .terminal, write: { out += $0 }, columns: { nil })
        let p = ProgressReporter(sink: tty, totalSteps: 100, clock: { now })
        p.step(1, loss: 2.5, lr: 1e-4, tokens: 1000)
        now += 2
        p.step(3, loss: 2.25, lr: 2e-4, tokens: 2000, fields: [ProgressField("kl", "0.012")])
        XCTAssert(out.hasPrefix("\rstep 1/100 · loss 2.5000 · lr 1.00e-04"), out)
        XCTAssert(out.contains("\rstep 3/100 · loss 2.2500 · lr 2.00e-04 · 1.0k tok/s · kl 0.012 · ETA 1m37s\u{1B}[K"), out)
        XCTAssertFalse(out.contains("\n"))
        p.message("eval loss 2.1")
        XCTAssert(out.hasSuffix("\u{1B}[K\neval loss 2.1\n"), out)

        var plain = ""
        let lines = TerminalProgress(mode: .plain, every: 10, write: { plain += $0 })
        let q = ProgressReporter(sink: lines, totalSteps: 25, clock: { now })
        for s in 1...25 { now += 1; q.step(s, loss: 1, lr: 1, tokens: 10) }
        XCTAssertEqual(plain.split(separator: "\n").map { String($0.prefix(10)) }, ["step 10/25", "step 20/25", "step 25/25"])

        var quiet = "", reports = ""
        let silent = TerminalProgress(mode: .quiet, write: { quiet += $0 }, report: { reports += $0 })
        let r = ProgressReporter(sink: silent, totalSteps: 5)
        r.step(5, loss: 1, lr: 1); r.message("x"); r.done(step: 5, reason: "completed"); r.report("table")
        XCTAssertEqual(quiet, "")
        XCTAssertEqual(reports, "table", "reports (results) are printed even when progress is quiet")
        XCTAssertEqual(ProgressReporter.duration(3725), "1h02m")
        XCTAssertEqual(ProgressReporter.compact(4_560_000), "4.56M")
    }

    /// A line rewritten in place never reaches the terminal's width (it would wrap, and `\r` would then rewrite
    /// only its last row): extras go from the end first, then the rest is cut. A log line keeps every field.
    func testTerminalLineFitsTheWidth() {
        let extra = [("reward", "0.438"), ("kl", "0.051"), ("len", "5.8"), ("ent", "1.23"), ("clip", "0.000")].map { ProgressField($0.0, $0.1) }
        func lastLine(width: Int?) -> String {
            var out = ""
            var now = 0.0
            let tty = TerminalProgress(mode: .terminal, write: { out += $0 }, columns: { width })
            let p = ProgressReporter(sink: tty, totalSteps: 120, clock: { now })
            p.step(1, loss: 0.5, lr: 3e-4, tokens: 100, fields: extra)
            now += 1
            out = ""
            p.step(2, loss: 0.25, lr: 3e-4, tokens: 100, fields: extra)
            return String(out.dropFirst().dropLast(3))   // without "\r" and the erase escape
        }
        let full = lastLine(width: nil)
        XCTAssertEqual(full, "step 2/120 · loss 0.2500 · lr 3.00e-04 · 100 tok/s · reward 0.438 · kl 0.051 · len 5.8 · ent 1.23 · clip 0.000 · ETA 1m58s")
        XCTAssertEqual(lastLine(width: 200), full)
        for width in [20, 60, 80, 100, 120] {
            let line = lastLine(width: width)
            XCTAssertLessThan(line.count, width, line)
            if width >= 80 { XCTAssert(line.hasPrefix("step 2/120 · loss 0.2500") && line.hasSuffix("ETA 1m58s"), line) }
        }
        XCTAssertEqual(lastLine(width: 80), "step 2/120 · loss 0.2500 · lr 3.00e-04 · 100 tok/s · reward 0.438 · ETA 1m58s")
        var plain = ""
        let lines = TerminalProgress(mode: .plain, write: { plain += $0 }, columns: { 20 })
        ProgressReporter(sink: lines, totalSteps: 1, clock: { 0 }).step(1, loss: 1, lr: 1, fields: extra)
        XCTAssert(plain.contains("clip 0.000"), plain)
    }

    /// With `catchCtrlC`, the first SIGINT / SIGTERM is a stop request the trainer sees through the sink.
    func testFirstSignalIsAStopRequest() {
        let sink = TerminalProgress(mode: .quiet, catchCtrlC: true)
        XCTAssertFalse(sink.stopRequested)
        raise(SIGINT)   // delivered synchronously to this thread
        XCTAssertTrue(sink.stopRequested)
        StopSignal.reset()
        XCTAssertFalse(sink.stopRequested)
        raise(SIGTERM)
        XCTAssertTrue(sink.stopRequested)
        StopSignal.reset()
        XCTAssertFalse(TerminalProgress(mode: .quiet).stopRequested, "a sink that does not catch Ctrl-C never asks to stop")
    }
}
