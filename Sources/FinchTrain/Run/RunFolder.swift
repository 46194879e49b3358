import Foundation
import FinchModel

/// A training run's folder:
/// ```
/// runs/<name>/
///   config.yaml, config.json     the resolved configuration (see `Recipe.write(to:)`)
///   metrics.jsonl                one JSON object per step / evaluation (`MetricsLog`)
///   loss.svg                     the curves (`LossCurve`)
///   checkpoints/step-N/          periodic checkpoints, the last `keepLast` kept
///   best/                        the checkpoint with the best evaluation loss so far
/// ```
/// Checkpoints are written into a hidden temporary folder beside their final place and renamed into
/// it, so a crash or Ctrl-C never leaves a half-written `step-N/` or `best/`.
public struct RunFolder {
    public let url: URL

    /// Opens `url`, creating it and `checkpoints/` if needed, and removes what a crash left half-written: temporary
    /// folders of a checkpoint, `best/` or `final/` (`.tmp-*`, `.old-*`), temporary files of `AtomicFile` writes
    /// (`.metrics.jsonl.tmp-PID`, `.loss.svg.tmp-PID`, …) and partial datasets of an interrupted pack (`data/.*.partial-PID`).
    public init(url: URL) throws {
        self.url = url
        let fm = FileManager.default
        do { try fm.createDirectory(at: checkpointsURL, withIntermediateDirectories: true) } catch {
            throw TrainingError("cannot create the run folder \(url.path): \(AtomicFile.reason(error))")
        }
        for dir in [url, checkpointsURL, url.appendingPathComponent("data")] {
            for name in (try? fm.contentsOfDirectory(atPath: dir.path)) ?? []
            where name.hasPrefix(".tmp-") || name.hasPrefix(".old-") || (name.hasPrefix(".") && (name.contains(".tmp-") || name.contains(".partial-"))) {
                try? fm.removeItem(at: dir.appendingPathComponent(name))
            }
        }
    }

    /// `root/<name>` (runs go under `runs/` by default).
    public init(root: URL = URL(fileURLWithPath: "runs"), name: String) throws {
        try self.init(url: root.appendingPathComponent(name))
    }

    public var metricsURL: URL { url.appendingPathComponent("metrics.jsonl") }
    public var configYAMLURL: URL { url.appendingPathComponent("config.yaml") }
    public var configJSONURL: URL { url.appendingPathComponent("config.json") }
    public var lossCurveURL: URL { url.appendingPathComponent("loss.svg") }
    public var checkpointsURL: URL { url.appendingPathComponent("checkpoints") }
    public var bestURL: URL { url.appendingPathComponent("best") }

    public func checkpointURL(step: Int) -> URL { checkpointsURL.appendingPathComponent("step-\(step)") }

    /// Writes a periodic checkpoint: `write` fills an empty temporary folder, which is then renamed to
    /// `checkpoints/step-N` (replacing an existing one); afterwards only the `keepLast` newest periodic
    /// checkpoints are kept (`keepLast <= 0` keeps all). Returns the checkpoint's URL.
    @discardableResult
    public func writeCheckpoint(step: Int, keepLast: Int, _ write: (URL) throws -> Void) throws -> URL {
        let final = checkpointURL(step: step)
        try Self.writeAtomically(to: final, write)
        if keepLast > 0 {
            for old in checkpoints().dropLast(keepLast) { Self.removeAtomically(old.url) }
        }
        return final
    }

    /// Removes a folder so that it is complete or absent at every moment: it is renamed to a hidden `.old-*`
    /// sibling first (which `init` clears if a crash interrupts the deletion), so a kill mid-delete never leaves a
    /// `step-N/` with some of its files.
    static func removeAtomically(_ folder: URL) {
        let fm = FileManager.default
        let aside = folder.deletingLastPathComponent()
            .appendingPathComponent(".old-\(folder.lastPathComponent)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        if rename(folder.path, aside.path) == 0 { try? fm.removeItem(at: aside) } else { try? fm.removeItem(at: folder) }
    }

    /// Writes `best/` the same atomic way (the previous best is replaced only once the new one is complete).
    @discardableResult
    public func writeBest(_ write: (URL) throws -> Void) throws -> URL {
        try Self.writeAtomically(to: bestURL, write)
        return bestURL
    }

    /// Periodic checkpoints on disk, oldest first.
    public func checkpoints() -> [(step: Int, url: URL)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: checkpointsURL.path)) ?? []
        return names.compactMap { n -> (Int, URL)? in
            guard n.hasPrefix("step-"), let s = Int(n.dropFirst(5)) else { return nil }
            return (s, checkpointsURL.appendingPathComponent(n))
        }.sorted { $0.0 < $1.0 }.map { (step: $0.0, url: $0.1) }
    }

    /// The newest periodic checkpoint, if any (what `--resume` continues from).
    public func latestCheckpoint() -> (step: Int, url: URL)? { checkpoints().last }

    /// Fills a temporary sibling folder with `write`, then moves it to `final` (via rename; an existing
    /// `final` is first renamed aside and deleted after the swap).
    public static func writeAtomically(to final: URL, _ write: (URL) throws -> Void) throws {
        let fm = FileManager.default
        let parent = final.deletingLastPathComponent()
        try fm.createDirectory(at: parent, withIntermediateDirectories: true)
        let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let tmp = parent.appendingPathComponent(".tmp-\(final.lastPathComponent)-\(tag)")
        try fm.createDirectory(at: tmp, withIntermediateDirectories: false)
        do { try write(tmp) } catch {
            try? fm.removeItem(at: tmp)
            throw error
        }
        var aside: URL? = nil
        if fm.fileExists(atPath: final.path) {
            let old = parent.appendingPathComponent(".old-\(final.lastPathComponent)-\(tag)")
            guard rename(final.path, old.path) == 0 else {
                try? fm.removeItem(at: tmp)
                throw TrainingError("cannot move \(final.path) aside (errno \(errno))")
            }
            aside = old
        }
        guard rename(tmp.path, final.path) == 0 else {
            let e = errno
            if let old = aside { _ = rename(old.path, final.path) }
            try? fm.removeItem(at: tmp)
            throw TrainingError("cannot rename \(tmp.path) to \(final.path) (errno \(e))")
        }
        if let old = aside { try? fm.removeItem(at: old) }
    }
}
