import Foundation

/// A trainer's side of progress: measures tokens per second and the time left from a monotonic clock, and sends
/// typed events to the caller's sink. Rates count from the first step of this process (or `startClock`), so a
/// resumed run does not count the steps done before it restarted.
public final class ProgressReporter {
    public let sink: any ProgressSink
    /// Steps of the run (for the ETA and `step/total`); trainers set it once they know it.
    public var totalSteps: Int
    private let clock: () -> Double
    private var start: (time: Double, step: Int, tokens: Int)?
    private var tokens = 0

    /// - Parameter clock: seconds, monotonic (injectable for tests).
    public init(sink: any ProgressSink = NoProgress(), totalSteps: Int = 0, clock: (() -> Double)? = nil) {
        self.sink = sink
        self.totalSteps = totalSteps
        self.clock = clock ?? { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }
    }

    /// Whether the caller asked the run to stop (Ctrl-C in the CLI).
    public var stopRequested: Bool { sink.stopRequested }

    /// Starts the clock just before the first step to be reported (after `step` steps), so that step has a rate too;
    /// without it the first report starts the clock.
    public func startClock(afterStep step: Int) {
        start = (clock(), step, tokens)
    }

    /// Reports that step `step` (1-based) finished, having processed `tokens` tokens.
    public func step(_ step: Int, loss: Double, lr: Double, tokens stepTokens: Int = 0, fields: [ProgressField] = []) {
        let now = clock()
        tokens += stepTokens
        var rate: Double? = nil, eta: Double? = nil
        if let s = start {
            let elapsed = max(now - s.time, 1e-9)
            let steps = step - s.step
            if steps > 0 {
                rate = Double(tokens - s.tokens) / elapsed
                eta = elapsed / Double(steps) * Double(max(0, totalSteps - step))
            }
        } else {
            start = (now, step, tokens)   // the first report only starts the clock (its duration is unknown)
        }
        sink.receive(.step(StepProgress(step: step, totalSteps: totalSteps, loss: loss, lr: lr, tokens: stepTokens,
                                        tokensPerSecond: rate, etaSeconds: eta, fields: fields)))
    }

    /// Tokens per second since the clock started (nil before two reports).
    public var tokensPerSecond: Double? {
        guard let s = start else { return nil }
        let e = clock() - s.time
        return e > 0 ? Double(tokens - s.tokens) / e : nil
    }

    public func message(_ text: String) { sink.receive(.message(text)) }
    public func report(_ text: String) { sink.receive(.report(text)) }
    public func evaluation(_ e: EvaluationProgress) { sink.receive(.evaluation(e)) }
    public func checkpoint(step: Int, folder: URL) { sink.receive(.checkpoint(step: step, folder: folder)) }
    public func rollout(_ r: RolloutProgress) { sink.receive(.rollout(r)) }
    public func done(step: Int, reason: String) { sink.receive(.done(DoneProgress(step: step, totalSteps: totalSteps, reason: reason))) }

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
