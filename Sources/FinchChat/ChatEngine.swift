import Foundation

/// Why a reply ended.
public enum StopReason: Equatable, Sendable, CustomStringConvertible {
    /// The model produced its end-of-turn / end-of-sequence token.
    case endOfTurn
    /// One of `SamplingSettings.stop` appeared (the stop string is not part of the reply).
    case stopString(String)
    /// `SamplingSettings.maxTokens` new tokens were produced.
    case maxTokens
    /// The context window filled up during the reply.
    case contextFull
    /// The token callback returned `false` (Ctrl-C in the REPL).
    case interrupted

    public var description: String {
        switch self {
        case .endOfTurn: return "end of turn"
        case .stopString(let s): return "stop string \(JSONText.quote(s))"
        case .maxTokens: return "max tokens"
        case .contextFull: return "context full"
        case .interrupted: return "interrupted"
        }
    }
}

/// Measurements of one reply.
public struct ReplyStats: Equatable, Sendable {
    /// Prompt tokens actually processed for this reply (tokens already in the KV cache are not counted).
    public var promptTokens: Int
    /// New tokens generated.
    public var generatedTokens: Int
    /// Wall time from the call to the end of the reply, in seconds.
    public var seconds: Double
    /// Wall time from the call to the first streamed token, in seconds (nil when no token came).
    public var firstTokenSeconds: Double?
    public var stopReason: StopReason
    /// The generated token ids, stop token included (engines that work on text leave it empty).
    public var tokenIDs: [Int]

    public init(promptTokens: Int, generatedTokens: Int, seconds: Double, firstTokenSeconds: Double?,
                stopReason: StopReason, tokenIDs: [Int] = []) {
        self.tokenIDs = tokenIDs
        self.promptTokens = promptTokens
        self.generatedTokens = generatedTokens
        self.seconds = seconds
        self.firstTokenSeconds = firstTokenSeconds
        self.stopReason = stopReason
    }

    /// Decode speed: generated tokens per second after the first token (the prefill is excluded).
    public var tokensPerSecond: Double {
        let first = firstTokenSeconds ?? 0
        let decodeTime = seconds - first
        guard generatedTokens > 1, decodeTime > 0 else {
            return seconds > 0 ? Double(generatedTokens) / seconds : 0
        }
        return Double(generatedTokens - 1) / decodeTime
    }
}

/// What the chat REPL and `finch generate` need from a model.
///
/// The caller owns the `Conversation`; the engine renders it with the model's chat template and keeps
/// whatever cache it likes (a real decoder reuses the KV cache for the longest common token prefix with
/// the previous call, so only new tokens are processed).
public protocol ChatEngine: AnyObject {
    /// Maximum number of tokens (prompt + reply) the model can attend to.
    var contextLength: Int { get }
    /// Tokens currently held (in the KV cache, for a real model) by the conversation so far.
    var usedTokens: Int { get }
    /// Sampling defaults that come with the model folder (e.g. `generation_config.json`).
    var defaultSettings: SamplingSettings { get }
    /// A short human-readable name for `/show` (model folder, adapter).
    var name: String { get }

    /// Forgets every cached token and starts from an empty conversation with this system prompt.
    func reset(system: String?)

    /// Number of tokens `conversation` renders to, including the generation prompt for the assistant
    /// reply that would follow. Used to drop the oldest turns before the context fills.
    func tokenCount(of conversation: Conversation) throws -> Int

    /// Generates the assistant reply to `conversation` (which ends with a user message), streaming each
    /// decoded piece of text to `onToken` as soon as it is known. Returning `false` from `onToken`
    /// stops generation (`StopReason.interrupted`). Stop strings are removed from the streamed text.
    func reply(to conversation: Conversation, settings: SamplingSettings,
               onToken: (String) -> Bool) throws -> ReplyStats

    /// Replies to several independent conversations (for `finch generate`). The default calls
    /// `reply(to:settings:onToken:)` one conversation at a time; a batched decoder overrides it.
    func replies(to conversations: [Conversation], settings: SamplingSettings) throws -> [(text: String, stats: ReplyStats)]

    /// As `replies(to:settings:)`, with conversation i sampled under `seeds[i]` (`settings.seed` is ignored), so
    /// data synthesis can give every prompt and stage its own seed: a reply then depends neither on its batch-mates
    /// nor on where an interrupted run resumed.
    func replies(to conversations: [Conversation], settings: SamplingSettings, seeds: [UInt64]) throws -> [(text: String, stats: ReplyStats)]
}

extension ChatEngine {
    public func replies(to conversations: [Conversation], settings: SamplingSettings) throws -> [(text: String, stats: ReplyStats)] {
        try conversations.map { conversation in
            var text = ""
            let stats = try reply(to: conversation, settings: settings) { piece in text += piece; return true }
            return (text, stats)
        }
    }

    public func replies(to conversations: [Conversation], settings: SamplingSettings, seeds: [UInt64]) throws -> [(text: String, stats: ReplyStats)] {
        precondition(seeds.count == conversations.count, "one seed per conversation")
        return try zip(conversations, seeds).flatMap { conversation, seed in
            var s = settings
            s.seed = seed
            return try replies(to: [conversation], settings: s)
        }
    }
}
