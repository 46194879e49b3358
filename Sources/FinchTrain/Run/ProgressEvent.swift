import Foundation

/// What a trainer reports while it runs. Trainers send events to a `ProgressSink` the caller provides; they never
/// write to a terminal or install a signal handler (the CLI renders the events and turns Ctrl-C into a stop request).
public enum ProgressEvent: Sendable {
    /// A remark about the run (data counts, "resumed from …", a note on dropped records): the CLI shows it on stderr.
    case message(String)
    /// A result the user asked for (the end-of-run table, a classification report): the CLI prints it on stdout.
    case report(String)
    /// An optimizer step (PPO: an iteration) finished.
    case step(StepProgress)
    /// A held-out evaluation finished.
    case evaluation(EvaluationProgress)
    /// A checkpoint folder was written.
    case checkpoint(step: Int, folder: URL)
    /// PPO / RLOO: the rollouts of an iteration were sampled and scored.
    case rollout(RolloutProgress)
    /// The training loop ended (the final stage — evaluation after, `final/` — may follow).
    case done(DoneProgress)
}

/// One finished step: its figures and the run's rate so far.
public struct StepProgress: Sendable, Equatable {
    public var step: Int
    public var totalSteps: Int
    public var loss: Double
    public var lr: Double
    /// Tokens this step processed.
    public var tokens: Int
    /// Tokens per second since the clock started (nil for the step that started it).
    public var tokensPerSecond: Double?
    /// Seconds left at the rate so far (nil before a rate is known).
    public var etaSeconds: Double?
    /// Method-specific figures, already formatted (`("acc", "0.75")`, `("kl", "0.031")`), in display order.
    public var fields: [ProgressField]

    public init(step: Int, totalSteps: Int, loss: Double, lr: Double, tokens: Int, tokensPerSecond: Double?, etaSeconds: Double?,
                fields: [ProgressField] = []) {
        self.step = step; self.totalSteps = totalSteps; self.loss = loss; self.lr = lr; self.tokens = tokens
        self.tokensPerSecond = tokensPerSecond; self.etaSeconds = etaSeconds; self.fields = fields
    }
}

/// A named figure shown beside a step.
public struct ProgressField: Sendable, Equatable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) { self.name = name; self.value = value }
}

/// A held-out evaluation: its metrics (`eval_loss`, `eval_accuracy`, …), whether it was the best so far, and a line
/// describing it.
public struct EvaluationProgress: Sendable, Equatable {
    public var step: Int
    public var metrics: [String: Double]
    public var improved: Bool
    public var text: String
    public init(step: Int, metrics: [String: Double], improved: Bool, text: String) {
        self.step = step; self.metrics = metrics; self.improved = improved; self.text = text
    }
}

/// The rollouts of one PPO / RLOO iteration.
public struct RolloutProgress: Sendable, Equatable {
    public var iteration: Int
    public var responses: Int
    /// Sampled tokens (all responses) and the sampling time.
    public var newTokens: Int
    public var seconds: Double
    public var meanScore: Double
    public var tokensPerSecond: Double { seconds > 0 ? Double(newTokens) / seconds : 0 }
    public init(iteration: Int, responses: Int, newTokens: Int, seconds: Double, meanScore: Double) {
        self.iteration = iteration; self.responses = responses; self.newTokens = newTokens; self.seconds = seconds; self.meanScore = meanScore
    }
}

/// Why and where a training loop ended: "completed", "early-stop" or "interrupted".
public struct DoneProgress: Sendable, Equatable {
    public var step: Int
    public var totalSteps: Int
    public var reason: String
    public init(step: Int, totalSteps: Int, reason: String) { self.step = step; self.totalSteps = totalSteps; self.reason = reason }
}

/// Receives a run's events; a trainer checks `stopRequested` after every step and, when it is set, finishes that
/// step, writes a checkpoint and throws `TrainingInterrupted`.
public protocol ProgressSink: AnyObject {
    func receive(_ event: ProgressEvent)
    var stopRequested: Bool { get }
}

/// Drops every event and never stops: the default for library callers that do not watch.
public final class NoProgress: ProgressSink {
    public init() {}
    public func receive(_ event: ProgressEvent) {}
    public var stopRequested: Bool { false }
}

/// Keeps every event, and asks the run to stop once a step reaches `stopAfterStep`: for programs that drive runs
/// themselves and for tests (a stop request here is what Ctrl-C is in the CLI).
public final class ProgressRecorder: ProgressSink {
    public private(set) var events: [ProgressEvent] = []
    public var stopAfterStep: Int?
    private var stopped = false

    public init(stopAfterStep: Int? = nil) { self.stopAfterStep = stopAfterStep }

    public func receive(_ event: ProgressEvent) {
        events.append(event)
        if case .step(let s) = event, let n = stopAfterStep, s.step >= n { stopped = true }
    }

    public var stopRequested: Bool { stopped }

    /// The step events received, in order.
    public var steps: [StepProgress] { events.compactMap { if case .step(let s) = $0 { return s } else { return nil } } }
}
