import Foundation
import FinchModel

/// Everything besides weights and optimizer moments that an exact resume needs, saved as
/// `trainer_state.json` in each checkpoint folder.
///
/// `step` counts optimizer steps; it is also the schedule position (`LRSchedule.lr(at: step)` is the
/// rate of the next step). The data cursor is opaque here: the data loader encodes its own cursor
/// type with `JSONValue(encoding:)` and decodes it back with `decode(_:)`.
public struct TrainingState: Codable, Equatable, Sendable {
    /// Optimizer steps completed.
    public var step: Int
    /// Epochs completed (the current epoch is `epoch` while inside it).
    public var epoch: Int
    /// Micro-batches consumed in total (for logs; the cursor is what resumes the data).
    public var microBatches: Int
    /// Trained (loss-carrying) tokens seen so far.
    public var tokensSeen: Int
    /// The data loader's resumable position.
    public var dataCursor: JSONValue?
    /// The trainer's random stream (dropout, sampling) as it is after `step`.
    public var rng: SeededRNG
    /// Best evaluation loss so far and its step.
    public var bestEvalLoss: Double?
    public var bestStep: Int?
    /// Evaluations in a row without improvement (early stopping).
    public var patienceCounter: Int
    /// Method-specific extras (e.g. the PPO KL controller, the unfrozen-block count).
    public var extras: [String: JSONValue]
    /// Records in metrics.jsonl when this state was saved: a resume keeps exactly these (records logged at the
    /// checkpoint's step but after it, e.g. a final evaluation, are dropped and redone). nil in older checkpoints.
    public var metricsRecords: Int?

    public init(seed: UInt64) {
        step = 0; epoch = 0; microBatches = 0; tokensSeen = 0
        dataCursor = nil
        rng = SeededRNG(seed: seed)
        bestEvalLoss = nil; bestStep = nil
        patienceCounter = 0
        extras = [:]
        metricsRecords = nil
    }

    /// Records an evaluation; returns true when `loss` is a new best (and resets patience), else
    /// increments the patience counter. A non-finite loss never counts as best.
    @discardableResult
    public mutating func recordEvaluation(loss: Double, minDelta: Double = 0) -> Bool {
        if loss.isFinite, bestEvalLoss.map({ loss < $0 - minDelta }) ?? true {
            bestEvalLoss = loss
            bestStep = step
            patienceCounter = 0
            return true
        }
        patienceCounter += 1
        return false
    }

    /// Whether early stopping should end the run (`patience <= 0` disables it).
    public func shouldStopEarly(patience: Int) -> Bool { patience > 0 && patienceCounter >= patience }

    public static let fileName = "trainer_state.json"

    /// Writes `trainer_state.json` into a checkpoint folder, atomically.
    public func save(to folder: URL) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try enc.encode(self), to: folder.appendingPathComponent(Self.fileName))
    }

    /// Reads `trainer_state.json` from a checkpoint folder.
    public static func load(from folder: URL) throws -> TrainingState {
        let url = folder.appendingPathComponent(fileName)
        guard let data = try? Data(contentsOf: url) else { throw TrainingError("cannot read \(url.path)") }
        do { return try JSONDecoder().decode(TrainingState.self, from: data) } catch {
            throw TrainingError("\(url.path): not a Finch trainer state (\(error))")
        }
    }
}
