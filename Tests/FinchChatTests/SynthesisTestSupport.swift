import Foundation
import FinchChat

/// A stand-in model for the synthesis pipelines: replies are a pure function of the conversation and the seed (as a
/// sampled model's are), with no model behind them.
final class ScriptEngine: ChatEngine {
    let contextLength = 4096
    let usedTokens = 0
    var defaultSettings: SamplingSettings { SamplingSettings() }
    let name = "script (test engine)"
    let respond: (Conversation, UInt64) -> String
    private(set) var calls = 0

    init(_ respond: @escaping (Conversation, UInt64) -> String) { self.respond = respond }

    func reset(system: String?) {}
    func tokenCount(of conversation: Conversation) throws -> Int { conversation.messages.count * 4 }

    func reply(to conversation: Conversation, settings: SamplingSettings, onToken: (String) -> Bool) throws -> ReplyStats {
        calls += 1
        let text = respond(conversation, settings.seed ?? 0)
        _ = onToken(text)
        return ReplyStats(promptTokens: 1, generatedTokens: text.split(separator: " ").count, seconds: 0, firstTokenSeconds: nil,
                          stopReason: .endOfTurn)
    }
}

func writeFile(_ text: String, _ url: URL) throws -> URL {
    try text.write(to: url, atomically: true, encoding: .utf8)
    return url
}

func jsonLines(_ url: URL) throws -> [[String: Any]] {
    try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map {
        try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
    }
}
