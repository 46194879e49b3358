import Foundation
import FinchModel
import FinchData

/// Where PPO's scores come from: a trained reward model folder, or a user program (`RewardProgram`).
public final class RewardSource {
    enum Kind {
        case model(RewardModel, LoadedModelFolder)
        case command(RewardProgram)
    }
    let kind: Kind

    /// A reward model folder (`LlamaForSequenceClassification`, num_labels = 1) with its tokenizer.
    public init(rewardModel url: URL, templateName: String? = nil) throws {
        let f = try LoadedModelFolder(url, templateName: templateName)
        guard f.folder.config.numLabels == 1 else {
            throw TrainingError("\(url.path): not a reward model (config.json has no num_labels = 1 score head)")
        }
        let d = try f.decoder()
        let pad = f.folder.config.padTokenId ?? f.padID
        kind = .model(try RewardModel(decoder: d, padID: pad), f)
    }

    public init(command: String, timeout: Double) throws {
        kind = .command(try RewardProgram(command: command, timeout: timeout))
    }

    /// The reward model or program a PPO configuration names (`--reward` or `--reward-command`).
    public convenience init(_ o: PPOOptions) throws {
        switch (o.reward, o.rewardCommand) {
        case (let r?, nil): try self.init(rewardModel: URL(fileURLWithPath: r))
        case (nil, let c?): try self.init(command: c, timeout: o.rewardTimeout)
        default: throw TrainingError("give exactly one of --reward RM_DIR or --reward-command CMD")
        }
    }

    /// Scores of responses (text without the end-of-turn token) to prompts.
    public func score(prompts: [PPOPrompt], responses: [String]) throws -> [Float] {
        switch kind {
        case .command(let c):
            let rows: [[String: Any]] = zip(prompts, responses).map { p, r in
                var o = p.extra
                o["prompt"] = p.text
                o["response"] = r
                return o
            }
            return try c.score(rows)
        case .model(let rm, let f):
            var rows: [[Int]] = []
            for (p, r) in zip(prompts, responses) {
                let ids = try f.encoder.generationPrompt(p.messages).map(Int.init) + f.encoder.encodeReply(r).map(Int.init)
                rows.append(Array(ids.suffix(f.folder.config.maxPositions)))
            }
            let (ids, T, _) = PreferencePairs.pad(rows, padID: rm.padID)
            return rm.rewards(ids: ids, batch: rows.count, length: T)
        }
    }

    public func close() { if case .command(let c) = kind { c.close() } }
}
