import Foundation
import FinchGGUF

/// A model's own Jinja chat template, turned into Finch's tagged segments.
///
/// The template is rendered as transformers' `apply_chat_template` renders it. Which text is trained comes from
/// rendering prefixes of the conversation: before each assistant turn k the conversation up to k with the
/// generation prompt (P_k), then with turn k (F_k). F_k − P_k is the assistant's turn; it is trained up to and
/// including its end-of-turn token, and what follows the token (a newline, say) is context. Everything between
/// turns is context. A template whose renders are not prefixes of each other (one that rewrites earlier turns
/// once a later one exists) cannot be masked this way: the error names the turn, and `--template` picks a
/// declarative template instead.
public struct JinjaChatSpec: Codable, Equatable, Sendable {
    /// The Jinja source.
    public var source: String
    /// Where it came from (tokenizer_config.json, chat_template.jinja, a GGUF file), for messages.
    public var origin: String
    public var bosToken: String?
    public var eosToken: String?
    /// The text that closes an assistant turn (found by rendering a probe conversation).
    public var endOfTurn: String

    /// Compiled templates, shared by every copy of a spec (compiling is far slower than rendering).
    private static let cache = CompiledCache()

    func compiled() throws -> HFChatTemplate {
        try Self.cache.get(self) { try HFChatTemplate(source: source, name: origin, bosToken: bosToken, eosToken: eosToken) }
    }

    /// The rendered text of a conversation, as transformers renders it.
    public func text(_ messages: [Message], addGenerationPrompt: Bool) throws -> String {
        try compiled().render(messages: messages.map { ["role": $0.role.rawValue, "content": $0.content] },
                              addGenerationPrompt: addGenerationPrompt)
    }

    /// The conversation as segments (see the type's comment).
    public func segments(_ messages: [Message], addGenerationPrompt: Bool) throws -> [Segment] {
        var out: [Segment] = []
        var done = ""   // text already placed in segments: always a prefix of every later render
        func append(_ text: String, upTo turn: Int, _ what: String) throws -> String {
            guard text.hasPrefix(done) else {
                throw TemplateError(message: "\(origin): the chat template is not prefix-stable at turn \(turn + 1) (\(what)): rendering more of the conversation changes text already rendered, so the loss mask cannot be cut from prefixes; use --template with a declarative template")
            }
            return String(text.dropFirst(done.count))
        }
        for (k, m) in messages.enumerated() where m.role == .assistant {
            let p = try text(Array(messages[..<k]), addGenerationPrompt: true)
            let context = try append(p, upTo: k, "its prompt")
            if !context.isEmpty { out.append(Segment(context, .prompt, turn: k)) }
            done = p
            let f = try text(Array(messages[...k]), addGenerationPrompt: false)
            let reply = try append(f, upTo: k, "the assistant's reply")
            // Trained: up to and including the end-of-turn text; what follows it is context.
            if let r = reply.range(of: endOfTurn) {
                out.append(Segment(String(reply[..<r.upperBound]), .response, turn: k))
                let after = String(reply[r.upperBound...])
                if !after.isEmpty { out.append(Segment(after, .prompt, turn: k)) }
            } else {
                out.append(Segment(reply, .response, turn: k))
            }
            done = f
        }
        let last = try text(messages, addGenerationPrompt: addGenerationPrompt)
        let rest = try append(last, upTo: messages.count - 1, "the end of the conversation")
        if !rest.isEmpty { out.append(Segment(rest, .prompt, turn: messages.count)) }
        return out
    }

    /// Strings that commonly close a turn, tried after the model's own EOS text.
    static let knownEndOfTurn = ["<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "<|endoftext|>", "</s>", "<|end_of_text|>", "<｜end▁of▁sentence｜>"]

    /// A spec for `source`, with the end-of-turn text found by rendering a probe conversation.
    public init(source: String, origin: String, bosToken: String?, eosToken: String?, extraEndOfTurn: [String] = []) throws {
        self.source = source; self.origin = origin; self.bosToken = bosToken; self.eosToken = eosToken
        self.endOfTurn = ""
        let probe = [Message(.user, "Hello"), Message(.assistant, "P7Q-reply")]
        let full = try text(probe, addGenerationPrompt: false)
        guard let contentEnd = full.range(of: "P7Q-reply", options: .backwards)?.upperBound else {
            throw TemplateError(message: "\(origin): the chat template does not render an assistant message's content")
        }
        let after = full[contentEnd...]
        var best: (String.Index, String)? = nil
        for candidate in extraEndOfTurn + [eosToken].compactMap({ $0 }) + Self.knownEndOfTurn where !candidate.isEmpty {
            if let r = after.range(of: candidate), best == nil || r.lowerBound < best!.0 { best = (r.lowerBound, candidate) }
        }
        guard let best else {
            throw TemplateError(message: "\(origin): cannot find the end-of-turn token after an assistant reply (rendered \(String(after).debugDescription)); use --template with a declarative template")
        }
        endOfTurn = best.1
    }
}

private final class CompiledCache: @unchecked Sendable {
    private var templates: [String: HFChatTemplate] = [:]
    private let lock = NSLock()
    func get(_ spec: JinjaChatSpec, make: () throws -> HFChatTemplate) throws -> HFChatTemplate {
        let key = spec.source + "\u{0}" + (spec.bosToken ?? "") + "\u{0}" + (spec.eosToken ?? "")
        lock.lock(); defer { lock.unlock() }
        if let t = templates[key] { return t }
        let t = try make()
        templates[key] = t
        return t
    }
}

extension ChatTemplate {
    /// A template driven by a model's own Jinja source.
    public static func jinja(_ spec: JinjaChatSpec, name: String) -> ChatTemplate {
        // `render` uses the Jinja source; the assistant suffix (what a trained reply ends with) is the end-of-turn text.
        ChatTemplate(name: name, description: "the model's own chat template (\(spec.origin))",
                     assistant: Affix(suffix: spec.endOfTurn), endOfTurn: spec.endOfTurn,
                     specialTokens: [spec.bosToken, spec.eosToken, spec.endOfTurn].compactMap { $0 }.filter { !$0.isEmpty },
                     jinja: spec)
    }

    /// The Jinja template a Hugging Face folder or GGUF file brings (tokenizer_config.json `chat_template`,
    /// chat_template.jinja, GGUF `tokenizer.chat_template`), nil when it brings none.
    public static func modelJinja(_ url: URL) throws -> ChatTemplate? {
        if url.pathExtension.lowercased() == "gguf" {
            let file = try GGUFFile(contentsOf: url)
            guard let source = file.metadata["tokenizer.chat_template"]?.string else { return nil }
            let spec = try JinjaChatSpec(source: source, origin: url.path, bosToken: file.specialTokenText("bos_token_id"),
                                         eosToken: file.specialTokenText("eos_token_id"),
                                         extraEndOfTurn: [file.specialTokenText("eot_token_id")].compactMap { $0 })
            return .jinja(spec, name: "model:" + url.deletingPathExtension().lastPathComponent)
        }
        guard let t = try HFChatTemplate.load(folder: url) else { return nil }
        let spec = try JinjaChatSpec(source: t.source, origin: t.name, bosToken: t.bosToken, eosToken: t.eosToken)
        return .jinja(spec, name: "model:" + url.lastPathComponent)
    }
}

extension GGUFFile {
    /// The vocabulary text of a special token named by `tokenizer.ggml.KEY` (`bos_token_id`, `eos_token_id`, …).
    public func specialTokenText(_ key: String) -> String? {
        guard let tokens = metadata["tokenizer.ggml.tokens"]?.array,
              let id = metadata["tokenizer.ggml.\(key)"]?.int, id >= 0, id < tokens.count else { return nil }
        return tokens[id].string
    }
}
