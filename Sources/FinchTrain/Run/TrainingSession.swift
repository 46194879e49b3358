import Foundation
import FinchKernels
import FinchModel
import FinchDistributed

/// The objective-independent half of a training run, for any trainer (causal LM, reward model, DPO, PPO):
/// run folder, AdamW over named groups + LR schedule, trainer state (step, RNG, cursors, best eval,
/// patience), metrics.jsonl + loss.svg, progress events, periodic / best checkpoints and exact resume.
///
/// A trainer computes gradients its own way, then calls `step(gradients:)`; `evaluated(...)` after an
/// evaluation; `checkpoint(...)` when `shouldCheckpoint`; `resume(from:)` before the loop.
public final class TrainingSession {
    public let run: RunFolder
    /// The run's metrics log, opened on first use. Only the writing rank opens it: every rank opening the same file
    /// at start raced rank 0 (see `MetricsLog.init`).
    public var metrics: MetricsLog {
        get throws {
            if let m = openMetrics { return m }
            let m = try MetricsLog(url: run.metricsURL)
            openMetrics = m
            return m
        }
    }
    private var openMetrics: MetricsLog?
    public let optimizer: AdamWOptimizer
    public let schedule: LRSchedule
    /// Where the run's events go (the caller's sink) and its rate.
    public let progress: ProgressReporter
    /// Step, epoch, RNG, cursors, best eval, patience; saved in every checkpoint.
    public var state: TrainingState
    /// The live trainable tensors by name (looked up at save/restore time, so the set may grow).
    public let parameters: () -> [String: Tensor]
    /// Writes extra files (a usable model or adapter) into `best/` (periodic checkpoints hold the trainable
    /// tensors only).
    public var writeModel: ((URL) throws -> Void)?
    /// Periodic checkpoint interval (0 = none) and how many to keep.
    public var checkpointEvery = 0
    public var keepCheckpoints = 2
    /// False on the ranks of a data-parallel run other than 0: they compute every step but write nothing (no metrics,
    /// curve, checkpoints or best/), so the run folder is written once.
    public var isWriter = true
    private var lastCurve = Date.distantPast

    public init(run: RunFolder, parameters: @escaping () -> [String: Tensor], groups: [ParameterGroup],
                settings: AdamWSettings, schedule: LRSchedule, seed: UInt64, progress: ProgressReporter) throws {
        self.run = run
        self.parameters = parameters
        isWriter = World.current.isWriter
        if isWriter { openMetrics = try MetricsLog(url: run.metricsURL) }
        self.optimizer = try AdamWOptimizer(parameters: parameters(), groups: groups, settings: settings)
        self.schedule = schedule
        self.progress = progress
        self.state = TrainingState(seed: seed)
    }

    /// The rate of the next optimizer step.
    public var currentLR: Double { schedule.lr(at: state.step) }

    /// One optimizer step (clipping + AdamW at the scheduled rate); advances `state.step`.
    @discardableResult
    public func step(gradients: [String: Tensor]) throws -> AdamWOptimizer.StepReport {
        let report = try optimizer.step(gradients: gradients, lr: currentLR)
        state.step += 1
        return report
    }

    /// Appends a metrics record (with `step`) and refreshes loss.svg at most every few seconds.
    public func log(_ record: [String: Any], forceCurve: Bool = false) throws {
        guard isWriter else { return }
        var r = record
        if r["step"] == nil { r["step"] = state.step }
        try metrics.append(r)
        if forceCurve || Date().timeIntervalSince(lastCurve) > 5 { try writeLossCurve() }
    }

    /// Redraws loss.svg from metrics.jsonl.
    public func writeLossCurve() throws {
        guard isWriter else { return }
        try LossCurve.write(LossCurve.panels(fromMetrics: try MetricsLog.read(run.metricsURL)), to: run.lossCurveURL)
        lastCurve = Date()
    }

    /// Records an evaluation loss (best / patience) and writes `best/` when it improved and `saveBest`.
    /// Returns whether it improved.
    @discardableResult
    public func evaluated(loss: Double, saveBest: Bool) throws -> Bool {
        let improved = state.recordEvaluation(loss: loss)
        if improved && saveBest {
            // Every rank decides alike (the same loss), so under ZeRO-1 all take part in bringing the moments.
            try fetchOptimizerState?(isWriter)
            defer { optimizer.releaseForeignMoments() }
            if isWriter {
                try run.writeBest { folder in
                    try self.writeCheckpoint(into: folder)
                    try self.writeModel?(folder)
                }
            }
        }
        return improved
    }

    /// ZeRO-1: brings the moments other ranks own before a checkpoint or `best/` is written (a collective every rank
    /// calls; the argument says whether this rank keeps them to write). nil without sharding.
    public var fetchOptimizerState: ((Bool) throws -> Void)?
    /// The step of the last checkpoint this process wrote or resumed from: ranks that do not write decide from it, as
    /// the writer does, whether a final checkpoint is due (the folder may not show the writer's yet).
    public private(set) var lastCheckpointStep: Int?

    /// Whether a periodic checkpoint is due after the current step.
    public var shouldCheckpoint: Bool { checkpointEvery > 0 && state.step % checkpointEvery == 0 }

    /// Writes `checkpoints/step-N` (atomically) and prunes old ones.
    @discardableResult
    public func checkpoint() throws -> URL {
        lastCheckpointStep = state.step
        try fetchOptimizerState?(isWriter)
        defer { optimizer.releaseForeignMoments() }
        guard isWriter else { return run.checkpointURL(step: state.step) }
        let folder = try run.writeCheckpoint(step: state.step, keepLast: keepCheckpoints) { try self.writeCheckpoint(into: $0) }
        progress.checkpoint(step: state.step, folder: folder)
        return folder
    }

    /// Fills a checkpoint folder: trainable tensors, optimizer state, trainer state.
    public func writeCheckpoint(into folder: URL) throws {
        state.metricsRecords = try metrics.recordCount
        try Checkpoint.write(to: folder, parameters: parameters(), optimizer: optimizer, state: state)
    }

    /// Restores weights, optimizer and state from a checkpoint folder and drops metrics lines logged after it.
    /// Call after making every tensor the checkpoint holds trainable (see `Checkpoint.state(at:)`).
    public func resume(from folder: URL) throws {
        state = try Checkpoint.restore(from: folder, into: parameters(), optimizer: optimizer)
        lastCheckpointStep = state.step
        guard isWriter else { return }
        if let n = state.metricsRecords {
            try MetricsLog.truncate(run.metricsURL, keepingFirst: n)
        } else {
            try MetricsLog.truncate(run.metricsURL, afterStep: state.step)
        }
        openMetrics = try MetricsLog(url: run.metricsURL)   // truncate replaced the file: reopen it
    }

    /// `--resume` with no checkpoint in the run folder (killed before the first one): the run starts from step 0,
    /// so whatever the interrupted run logged is dropped (else its records would repeat).
    public func startFresh() throws {
        guard isWriter else { return }
        try MetricsLog.truncate(run.metricsURL, keepingFirst: 0)
        openMetrics = try MetricsLog(url: run.metricsURL)
    }
}
