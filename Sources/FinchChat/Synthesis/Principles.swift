import Foundation
import FinchModel

/// One principle of a constitution (Bai et al. 2022, "Constitutional AI"): a request for a critique of the assistant's
/// last response, and a request to rewrite the response in the light of that critique.
public struct Principle: Codable, Equatable, Sendable {
    public var name: String
    public var critique: String
    public var revision: String

    public init(name: String, critique: String, revision: String = Principle.defaultRevision) {
        self.name = name; self.critique = critique; self.revision = revision
    }

    /// The revision request of a principle that gives none.
    public static let defaultRevision = "Now rewrite your first response so that it fixes the problems your critique found "
        + "and still answers my original request. Reply with the rewritten response only."
}

/// A principles file: JSONL, one principle a line, `{"name": "…", "critique": "…", "revision": "…"}`. `critique` is
/// required; `name` defaults to `principle-N` (N = its line), `revision` to `Principle.defaultRevision`. Blank lines
/// are skipped. Errors name the file and line; a file without principles is an error.
public enum Principles {
    public static func read(_ url: URL) throws -> [Principle] {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw ChatFileError("\(url.path): cannot read the principles (\(AtomicFile.reason(error)); expected UTF-8 JSONL)")
        }
        var principles: [Principle] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty { continue }
            let at = "\(url.path):\(i + 1)"
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                throw ChatFileError("\(at): not a JSON object (a principle is {\"name\": …, \"critique\": …, \"revision\": …})")
            }
            func field(_ key: String, required: Bool) throws -> String? {
                guard let v = object[key], !(v is NSNull) else {
                    if required { throw ChatFileError("\(at): missing field \"\(key)\"") }
                    return nil
                }
                guard let s = v as? String else { throw ChatFileError("\(at): field \"\(key)\" must be a string") }
                let t = s.trimmingCharacters(in: .whitespacesAndNewlines)
                guard !t.isEmpty else { throw ChatFileError("\(at): field \"\(key)\" is empty") }
                return t
            }
            let unknown = Set(object.keys).subtracting(["name", "critique", "revision"])
            if let key = unknown.sorted().first {
                throw ChatFileError("\(at): unknown field \"\(key)\" (a principle has name, critique and revision)")
            }
            principles.append(Principle(name: try field("name", required: false) ?? "principle-\(i + 1)",
                                        critique: try field("critique", required: true)!,
                                        revision: try field("revision", required: false) ?? Principle.defaultRevision))
        }
        guard !principles.isEmpty else { throw ChatFileError("\(url.path): no principles (one JSON object a line)") }
        return principles
    }
}
