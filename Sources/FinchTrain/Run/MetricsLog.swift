import Foundation
import FinchModel

/// `metrics.jsonl`: one JSON object per line, appended and flushed as each step or evaluation ends,
/// so a crash loses nothing already logged and `tail -f` works.
///
/// Convention for the keys (the loss curve and summaries read them): every record has `"step"`;
/// training lines use `loss`, `lr`, `grad_norm`, `tokens_per_s`…; evaluation lines prefix with `eval_`
/// (`eval_loss`, `eval_ppl`, `eval_accuracy`); PPO uses `reward`, `kl`, `entropy`, `pg_loss`, `vf_loss`,
/// `clipfrac`, `response_length`. Non-finite numbers are written as `null` (JSON has no NaN).
public final class MetricsLog {
    public let url: URL
    private let handle: FileHandle

    /// The keys whose points the log also keeps in memory (what `LossCurve` draws), so the picture can
    /// be redrawn often without re-reading a long file.
    public static let chartKeys = ["loss", "eval_loss", "reward", "eval_reward", "kl", "eval_kl"]

    /// In-memory `(step, value)` points of `chartKeys`: the existing file's (read once at open) plus
    /// every record appended since.
    public private(set) var chartSeries: [String: [(x: Double, y: Double)]]

    /// Records in the file (those read at open plus those appended since).
    public private(set) var recordCount = 0

    /// Opens (creating if needed) the log for appending.
    public init(url: URL) throws {
        self.url = url
        let fm = FileManager.default
        try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        // O_CREAT|O_APPEND, never FileManager.createFile: that writes a new file and renames it over the path, so
        // a second opener could replace the file the first one was already appending to (its lines then went to an
        // unlinked inode).
        let fd = open(url.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TrainingError("cannot open \(url.path) for appending: \(String(cString: strerror(errno)))") }
        handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        let existing = try Self.read(url)   // a torn last line is tolerated; other damage names the line
        chartSeries = Self.series(existing, keys: Self.chartKeys)
        recordCount = existing.count
    }


    /// Appends one record as a single line (keys sorted). The line goes straight to the file with one
    /// write(2) (FileHandle does no buffering), so it survives a crash of the process; no fsync per line.
    public func append(_ record: [String: Any]) throws {
        let clean = record.mapValues(Self.sanitise)
        guard JSONSerialization.isValidJSONObject(clean) else {
            throw TrainingError("metrics record is not representable as JSON: \(record)")
        }
        var line = try JSONSerialization.data(withJSONObject: clean, options: [.sortedKeys])
        line.append(0x0A)
        try handle.write(contentsOf: line)
        recordCount += 1
        for (k, v) in Self.series([clean], keys: Self.chartKeys) where !v.isEmpty { chartSeries[k]!.append(contentsOf: v) }
    }

    /// Every record of a metrics file, in order. A torn last line (crash mid-write) is skipped;
    /// any other malformed line throws with its line number.
    public static func read(_ url: URL) throws -> [[String: Any]] {
        guard let data = try? Data(contentsOf: url) else { throw TrainingError("cannot read \(url.path)") }
        let lines = data.split(separator: 0x0A, omittingEmptySubsequences: false)
        var out: [[String: Any]] = []
        for (i, line) in lines.enumerated() where !line.isEmpty {
            guard let obj = (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any] else {
                if i == lines.count - 1 { break }   // last line without newline: a write cut short
                throw TrainingError("\(url.path):\(i + 1): not a JSON object")
            }
            out.append(obj)
        }
        return out
    }

    /// Drops records with `step > step` (and a torn last line), atomically. Call it when resuming from a
    /// checkpoint at `step`, so lines logged after that checkpoint by the interrupted run do not repeat.
    public static func truncate(_ url: URL, afterStep step: Int) throws {
        guard FileManager.default.fileExists(atPath: url.path) else { return }
        let kept = try read(url).filter { (($0["step"] as? NSNumber)?.intValue ?? 0) <= step }
        var data = Data()
        for r in kept {
            data.append(try JSONSerialization.data(withJSONObject: r, options: [.sortedKeys]))
            data.append(0x0A)
        }
        try AtomicFile.write(data, to: url)
    }

    /// Keeps the first `count` records (and drops a torn last line), atomically: what a resume from a checkpoint
    /// that saved `TrainingState.metricsRecords` does, so the file is exactly as it was when the checkpoint was written.
    public static func truncate(_ url: URL, keepingFirst count: Int) throws {
        guard FileManager.default.fileExists(atPath: url.path) else { return }
        var data = Data()
        for r in try read(url).prefix(max(0, count)) {
            data.append(try JSONSerialization.data(withJSONObject: r, options: [.sortedKeys]))
            data.append(0x0A)
        }
        try AtomicFile.write(data, to: url)
    }

    /// The `(step, value)` points of one key over the records that have it with a finite number.
    public static func series(_ records: [[String: Any]], key: String) -> [(x: Double, y: Double)] {
        series(records, keys: [key])[key] ?? []
    }

    /// The points of several keys in one pass over the records (each key present in the result).
    public static func series(_ records: [[String: Any]], keys: [String]) -> [String: [(x: Double, y: Double)]] {
        let wanted = Set(keys)
        var out: [String: [(x: Double, y: Double)]] = [:]
        for k in keys { out[k] = [] }
        for r in records {
            guard let s = r["step"] as? NSNumber else { continue }
            let x = s.doubleValue
            for (k, v) in r where wanted.contains(k) {
                guard let n = v as? NSNumber else { continue }
                let y = n.doubleValue
                if y.isFinite { out[k]!.append((x, y)) }
            }
        }
        return out
    }

    static func sanitise(_ v: Any) -> Any {
        switch v {
        case let d as Double: return d.isFinite ? d : NSNull()
        case let f as Float: return f.isFinite ? Double(f) : NSNull()
        case let a as [Any]: return a.map(sanitise)
        case let m as [String: Any]: return m.mapValues(sanitise)
        default: return v
        }
    }
}
