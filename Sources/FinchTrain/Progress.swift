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
    private var start: (time: Double, step: Int, tokens: Int)?
    private var tokens = 0
    private var lineOpen = false

    /// - Parameters:
    ///   - total: steps of the run (for `step/total` and the ETA).
    ///   - every: plain-mode line interval in steps.
    ///   - write: where text goes (default: stderr, unbuffered).
    ///   - clock: seconds, monotonic (injectable for tests).
    public init(total: Int, mode: Mode = .auto, every: Int = 10,
                write: ((String) -> Void)? = nil, clock: (() -> Double)? = nil) {
        self.total = total
        self.every = max(1, every)
        if mode == .auto { self.mode = isatty(STDERR_FILENO) != 0 ? .terminal : .plain } else { self.mode = mode }
        self.write = write ?? { s in FileHandle.standardError.write(Data(s.utf8)) }
        self.clock = clock ?? { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }
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
            emit(line(step: step, loss: loss, lr: lr, rate: nil, eta: nil, extra: extra), step: step)
            return
        }
        let elapsed = max(now - s.time, 1e-9)
        let steps = step - s.step
        let rate = steps > 0 ? Double(tokens - s.tokens) / elapsed : nil
        let eta = steps > 0 ? elapsed / Double(steps) * Double(max(0, total - step)) : nil
        emit(line(step: step, loss: loss, lr: lr, rate: rate, eta: eta, extra: extra), step: step)
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

    private func emit(_ text: String, step: Int) {
        switch mode {
        case .quiet, .auto: return
        case .terminal:
            write("\r" + text + "\u{1B}[K")
            lineOpen = true
        case .plain:
            if step % every == 0 || step == total { write(text + "\n") }
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
