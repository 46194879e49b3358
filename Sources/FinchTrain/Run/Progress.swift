import Foundation

/// Progress reporting for a training run: on a terminal one line rewritten in place
/// (`step 120/1000 · loss 2.3456 · lr 3.00e-04 · 12.3k tok/s · ETA 4m12s`); in a log (not a TTY) a
/// plain line every `every` steps and at the last step; nothing at all when quiet.
///
/// Rates and the ETA are measured from the first `update` of this process, so a resumed run does not
/// count the steps done before it restarted.
public final class Progress {
    public enum Mode: Equatable, Sendable {
        /// `.terminal` if stderr is a TTY, else `.plain`.
        case auto
        /// One line rewritten in place with `\r` (and an erase-to-end escape).
        case terminal
        /// A full line every `every` steps.
        case plain
        /// No output.
        case quiet
    }

    public let total: Int
    public let mode: Mode
    public let every: Int
    private let write: (String) -> Void
    private let clock: () -> Double
    private let columns: () -> Int?
    private var start: (time: Double, step: Int, tokens: Int)?
    private var tokens = 0
    private var lineOpen = false

    /// - Parameters:
    ///   - total: steps of the run (for `step/total` and the ETA).
    ///   - every: plain-mode line interval in steps.
    ///   - write: where text goes (default: stderr, unbuffered).
    ///   - clock: seconds, monotonic (injectable for tests).
    ///   - columns: the terminal's width (default: stderr's window size; nil when unknown). A line rewritten in
    ///     place must not wrap, or `\r` returns to its last row only and the terminal fills with copies.
    public init(total: Int, mode: Mode = .auto, every: Int = 10,
                write: ((String) -> Void)? = nil, clock: (() -> Double)? = nil, columns: (() -> Int?)? = nil) {
        self.total = total
        self.every = max(1, every)
        if mode == .auto { self.mode = isatty(STDERR_FILENO) != 0 ? .terminal : .plain } else { self.mode = mode }
        self.write = write ?? { s in FileHandle.standardError.write(Data(s.utf8)) }
        self.clock = clock ?? { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }
        self.columns = columns ?? Self.terminalColumns
    }

    /// stderr's terminal width, or nil when it is not a terminal or reports none.
    static func terminalColumns() -> Int? {
        var size = winsize()
        guard ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return nil }
        return Int(size.ws_col)
    }

    /// Starts the clock just before the first step to be reported (after `step` steps), so that step has a rate too;
    /// without it the first report starts the clock.
    public func startClock(afterStep step: Int) {
        start = (clock(), step, tokens)
    }

    /// Reports that optimizer step `step` (1-based) finished.
    /// - Parameters:
    ///   - tokens: tokens processed by this step (for tokens/s).
    ///   - extra: further `name value` pairs to show (e.g. `("kl", "0.03")`).
    public func update(step: Int, loss: Double, lr: Double, tokens stepTokens: Int = 0, extra: [(String, String)] = []) {
        let now = clock()
        tokens += stepTokens
        guard let s = start else {
            // The first report only starts the clock (its duration is unknown).
            start = (now, step, tokens)
            emit(step: step, extras: extra.count) { self.line(step: step, loss: loss, lr: lr, rate: nil, eta: nil, extra: Array(extra.prefix($0))) }
            return
        }
        let elapsed = max(now - s.time, 1e-9)
        let steps = step - s.step
        let rate = steps > 0 ? Double(tokens - s.tokens) / elapsed : nil
        let eta = steps > 0 ? elapsed / Double(steps) * Double(max(0, total - step)) : nil
        emit(step: step, extras: extra.count) { self.line(step: step, loss: loss, lr: lr, rate: rate, eta: eta, extra: Array(extra.prefix($0))) }
    }

    /// Prints a message on its own line (ends the in-place line first on a terminal).
    public func message(_ text: String) {
        guard mode != .quiet else { return }
        if lineOpen { write("\n"); lineOpen = false }
        write(text + "\n")
    }

    /// Ends the in-place line (call once when the run ends).
    public func finish() {
        if lineOpen { write("\n"); lineOpen = false }
    }

    /// Tokens per second since the first update (nil before two updates).
    public var tokensPerSecond: Double? {
        guard let s = start else { return nil }
        let e = clock() - s.time
        return e > 0 ? Double(tokens - s.tokens) / e : nil
    }

    /// `render(n)` builds the line with the first `n` of `extras` extra fields. On a terminal the extras are
    /// dropped from the end until the line fits the width (step, loss, lr, rate and ETA stay, cut to the width if
    /// even they do not fit); a log line keeps everything.
    private func emit(step: Int, extras: Int, _ render: (Int) -> String) {
        switch mode {
        case .quiet, .auto: return
        case .terminal:
            var keep = extras
            var text = render(keep)
            if let width = columns(), width > 1 {
                while text.count >= width && keep > 0 { keep -= 1; text = render(keep) }
                if text.count >= width { text = String(text.prefix(width - 1)) }
            }
            write("\r" + text + "\u{1B}[K")
            lineOpen = true
        case .plain:
            if step % every == 0 || step == total { write(render(extras) + "\n") }
        }
    }

    func line(step: Int, loss: Double, lr: Double, rate: Double?, eta: Double?, extra: [(String, String)]) -> String {
        var parts = ["step \(step)/\(total)", "loss \(String(format: "%.4f", loss))", "lr \(String(format: "%.2e", lr))"]
        if let r = rate { parts.append("\(Self.compact(r)) tok/s") }
        for (k, v) in extra { parts.append("\(k) \(v)") }
        if let e = eta { parts.append("ETA \(Self.duration(e))") }
        return parts.joined(separator: " · ")
    }

    /// 950, 12.3k, 4.56M.
    public static func compact(_ v: Double) -> String {
        if v >= 1e6 { return String(format: "%.2fM", v / 1e6) }
        if v >= 1e3 { return String(format: "%.1fk", v / 1e3) }
        return String(format: "%.0f", v)
    }

    /// 42s, 4m12s, 3h05m.
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let s = Int(seconds.rounded())
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
        return "\(s / 3600)h\(String(format: "%02d", (s % 3600) / 60))m"
    }
}
