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

    /// Opens (creating if needed) the log for appending.
    public init(url: URL) throws {
        self.url = url
        let fm = FileManager.default
        try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        if !fm.fileExists(atPath: url.path) { fm.createFile(atPath: url.path, contents: nil) }
        guard let h = FileHandle(forWritingAtPath: url.path) else { throw TrainingError("cannot open \(url.path) for appending") }
        handle = h
        handle.seekToEndOfFile()
    }

    deinit { try? handle.close() }

    /// Appends one record as a single line (keys sorted) and flushes it to the file.
    public func append(_ record: [String: Any]) throws {
        let clean = record.mapValues(Self.sanitise)
        guard JSONSerialization.isValidJSONObject(clean) else {
            throw TrainingError("metrics record is not representable as JSON: \(record)")
        }
        var line = try JSONSerialization.data(withJSONObject: clean, options: [.sortedKeys])
        line.append(0x0A)
        try handle.write(contentsOf: line)
        try handle.synchronize()
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

    /// The `(step, value)` points of one key over the records that have it with a finite number.
    public static func series(_ records: [[String: Any]], key: String) -> [(x: Double, y: Double)] {
        records.compactMap { r in
            guard let s = r["step"] as? NSNumber, let v = r[key] as? NSNumber else { return nil }
            let y = v.doubleValue
            return y.isFinite ? (s.doubleValue, y) : nil
        }
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
