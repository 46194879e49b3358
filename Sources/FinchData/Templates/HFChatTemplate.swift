import Foundation

/// A Hugging Face model's own Jinja chat template, rendered as transformers' `apply_chat_template(...,
/// tokenize=False)` renders it: the context holds `messages`, `tools`, `documents`, `add_generation_prompt`, the
/// tokenizer's special-token strings (`bos_token`, `eos_token`, ...) and any extra keyword arguments.
///
/// As transformers does, message keys whose value is null are dropped, and a message's reasoning given as
/// `reasoning_content`, `thinking` or `reasoning` is visible under both `thinking` and `reasoning_content`.
public struct HFChatTemplate: Sendable {
    public let name: String
    public let source: String
    public let bosToken: String?
    public let eosToken: String?
    /// Other special-token strings put in the context (`unk_token`, `pad_token`, ...).
    public let extraSpecialTokens: [String: String]
    public let template: JinjaTemplate

    public init(source: String, name: String, bosToken: String?, eosToken: String?,
                extraSpecialTokens: [String: String] = [:]) throws {
        self.name = name
        self.source = source
        self.bosToken = bosToken
        self.eosToken = eosToken
        self.extraSpecialTokens = extraSpecialTokens
        template = try JinjaTemplate(source: source, name: name)
    }

    /// Renders JSON-like messages (`[String: Any]` as `JSONSerialization` returns them). Swift dictionaries have
    /// no key order, so keys get a fixed order (role, tool_call_id, id, type, name, description, content, ... then
    /// sorted; see `JinjaValue.init(json:)`); use `renderTracking` with `JinjaValue`s (e.g. from
    /// `JinjaValue.parseJSON`) to keep a document's own order. Order matters only where a template prints whole
    /// dictionaries, e.g. `tools | tojson`.
    public func render(messages: [[String: Any]], addGenerationPrompt: Bool, tools: [[String: Any]]? = nil,
                       extra: [String: Any] = [:], now: Date = Date()) throws -> String {
        try renderTracking(messages: messages.map { JinjaValue(json: $0) }, addGenerationPrompt: addGenerationPrompt,
                           tools: tools.map { $0.map { JinjaValue(json: $0) } },
                           extra: extra.mapValues { JinjaValue(json: $0) }, now: now).text
    }

    /// Renders ordered values and reports the `{% generation %}` spans (the assistant mask transformers derives
    /// with `return_assistant_tokens_mask=True`).
    public func renderTracking(messages: [JinjaValue], addGenerationPrompt: Bool, tools: [JinjaValue]? = nil,
                               documents: [JinjaValue]? = nil, extra: [String: JinjaValue] = [:],
                               now: Date = Date()) throws -> JinjaRendering {
        var context: [String: JinjaValue] = [:]
        for (k, v) in extraSpecialTokens { context[k] = .string(v) }
        if let b = bosToken { context["bos_token"] = .string(b) }
        if let e = eosToken { context["eos_token"] = .string(e) }
        for (k, v) in extra { context[k] = v }
        context["messages"] = .array(messages.map(HFChatTemplate.normalizeMessage))
        context["tools"] = tools.map { .array($0) } ?? JinjaValue.none
        context["documents"] = documents.map { .array($0) } ?? JinjaValue.none
        context["add_generation_prompt"] = .bool(addGenerationPrompt)
        return try template.renderTracking(context, now: now)
    }

    static let reasoningFields = ["reasoning_content", "thinking", "reasoning"]

    /// transformers' `_normalize_chat_messages` (drop null-valued keys) + `_alias_reasoning_fields`.
    static func normalizeMessage(_ m: JinjaValue) -> JinjaValue {
        guard case .dict(let d) = m else { return m }
        var kept = JinjaDict()
        for (k, v) in d.pairs where !v.isNone && !v.isUndefined { kept[k] = v }
        guard let reasoning = reasoningFields.lazy.compactMap({ kept[$0] }).first else { return .dict(kept) }
        var out = JinjaDict()
        out["thinking"] = reasoning
        for (k, v) in kept.pairs { out[k] = v }
        out["reasoning_content"] = reasoning
        return .dict(out)
    }

    /// Loads the chat template of a Hugging Face model folder: `chat_template.jinja`, else `chat_template.json`,
    /// else `tokenizer_config.json`'s `chat_template` (a string, or a list of `{name, template}` from which
    /// "default" is taken). Special tokens come from `tokenizer_config.json` (strings or `{"content": ...}`).
    /// Returns nil when the folder has no template.
    public static func load(folder: URL) throws -> HFChatTemplate? {
        let fm = FileManager.default
        var config = JinjaDict()
        let configURL = folder.appendingPathComponent("tokenizer_config.json")
        if fm.fileExists(atPath: configURL.path) {
            let text = try String(contentsOf: configURL, encoding: .utf8)
            if case .dict(let d) = try JinjaValue.parseJSON(text) { config = d }
        }
        func templateFrom(_ v: JinjaValue?) -> String? {
            switch v {
            case .string(let s)?: return s
            case .array(let list)?:
                var first: String? = nil
                for item in list {
                    guard case .dict(let e) = item, case .string(let t)? = e["template"] else { continue }
                    if case .string("default")? = e["name"] { return t }
                    if first == nil { first = t }
                }
                return first
            default: return nil
            }
        }
        var source: String? = nil, sourceFile = configURL
        let jinjaURL = folder.appendingPathComponent("chat_template.jinja")
        let jsonURL = folder.appendingPathComponent("chat_template.json")
        if fm.fileExists(atPath: jinjaURL.path) {
            source = try String(contentsOf: jinjaURL, encoding: .utf8)
            sourceFile = jinjaURL
        } else if fm.fileExists(atPath: jsonURL.path),
                  case .dict(let d) = try JinjaValue.parseJSON(try String(contentsOf: jsonURL, encoding: .utf8)) {
            source = templateFrom(d["chat_template"])
            if source != nil { sourceFile = jsonURL }
        }
        if source == nil { source = templateFrom(config["chat_template"]) }
        guard let src = source else { return nil }
        func token(_ key: String) -> String? {
            switch config[key] {
            case .string(let s)?: return s
            case .dict(let d)?: if case .string(let s)? = d["content"] { return s }; return nil
            default: return nil
            }
        }
        var extra: [String: String] = [:]
        for key in ["unk_token", "pad_token", "sep_token", "cls_token", "mask_token"] {
            if let t = token(key) { extra[key] = t }
        }
        return try HFChatTemplate(source: src, name: sourceFile.lastPathComponent == "chat_template.jinja" ? sourceFile.path : sourceFile.path + ": chat_template", bosToken: token("bos_token"),
                                  eosToken: token("eos_token"), extraSpecialTokens: extra)
    }
}
