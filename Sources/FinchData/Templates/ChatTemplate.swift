import Foundation

/// Text placed before and after a turn's content.
public struct Affix: Codable, Equatable, Sendable {
    public var prefix: String
    public var suffix: String
    public init(prefix: String = "", suffix: String = "") { self.prefix = prefix; self.suffix = suffix }
}

/// Whether a rendered piece of text is trained (response) or context (prompt).
public enum SegmentKind: String, Codable, Sendable { case prompt, response }

/// A piece of rendered conversation. Segments are tokenized one by one (never across a boundary).
public struct Segment: Equatable, Sendable {
    public var text: String
    public var kind: SegmentKind
    /// Index of the message this segment belongs to (-1 for the conversation's BOS / default system).
    public var turn: Int
    public init(_ text: String, _ kind: SegmentKind, turn: Int) { self.text = text; self.kind = kind; self.turn = turn }
}

/// A declarative chat template (a JSON file in `prompts/`, see prompts/README.md).
public struct ChatTemplate: Codable, Equatable, Sendable {
    public var name: String
    public var description: String?
    /// Put BOS before the conversation.
    public var bos: Bool
    public var system: Affix?
    /// When set, the system prompt goes inside the first user turn, wrapped by this (Llama 2).
    public var systemInFirstUser: Affix?
    public var user: Affix
    public var assistant: Affix
    /// The token that closes an assistant turn; must be one piece of the tokenizer and is always trained.
    public var endOfTurn: String
    /// Strings mapped straight to piece ids when the tokenizer has them.
    public var specialTokens: [String]
    /// Name of `system/NAME.txt` used when a conversation has no system turn.
    public var defaultSystem: String?
    /// The default system prompt text (resolved from `defaultSystem` at load; stored inline so a saved copy is self-contained).
    public var defaultSystemText: String?
    /// The model's own Jinja chat template (Hugging Face `chat_template`, GGUF `tokenizer.chat_template`). When set,
    /// `render` renders prefixes of the conversation with it (see ModelChatTemplate.swift) and the affixes are unused.
    public var jinja: JinjaChatSpec?

    enum CodingKeys: String, CodingKey {
        case name, description, bos, system, user, assistant
        case systemInFirstUser = "system_in_first_user", endOfTurn = "end_of_turn", specialTokens = "special_tokens"
        case defaultSystem = "default_system", defaultSystemText = "default_system_text", jinja
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decodeIfPresent(String.self, forKey: .description)
        bos = try c.decodeIfPresent(Bool.self, forKey: .bos) ?? false
        system = try c.decodeIfPresent(Affix.self, forKey: .system)
        systemInFirstUser = try c.decodeIfPresent(Affix.self, forKey: .systemInFirstUser)
        user = try c.decode(Affix.self, forKey: .user)
        assistant = try c.decode(Affix.self, forKey: .assistant)
        endOfTurn = try c.decode(String.self, forKey: .endOfTurn)
        specialTokens = try c.decodeIfPresent([String].self, forKey: .specialTokens) ?? []
        defaultSystem = try c.decodeIfPresent(String.self, forKey: .defaultSystem)
        defaultSystemText = try c.decodeIfPresent(String.self, forKey: .defaultSystemText)
        jinja = try c.decodeIfPresent(JinjaChatSpec.self, forKey: .jinja)
    }

    public init(name: String, description: String? = nil, bos: Bool = false, system: Affix? = nil, systemInFirstUser: Affix? = nil,
                user: Affix = Affix(), assistant: Affix = Affix(), endOfTurn: String, specialTokens: [String] = [],
                defaultSystem: String? = nil, defaultSystemText: String? = nil, jinja: JinjaChatSpec? = nil) {
        self.name = name; self.description = description; self.bos = bos; self.system = system
        self.systemInFirstUser = systemInFirstUser; self.user = user; self.assistant = assistant; self.endOfTurn = endOfTurn
        self.specialTokens = specialTokens; self.defaultSystem = defaultSystem; self.defaultSystemText = defaultSystemText
        self.jinja = jinja
    }

    /// Renders a conversation into tagged segments.
    /// - Parameters:
    ///   - messages: the turns; a leading system turn overrides the default system prompt.
    ///   - useDefaultSystem: insert `defaultSystemText` when there is no system turn.
    ///   - addGenerationPrompt: end with the assistant prefix, ready for the model to answer.
    public func render(_ messages: [Message], useDefaultSystem: Bool = true, addGenerationPrompt: Bool = false) throws -> [Segment] {
        if let jinja { return try jinja.segments(messages, addGenerationPrompt: addGenerationPrompt) }
        var out: [Segment] = []
        if bos { out.append(Segment("<s>", .prompt, turn: -1)) }
        var systemText: String? = nil
        var systemTurn = -1
        var first = 0
        if let m = messages.first, m.role == .system { systemText = m.content; systemTurn = 0; first = 1 }
        else if useDefaultSystem { systemText = defaultSystemText }
        var pendingSystem: String? = nil
        if let s = systemText {
            if let wrap = systemInFirstUser { pendingSystem = wrap.prefix + s + wrap.suffix }
            else {
                let a = system ?? user
                out.append(Segment(a.prefix + s + a.suffix, .prompt, turn: systemTurn))
            }
        }
        for i in first..<messages.count {
            let m = messages[i]
            switch m.role {
            case .system, .user:
                var content = m.content
                if let p = pendingSystem, m.role == .user { content = p + content; pendingSystem = nil }
                let a = m.role == .system ? (system ?? user) : user
                out.append(Segment(a.prefix + content + a.suffix, .prompt, turn: i))
            case .assistant:
                if !assistant.prefix.isEmpty { out.append(Segment(assistant.prefix, .prompt, turn: i)) }
                out.append(Segment(m.content + assistant.suffix, .response, turn: i))
            }
        }
        if addGenerationPrompt && !assistant.prefix.isEmpty {
            out.append(Segment(assistant.prefix, .prompt, turn: messages.count))
        }
        return out
    }

    /// The rendered text of segments (for display / inspection).
    public static func text(_ segments: [Segment]) -> String { segments.map(\.text).joined() }
}
