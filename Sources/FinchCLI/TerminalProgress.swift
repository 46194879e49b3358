import Foundation
import FinchTrain

/// Renders a run's progress events for a person: on a terminal one line rewritten in place
/// (`step 120/1000 · loss 2.3456 · lr 3.00e-04 · 12.3k tok/s · ETA 4m12s`); in a log (not a TTY) a plain line every
/// `every` steps and at the last step; nothing at all when quiet. Remarks go to stderr, reports (tables, results) to
/// stdout. With `catchCtrlC`, the first Ctrl-C (or SIGTERM) becomes a stop request: the trainer finishes its step,
/// writes a checkpoint and stops; a second one exits at once (status 130).
public final class TerminalProgress: ProgressSink {
    public enum Mode: Equatable, Sendable {
        /// `.terminal` if stderr is a TTY, else `.plain`.
        case auto
        /// One line rewritten in place with `\r` (and an erase-to-end escape).
        case terminal
        /// A full line every `every` steps.
        case plain
        /// No progress lines or remarks (reports still go to `report`).
        case quiet
    }

    public let mode: Mode
    public let every: Int
    private let write: (String) -> Void
    private let writeReport: (String) -> Void
    private let columns: () -> Int?
    private let catchesCtrlC: Bool
    private var lineOpen = false

    /// - Parameters:
    ///   - every: plain-mode line interval in steps.
    ///   - catchCtrlC: install the SIGINT / SIGTERM handler now (removed when this object goes away).
    ///   - write: where progress lines and remarks go (default: stderr, unbuffered).
    ///   - report: where reports go (default: stdout).
    ///   - columns: the terminal's width (default: stderr's window size; nil when unknown). A line rewritten in
    ///     place must not wrap, or `\r` returns to its last row only and the terminal fills with copies.
    public init(mode: Mode = .auto, every: Int = 10, catchCtrlC: Bool = false, write: ((String) -> Void)? = nil,
                report: ((String) -> Void)? = nil, columns: (() -> Int?)? = nil) {
        self.every = max(1, every)
        if mode == .auto { self.mode = isatty(STDERR_FILENO) != 0 ? .terminal : .plain } else { self.mode = mode }
        self.write = write ?? { s in FileHandle.standardError.write(Data(s.utf8)) }
        self.writeReport = report ?? { s in print(s) }
        self.columns = columns ?? Self.terminalColumns
        catchesCtrlC = catchCtrlC
        if catchCtrlC { StopSignal.install() }
    }

    deinit { if catchesCtrlC { StopSignal.uninstall() } }

    public var stopRequested: Bool { catchesCtrlC && StopSignal.requested }

    public func receive(_ event: ProgressEvent) {
        switch event {
        case .message(let text): message(text)
        case .report(let text):
            endLine()
            writeReport(text)
        case .step(let s): step(s)
        case .evaluation(let e): message(e.text)
        case .checkpoint, .rollout: break
        case .done: endLine()
        }
    }

    /// stderr's terminal width, or nil when it is not a terminal or reports none.
    static func terminalColumns() -> Int? {
        var size = winsize()
        guard ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return nil }
        return Int(size.ws_col)
    }

    /// A remark on its own line (ends the in-place line first on a terminal).
    func message(_ text: String) {
        guard mode != .quiet else { return }
        endLine()
        write(text + "\n")
    }

    func endLine() {
        if lineOpen { write("\n"); lineOpen = false }
    }

    /// On a terminal the extra fields are dropped from the end until the line fits the width (step, loss, lr, rate
    /// and ETA stay, cut to the width if even they do not fit); a log line keeps everything.
    func step(_ s: StepProgress) {
        switch mode {
        case .quiet, .auto: return
        case .terminal:
            var keep = s.fields.count
            var text = Self.line(s, fields: keep)
            if let width = columns(), width > 1 {
                while text.count >= width && keep > 0 { keep -= 1; text = Self.line(s, fields: keep) }
            }
            rewrite(text)
        case .plain:
            if s.step % every == 0 || s.step == s.totalSteps { write(Self.line(s, fields: s.fields.count) + "\n") }
        }
    }

    /// A status line for work that is not a training step (`finch critique`, `finch synthesize`): rewritten in place
    /// on a terminal, nothing in a log or when quiet (the command prints its summary at the end).
    public func status(_ text: String) {
        if mode == .terminal { rewrite(text) }
    }

    /// Rewrites the in-place line, cut to the terminal's width so it cannot wrap.
    private func rewrite(_ text: String) {
        var text = text
        if let width = columns(), width > 1, text.count >= width { text = String(text.prefix(width - 1)) }
        write("\r" + text + "\u{1B}[K")
        lineOpen = true
    }

    /// `step 3/10 · loss 2.3456 · lr 3.00e-04 · 950 tok/s · kl 0.03 · ETA 42s` with the first `fields` extras.
    static func line(_ s: StepProgress, fields: Int) -> String {
        var parts = ["step \(s.step)/\(s.totalSteps)", "loss \(String(format: "%.4f", s.loss))", "lr \(String(format: "%.2e", s.lr))"]
        if let r = s.tokensPerSecond { parts.append("\(ProgressReporter.compact(r)) tok/s") }
        for f in s.fields.prefix(fields) { parts.append("\(f.name) \(f.value)") }
        if let e = s.etaSeconds { parts.append("ETA \(ProgressReporter.duration(e))") }
        return parts.joined(separator: " · ")
    }
}
