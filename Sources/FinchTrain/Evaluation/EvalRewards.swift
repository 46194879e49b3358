import Foundation
import FinchData

/// Rewards of evaluation replies through PPO's own `RewardSource` (a reward model folder or a reward
/// command), so `finch eval` scores exactly as `finch ppo` trains.
public final class EvalRewards {
    let source: RewardSource

    /// A reward model folder written by `finch reward`.
    public init(rewardModel: URL) throws { source = try RewardSource(rewardModel: rewardModel) }
    /// A program reading JSONL `{prompt, response, task, answer}` and writing one number per line.
    public init(command: String, timeout: Double = 120) throws { source = try RewardSource(command: command, timeout: timeout) }

    /// One reward per (row, reply).
    public func rewards(_ rows: [EvalRow], responses: [String]) throws -> [Double] {
        let prompts = rows.map { row in
            PPOPrompt(text: row.prompt, messages: [Message(.user, row.prompt)],
                      extra: ["task": row.task, "answer": row.answer], location: row.location)
        }
        return try source.score(prompts: prompts, responses: responses).map(Double.init)
    }

    public func close() { source.close() }
}
