import Foundation
import FinchData
import FinchModel

/// The files `finch critique` and `finch synthesize` keep while they run, so that an interrupted run resumes where it
/// stopped: one log (JSONL, one line appended and written with a single write(2) per finished item, so a crash loses
/// at most the item in flight) is the truth; the training files beside it are derived from the log and rebuilt from it
/// on resume, so they can never hold an item the log does not.
public enum SynthesisLog {
    /// The objects of a log, in order. A torn last line (a write cut short by a crash or kill) is dropped and the file
    /// rewritten without it; any other bad line is an error naming the file and line.
    public static func read(_ url: URL) throws -> [[String: Any]] {
        guard FileManager.default.fileExists(atPath: url.path) else { return [] }
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw ChatFileError("\(url.path): cannot read (\(AtomicFile.reason(error)))") }
        let lines = data.split(separator: 0x0A, omittingEmptySubsequences: false)
        var objects: [[String: Any]] = []
        var kept = Data()
        var torn = false
        for (i, line) in lines.enumerated() where !line.isEmpty {
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any] else {
                // Only the very last line, with no newline after it, can be a write cut short.
                if i == lines.count - 1 { torn = true; break }
                throw ChatFileError("\(url.path):\(i + 1): not a JSON object (the log of an earlier run is damaged; use --overwrite to start again)")
            }
            objects.append(object)
            kept.append(Data(line)); kept.append(0x0A)
        }
        if torn { try AtomicFile.write(kept, to: url) }
        return objects
    }

    /// Rewrites a file atomically with these lines (one JSON value a line).
    public static func write(lines: [String], to url: URL) throws {
        try AtomicFile.write(Data(lines.map { $0 + "\n" }.joined().utf8), to: url)
    }

    /// Seed `stream` of item `index` under the run's seed: items draw from their own streams, so an item's principle,
    /// examples and samples do not depend on the batch it was in or on where an interrupted run resumed.
    public static func rng(seed: UInt64, item index: Int) -> SeededRNG {
        SeededRNG(seed: seed ^ (UInt64(index) &+ 1) &* 0x9E37_79B9_7F4A_7C15)
    }

    /// JSON text of an Encodable value with sorted keys and unescaped slashes (stable, diffable lines).
    static func json<T: Encodable>(_ value: T, pretty: Bool = false) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted] : [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// Decodes one log object.
    static func decode<T: Decodable>(_ type: T.Type, _ object: [String: Any], file: URL, item: Int) throws -> T {
        do { return try JSONDecoder().decode(T.self, from: JSONSerialization.data(withJSONObject: object)) } catch {
            throw ChatFileError("\(file.path): record \(item + 1) cannot be read (\(error)); use --overwrite to start again")
        }
    }
}

/// Appends lines to a JSONL file, each with one write(2) (FileHandle does not buffer), so a killed run leaves whole
/// lines and at most a torn last one.
public final class JSONLAppender {
    public let url: URL
    private let handle: FileHandle

    public init(_ url: URL) throws {
        self.url = url
        let fm = FileManager.default
        try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        if !fm.fileExists(atPath: url.path) { _ = fm.createFile(atPath: url.path, contents: nil) }
        guard let h = FileHandle(forWritingAtPath: url.path) else { throw ChatFileError("\(url.path): cannot open for appending") }
        handle = h
        handle.seekToEndOfFile()
    }

    deinit { try? handle.close() }

    public func append(_ line: String) throws {
        do { try handle.write(contentsOf: Data((line + "\n").utf8)) } catch {
            throw ChatFileError("\(url.path): cannot write (\(AtomicFile.reason(error)))")
        }
    }
}

/// The settings a synthesis run is made with, written beside its output (`critique.json`, `FILE.meta.json`): a run
/// resumed with other settings would mix two datasets in one file, so it is refused, naming what changed.
public enum SynthesisSettingsFile {
    /// Readies an output for a run, before the model loads: with `overwrite` removes `outputs` and the settings file;
    /// otherwise refuses outputs that exist without a settings file (not a run of this command), and settings that
    /// differ from the earlier run's.
    public static func prepare(_ settings: [String: JSONValue], at url: URL, informational: Set<String>, outputs: [URL],
                               overwrite: Bool, command: String) throws {
        let fm = FileManager.default
        if overwrite {
            for u in outputs + [url] { try? fm.removeItem(at: u) }
            return
        }
        if !fm.fileExists(atPath: url.path), let found = outputs.first(where: { fm.fileExists(atPath: $0.path) }) {
            throw ChatFileError("\(found.path) exists without \(url.lastPathComponent): not written by finch \(command); give --overwrite or another --out")
        }
        try check(settings, at: url, informational: informational)
    }

    /// Checks `settings` against the file an earlier run wrote at `url` (nothing to check when there is none).
    /// `informational` keys (paths, counts) are recorded but may change between runs.
    public static func check(_ settings: [String: JSONValue], at url: URL, informational: Set<String>) throws {
        guard FileManager.default.fileExists(atPath: url.path) else { return }
        let old: JSONValue
        do { old = try JSONValue.read(url) } catch {
            throw ChatFileError("\(url.path): cannot read the settings of the earlier run (\(error)); use --overwrite to start again")
        }
        guard case .object(let before) = old else { throw ChatFileError("\(url.path): not a JSON object; use --overwrite to start again") }
        // Compared as read back from text, so 1.0 (read as an integer) meets 1.0.
        let now = try JSONValue.parse(JSONValue.object(settings).data(), file: url.path).object ?? [:]
        let (a, b) = (flatten(before.filter { !informational.contains($0.key) }), flatten(now.filter { !informational.contains($0.key) }))
        let changed = Set(a.keys).union(b.keys).sorted().filter { a[$0] != b[$0] }
            .map { "\($0): \(a[$0].map(describe) ?? "unset") → \(b[$0].map(describe) ?? "unset")" }
        guard changed.isEmpty else {
            throw ChatFileError("\(url.path): this output was started with other settings (\(changed.joined(separator: "; "))); "
                                + "rerun with the same settings to resume, give --overwrite to start again, or choose another --out")
        }
    }

    /// Writes the settings (when the run starts generating: a run that fails to load its model leaves none behind).
    public static func write(_ settings: [String: JSONValue], at url: URL) throws {
        try AtomicFile.write(JSONValue.object(settings).data(), to: url)
    }

    /// Nested objects as dotted keys (`sampling.temperature`), so a refusal names the one setting that changed.
    static func flatten(_ o: [String: JSONValue], prefix: String = "") -> [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        for (k, v) in o {
            if case .object(let inner) = v { out.merge(flatten(inner, prefix: prefix + k + "."), uniquingKeysWith: { a, _ in a }) } else { out[prefix + k] = v }
        }
        return out
    }

    static func describe(_ v: JSONValue) -> String {
        let s = v.text().split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
        return s.count > 60 ? String(s.prefix(57)) + "…" : s
    }

    /// The sampling settings as recorded beside an output.
    public static func sampling(_ s: SamplingSettings, seed: UInt64) -> JSONValue {
        .object(["temperature": .float(s.temperature), "top_k": .int(s.topK), "top_p": .float(s.topP),
                 "min_p": .float(s.minP), "repetition_penalty": .float(s.repetitionPenalty),
                 "max_new_tokens": .int(s.maxTokens), "seed": .string(String(seed)), "stop": .array(s.stop.map { .string($0) })])
    }

    /// sha256 of a file's bytes: the prompts, seed tasks or principles a run was made from.
    public static func sha256(_ url: URL) throws -> String {
        do { return SHA256.hex(try Data(contentsOf: url)) } catch {
            throw ChatFileError("\(url.path): cannot read (\(AtomicFile.reason(error)))")
        }
    }
}

/// What a synthesis run samples with: the model (and adapter), the sampling settings, the run's seed (every prompt or
/// attempt derives its own streams from it) and how many conversations the batched generator decodes together.
public struct SynthesisModel {
    public var model: String
    public var adapter: String?
    public var settings = SamplingSettings()
    public var seed: UInt64 = 0
    public var batchSize = 4
    public init(model: String) { self.model = model }

    /// The model and sampling as recorded beside the output.
    var recorded: [String: JSONValue] {
        ["model": .string(URL(fileURLWithPath: model).standardizedFileURL.path),
         "adapter": adapter.map { .string(URL(fileURLWithPath: $0).standardizedFileURL.path) } ?? .null,
         "sampling": SynthesisSettingsFile.sampling(settings, seed: seed), "batch_size": .int(batchSize)]
    }
}

/// How far a synthesis run is, sent after every batch.
public struct SynthesisProgress: Sendable, Equatable {
    /// Items finished (prompts for critique, accepted tasks for synthesize) of `total`, earlier runs included.
    public var done: Int
    public var total: Int
    /// Critique: pairs written / prompts without a usable revision. Synthesize: tasks accepted / attempts rejected.
    public var accepted: Int
    public var rejected: Int
    /// Synthesize: attempts made of the budget (nil for critique).
    public var attempts: Int?
    public var attemptBudget: Int?
    /// This run's generated tokens and wall time.
    public var generatedTokens: Int
    public var seconds: Double
    /// Items this run finished (for the ETA).
    public var doneThisRun: Int

    public var tokensPerSecond: Double { seconds > 0 ? Double(generatedTokens) / seconds : 0 }
    public var etaSeconds: Double? {
        guard doneThisRun > 0, seconds > 0, total > done else { return nil }
        return Double(total - done) * seconds / Double(doneThisRun)
    }
}

/// What a synthesis run reports to, and asks whether to stop (Ctrl-C in the CLI); checked after every batch.
public struct SynthesisObserver {
    public var progress: (SynthesisProgress) -> Void
    public var message: (String) -> Void
    public var stopRequested: () -> Bool
    public init(progress: @escaping (SynthesisProgress) -> Void = { _ in }, message: @escaping (String) -> Void = { _ in },
                stopRequested: @escaping () -> Bool = { false }) {
        self.progress = progress; self.message = message; self.stopRequested = stopRequested
    }
}

/// A synthesis run stopped by a stop request; what was finished is on disk and the same command continues it.
public struct SynthesisInterrupted: Error, CustomStringConvertible {
    public let done: Int
    public let total: Int
    public var description: String { "stopped after \(done) of \(total); run the same command again to continue" }
}
