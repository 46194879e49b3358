import Foundation
import FinchModel
import FinchData

/// `finch score`: a reward model folder applied to `{prompt, response}` rows (one score each) or
/// `{prompt, chosen, rejected}` rows (both replies, their margin, and pairwise accuracy over the file).
public final class RewardScorer {
    public let folder: LoadedModelFolder
    public let model: RewardModel

    public init(rewardModel url: URL, templateName: String? = nil) throws {
        folder = try LoadedModelFolder(url, templateName: templateName)
        guard folder.folder.config.numLabels == 1 else {
            throw TrainingError("\(url.path): not a reward model (config.json needs num_labels = 1, LlamaForSequenceClassification)")
        }
        model = try RewardModel(decoder: try folder.decoder(), padID: folder.folder.config.padTokenId ?? folder.padID)
    }

    /// Token ids of a prompt (messages) followed by a reply, as the reward model was trained on them
    /// (`PreferencePairs.encode`: the end of a long prompt is kept), at most `maxLength` tokens
    /// (default: the model's maximum positions).
    public func sequence(prompt: [Message], reply: String, maxLength: Int? = nil) throws -> [Int] {
        let (p, r) = try PreferencePairs.encode(prompt: prompt, replies: [reply], encoder: folder.encoder,
                                                maxLength: maxLength ?? folder.folder.config.maxPositions)
        return p + r[0]
    }

    /// Scores of sequences, `batchSize` at a time, padded on the right (as in training) or on the left.
    public func score(_ rows: [[Int]], batchSize: Int = 16, leftPadded: Bool = false) -> [Float] {
        var out: [Float] = []
        for s in stride(from: 0, to: rows.count, by: max(1, batchSize)) {
            out += model.rewards(sequences: Array(rows[s..<min(rows.count, s + max(1, batchSize))]), leftPadded: leftPadded)
        }
        return out
    }

    public struct FileResult {
        /// One JSON object per input row.
        public var lines: [String]
        /// Pairs scored (rows with chosen and rejected).
        public var pairs: Int = 0
        public var pairwiseAccuracy: Double?
        public var meanMargin: Double?
        /// Scores and reply lengths (tokens) of the pairs, in file order, for `RewardReport`.
        public var chosenScores: [Float] = [], rejectedScores: [Float] = []
        public var chosenLengths: [Int] = [], rejectedLengths: [Int] = []
        /// Standard error of the pairwise accuracy, sqrt(p(1 − p)/n).
        public var accuracyStandardError: Double? {
            pairwiseAccuracy.map { ($0 * (1 - $0) / Double(max(1, pairs))).squareRoot() }
        }
    }

    /// Scores a JSONL file of `{prompt, chosen, rejected}` rows (both replies, their margin, pairwise accuracy) or
    /// of `{prompt, response}` rows (one score each). Rows are read by the same record parser as training data
    /// (HH transcripts split into turns, HH replies trimmed) and fitted into `maxLength` tokens as in training,
    /// so the scores of a held-out preference file are the ones `finch reward` evaluates.
    public func scoreFile(_ url: URL, batchSize: Int = 16, maxLength: Int? = nil, withIDs: Bool = false) throws -> FileResult {
        let file = try RecordReader.read(url)
        let positions = folder.folder.config.maxPositions
        if let m = maxLength, m > positions || m < 2 {
            throw TrainingError("--max-length \(m) is outside 2…\(positions) (the reward model's positions)")
        }
        let limit = maxLength ?? positions
        var seqs: [[Int]] = []
        var rows: [(line: Int, first: Int, count: Int)] = []
        var replyLengths: [[Int]] = []
        switch file.format {
        case .preference:
            for r in file.records {
                guard case .preference(let prompt, let chosen, let rejected) = r.body else { continue }
                let (p, replies) = try PreferencePairs.encode(prompt: prompt, replies: [chosen, rejected], encoder: folder.encoder, maxLength: limit)
                rows.append((r.location.line, seqs.count, 2))
                seqs += replies.map { p + $0 }
                replyLengths.append(replies.map(\.count))
            }
        case .prompt:
            let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
            for r in file.records {
                guard case .prompt(let prompt) = r.body else { continue }
                let o = try JSONSerialization.jsonObject(with: Data(lines[r.location.line - 1].utf8)) as? [String: Any]
                guard let response = o?["response"] as? String else { throw TrainingError("\(r.location): needs 'response' (or 'chosen' and 'rejected')") }
                rows.append((r.location.line, seqs.count, 1))
                seqs.append(try sequence(prompt: prompt, reply: response.trimmingCharacters(in: .whitespacesAndNewlines), maxLength: limit))
            }
        default:
            throw TrainingError("\(url.path): needs {prompt, response} or {prompt, chosen, rejected} rows (found \(file.format.rawValue) records)")
        }
        let s = score(seqs, batchSize: batchSize)
        // A non-finite score is a broken model or input, never a number to write into JSON (`-nan` is not JSON).
        if let bad = s.firstIndex(where: { !$0.isFinite }), let row = rows.first(where: { bad >= $0.first && bad < $0.first + $0.count }) {
            throw TrainingError("\(url.path):\(row.line): the reward model's score is \(s[bad]) (not finite); check the model and --max-length")
        }
        var result = FileResult(lines: [])
        var correct = 0, margin = 0.0
        for r in rows {
            // With `withIDs`, each row also carries the token ids it was scored on (for checks outside Finch,
            // e.g. tools/hf_reward_check.py running the same ids through transformers).
            func ids(_ k: Int) -> String { "[" + seqs[k].map(String.init).joined(separator: ", ") + "]" }
            if r.count == 1 {
                let extra = withIDs ? ", \"ids\": \(ids(r.first))" : ""
                result.lines.append("{\"line\": \(r.line), \"score\": \(s[r.first])\(extra)}")
            } else {
                let c = s[r.first], j = s[r.first + 1]
                result.chosenScores.append(c); result.rejectedScores.append(j)
                result.chosenLengths.append(replyLengths[result.pairs][0]); result.rejectedLengths.append(replyLengths[result.pairs][1])
                result.pairs += 1
                if c > j { correct += 1 }
                margin += Double(c - j)
                let extra = withIDs ? ", \"chosen_ids\": \(ids(r.first)), \"rejected_ids\": \(ids(r.first + 1))" : ""
                result.lines.append("{\"line\": \(r.line), \"chosen_score\": \(c), \"rejected_score\": \(j), \"margin\": \(c - j)\(extra)}")
            }
        }
        if result.pairs > 0 {
            result.pairwiseAccuracy = Double(correct) / Double(result.pairs)
            result.meanMargin = margin / Double(result.pairs)
        }
        return result
    }
}
