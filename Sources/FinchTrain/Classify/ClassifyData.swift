import Foundation
import FinchData

/// `{text, label}` rows tokenized for sequence classification: BOS + text ids (cut to `maxLength`), label index.
public struct ClassifyExample: Sendable {
    public var ids: [Int]
    public var label: Int
}

public enum ClassifyData {
    /// Reads `{text, label}` JSONL; every label must be one of `labels` (the error names file:line).
    public static func read(_ url: URL, labels: [String], tokenizer: any TextTokenizer, maxLength: Int) throws -> [ClassifyExample] {
        let index = Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($1, $0) })
        var out: [ClassifyExample] = []
        for row in try EvalRow.read(url) {
            guard let label = row.label else { throw TrainingError("\(row.location): expected {text, label}") }
            guard let k = index[label] else {
                throw TrainingError("\(row.location): label '\(label)' is not in --labels \(labels.joined(separator: ","))")
            }
            var ids = tokenizer.bosID >= 0 ? [tokenizer.bosID] : []
            ids += try tokenizer.encode(row.prompt).map(Int.init)
            out.append(ClassifyExample(ids: Array(ids.prefix(maxLength)), label: k))
        }
        return out
    }
}
