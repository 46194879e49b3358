import Foundation

/// A user's text file (JSONL data, prompts, recipes) read whole as UTF-8, with errors that name the file and, for bad
/// UTF-8, the first line holding it.
enum UserTextFile {
    /// `what` says which file it is in the error ("prompts file", "recipe"…).
    static func read(_ url: URL, what: String) throws -> String {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw TrainingError("cannot read \(what) \(url.path): \(error.localizedDescription)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            let lineNo = (String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
                .firstIndex { $0.contains("\u{FFFD}") } ?? 0) + 1
            throw TrainingError("\(url.path):\(lineNo): invalid UTF-8")
        }
        return text
    }
}
