import Foundation

/// One trial of a sweep as `trials.jsonl` records it (one JSON object per line, rewritten atomically on every
/// change): its values, where it stands and what it measured.
public struct SweepTrial: Codable, Equatable {
    public enum Status: String, Codable { case running, completed, stopped, failed }

    /// 0, 1, 2 … (the run folder is `trials/NNN`).
    public var trial: Int
    /// The swept values (recipe keys).
    public var params: [String: RecipeValue]
    public var status: Status
    /// The metric's name (`eval_loss`, `exact_match`) and this trial's value of it (nil until measured).
    public var metric: String
    public var value: Double?
    public var stderr: Double?
    /// The highest rung the trial passed or stopped at (-1: none yet).
    public var rung: Int
    /// The curve's value (eval_loss, or eval_exact_match with `--rung-metric exact_match`) at each rung reached, by rung index.
    public var rungs: [String: Double]
    /// The evaluation curve: [step, value] pairs of the rung metric's key (`Settings.curveKey`).
    public var curve: [[Double]]
    /// Steps the trial's configuration runs.
    public var maxSteps: Int
    public var seconds: Double?
    /// Why a trial failed (the last lines of its log), or where it stopped.
    public var note: String?
    /// The process of its last launch (a resumed sweep waits for it if it still runs).
    public var pid: Int32?

    public var folderName: String { String(format: "%03d", trial) }
}

