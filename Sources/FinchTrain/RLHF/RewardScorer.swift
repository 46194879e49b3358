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

    /// Token ids of a prompt (messages) followed by a reply, as the reward model was trained on them.
    public func sequence(prompt: [Message], reply: String) throws -> [Int] {
        let ids = try folder.encoder.generationPrompt(prompt).map(Int.init) + folder.encoder.encodeReply(reply).map(Int.init)
        return Array(ids.suffix(folder.folder.config.maxPositions))
    }

    /// Scores of sequences, `batchSize` at a time.
    public func score(_ rows: [[Int]], batchSize: Int = 16) -> [Float] {
        var out: [Float] = []
        for s in stride(from: 0, to: rows.count, by: max(1, batchSize)) {
            let part = Array(rows[s..<min(rows.count, s + max(1, batchSize))])
            let (ids, T, _) = PreferencePairs.pad(part, padID: model.padID)
            out += model.rewards(ids: ids, batch: part.count, length: T)
        }
        return out
    }

    public struct FileResult {
        /// One JSON object per input row.
        public var lines: [String]
        public var pairwiseAccuracy: Double?
        public var meanMargin: Double?
    }

    public func scoreFile(_ url: URL, batchSize: Int = 16) throws -> FileResult {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { throw TrainingError("cannot read \(url.path)") }
        enum Row { case single(Int, Int), pair(Int, Int, Int) }   // line, sequence indices
        var seqs: [[Int]] = [], rows: [Row] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            let loc = "\(url.path):\(i + 1)"
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { throw TrainingError("\(loc): not a JSON object") }
            let prompt: [Message]
            if let p = o["prompt"] as? String { prompt = [Message(.user, p)] }
            else if let list = o["prompt"] as? [[String: Any]] {
                prompt = list.compactMap { m in (m["role"] as? String).flatMap(Role.init(rawValue:)).map { Message($0, m["content"] as? String ?? "") } }
            } else { throw TrainingError("\(loc): field 'prompt' is missing") }
            if let c = o["chosen"] as? String, let r = o["rejected"] as? String {
                seqs.append(try sequence(prompt: prompt, reply: c)); seqs.append(try sequence(prompt: prompt, reply: r))
                rows.append(.pair(i + 1, seqs.count - 2, seqs.count - 1))
            } else if let r = o["response"] as? String {
                seqs.append(try sequence(prompt: prompt, reply: r))
                rows.append(.single(i + 1, seqs.count - 1))
            } else {
                throw TrainingError("\(loc): needs 'response' (or 'chosen' and 'rejected')")
            }
        }
        let s = score(seqs, batchSize: batchSize)
        var lines: [String] = [], correct = 0, pairs = 0, margin = 0.0
        for r in rows {
            switch r {
            case .single(let line, let k):
                lines.append("{\"line\": \(line), \"score\": \(s[k])}")
            case .pair(let line, let c, let j):
                pairs += 1
                if s[c] > s[j] { correct += 1 }
                margin += Double(s[c] - s[j])
                lines.append("{\"line\": \(line), \"chosen_score\": \(s[c]), \"rejected_score\": \(s[j]), \"margin\": \(s[c] - s[j])}")
            }
        }
        return FileResult(lines: lines, pairwiseAccuracy: pairs > 0 ? Double(correct) / Double(pairs) : nil,
                          meanMargin: pairs > 0 ? margin / Double(pairs) : nil)
    }
}
