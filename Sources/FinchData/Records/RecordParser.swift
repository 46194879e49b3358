import Foundation

/// Turns one decoded JSON object into a validated `Record.Body`, naming the field on error.
enum RecordParser {
    static func detect(_ o: [String: Any], _ loc: SourceLocation) throws -> RecordFormat {
        if o["chosen"] != nil || o["rejected"] != nil { return .preference }
        if o["messages"] != nil || o["conversations"] != nil { return .chat }
        if o["instruction"] != nil || o["output"] != nil { return .alpaca }
        if o["prompt"] != nil { return .prompt }
        if o["text"] != nil { return .text }
        throw RecordError(loc, "cannot tell the record format from fields \(o.keys.sorted()); pass --format")
    }

    static func body(_ o: [String: Any], format: RecordFormat, _ loc: SourceLocation) throws -> Record.Body {
        switch format {
        case .alpaca:
            return .chat(try alpacaTurns(o, loc, needOutput: true))
        case .chat:
            let m = try messages(o, loc)
            guard m.contains(where: { $0.role == .assistant }) else { throw RecordError(loc, field: "messages", "messages: no assistant turn") }
            return .chat(m)
        case .preference:
            return try preference(o, loc)
        case .prompt:
            return .prompt(try promptTurns(o, loc))
        case .text:
            let t = try string(o, "text", loc)
            return .text(t)
        }
    }

    // MARK: formats

    static func alpacaTurns(_ o: [String: Any], _ loc: SourceLocation, needOutput: Bool) throws -> [Message] {
        let instruction = try string(o, "instruction", loc)
        let input = try string(o, "input", loc, required: false, allowEmpty: true) ?? ""
        var user = instruction
        if !input.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { user += "\n\n" + input }
        var turns: [Message] = []
        if let system = try string(o, "system", loc, required: false, allowEmpty: true), !system.isEmpty { turns.append(Message(.system, system)) }
        turns.append(Message(.user, user))
        if needOutput { turns.append(Message(.assistant, try string(o, "output", loc))) }
        return turns
    }

    static func promptTurns(_ o: [String: Any], _ loc: SourceLocation) throws -> [Message] {
        var turns: [Message]
        if let p = o["prompt"] {
            turns = try promptValue(p, "prompt", loc)
        } else if o["messages"] != nil || o["conversations"] != nil {
            turns = try messages(o, loc)
            if turns.last?.role == .assistant { turns.removeLast() }
        } else if o["instruction"] != nil {
            turns = try alpacaTurns(o, loc, needOutput: false)
        } else {
            throw RecordError(loc, field: "prompt", "missing field \"prompt\"")
        }
        guard turns.last?.role == .user else { throw RecordError(loc, field: "prompt", "prompt must end with a user turn") }
        return turns
    }

    static func promptValue(_ p: Any, _ field: String, _ loc: SourceLocation) throws -> [Message] {
        if let s = p as? String {
            guard !s.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw RecordError(loc, field: field, "field \"\(field)\" is empty") }
            if HHTranscript.looks(s) {
                let turns = HHTranscript.parse(s)
                if let bad = turns.firstIndex(where: { $0.content.isEmpty && $0.role != .assistant }) {
                    throw RecordError(loc, field: field, "\(field): turn \(bad) is empty")
                }
                return turns
            }
            return [Message(.user, s)]
        }
        if p is [Any] { return try messageList(p, field, loc) }
        throw RecordError(loc, field: field, "field \"\(field)\" must be a string or a list of messages, found \(typeName(p))")
    }

    static func preference(_ o: [String: Any], _ loc: SourceLocation) throws -> Record.Body {
        guard let c = o["chosen"] else { throw RecordError(loc, field: "chosen", "missing field \"chosen\"") }
        guard let r = o["rejected"] else { throw RecordError(loc, field: "rejected", "missing field \"rejected\"") }
        var prompt: [Message]
        let chosen: String, rejected: String
        if let p = o["prompt"] {
            prompt = try promptValue(p, "prompt", loc)
            chosen = try reply(c, "chosen", prompt: prompt, loc)
            rejected = try reply(r, "rejected", prompt: prompt, loc)
        } else {
            // Whole conversations (HH transcripts or message lists): the prompt is everything before the last assistant turn.
            let ct = try promptValue(c, "chosen", loc), rt = try promptValue(r, "rejected", loc)
            guard let cl = ct.last, cl.role == .assistant, let rl = rt.last, rl.role == .assistant else {
                throw RecordError(loc, field: "chosen", "chosen and rejected must end with an assistant turn")
            }
            guard Array(ct.dropLast()) == Array(rt.dropLast()) else {
                throw RecordError(loc, field: "rejected", "chosen and rejected differ before the final assistant turn")
            }
            prompt = Array(ct.dropLast()); chosen = cl.content; rejected = rl.content
        }
        if prompt.last?.role == .assistant { prompt.removeLast() }
        guard prompt.last?.role == .user else { throw RecordError(loc, field: "prompt", "prompt must end with a user turn") }
        for (name, v) in [("chosen", chosen), ("rejected", rejected)] where v.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw RecordError(loc, field: name, "field \"\(name)\" is empty")
        }
        guard chosen != rejected else { throw RecordError(loc, field: "rejected", "chosen and rejected are identical") }
        return .preference(prompt: prompt, chosen: chosen, rejected: rejected)
    }

    /// A reply given as a string (leading whitespace of HH replies trimmed) or as messages (the final assistant turn).
    static func reply(_ v: Any, _ field: String, prompt: [Message], _ loc: SourceLocation) throws -> String {
        if let s = v as? String { return s.trimmingCharacters(in: .whitespacesAndNewlines) }
        let m = try messageList(v, field, loc)
        guard let last = m.last, last.role == .assistant else {
            throw RecordError(loc, field: field, "\(field): last message must be an assistant turn")
        }
        return last.content
    }

    // MARK: fields

    static let roleAliases: [String: Role] = ["system": .system, "user": .user, "human": .user, "assistant": .assistant,
                                              "gpt": .assistant, "bot": .assistant, "model": .assistant]

    static func messages(_ o: [String: Any], _ loc: SourceLocation) throws -> [Message] {
        if let m = o["messages"] { return try messageList(m, "messages", loc) }
        if let m = o["conversations"] { return try messageList(m, "conversations", loc) }
        throw RecordError(loc, field: "messages", "missing field \"messages\"")
    }

    static func messageList(_ v: Any, _ field: String, _ loc: SourceLocation) throws -> [Message] {
        guard let list = v as? [Any] else { throw RecordError(loc, field: field, "field \"\(field)\" must be a list of messages, found \(typeName(v))") }
        guard !list.isEmpty else { throw RecordError(loc, field: field, "field \"\(field)\" is empty") }
        var out: [Message] = []
        for (i, item) in list.enumerated() {
            let f = "\(field)[\(i)]"
            guard let m = item as? [String: Any] else { throw RecordError(loc, field: f, "\(f) must be an object, found \(typeName(item))") }
            let roleName = try string(m, m["role"] != nil ? "role" : "from", loc, prefix: f)
            guard let role = roleAliases[roleName.lowercased()] else { throw RecordError(loc, field: "\(f).role", "\(f).role: unknown role \"\(roleName)\"") }
            let content = try string(m, m["content"] != nil ? "content" : "value", loc, prefix: f, allowEmpty: role != .assistant)
            if role == .system && i != 0 { throw RecordError(loc, field: f, "\(f): a system turn must come first") }
            out.append(Message(role, content))
        }
        return out
    }

    /// A string field. Missing → nil when not required; empty → error unless allowed.
    static func string(_ o: [String: Any], _ key: String, _ loc: SourceLocation, required: Bool = true, allowEmpty: Bool = false,
                       prefix: String? = nil) throws -> String? {
        let name = prefix.map { "\($0).\(key)" } ?? key
        guard let v = o[key], !(v is NSNull) else {
            if required { throw RecordError(loc, field: name, "missing field \"\(name)\"") }
            return nil
        }
        guard let s = v as? String else { throw RecordError(loc, field: name, "field \"\(name)\" must be a string, found \(typeName(v))") }
        if !allowEmpty && isBlank(s) {
            throw RecordError(loc, field: name, "field \"\(name)\" is empty")
        }
        return s
    }

    static func string(_ o: [String: Any], _ key: String, _ loc: SourceLocation, prefix: String? = nil, allowEmpty: Bool = false) throws -> String {
        try string(o, key, loc, required: true, allowEmpty: allowEmpty, prefix: prefix)!
    }

    /// Only whitespace (checked on UTF-8 bytes; Foundation trimming is slow on Linux).
    static func isBlank(_ s: String) -> Bool {
        s.unicodeScalars.allSatisfy { $0.properties.isWhitespace }   // stops at the first non-blank
    }

    static func typeName(_ v: Any) -> String {
        switch v {
        case is String: return "string"
        case is [Any]: return "list"
        case is [String: Any]: return "object"
        case is NSNull: return "null"
        case let n as NSNumber: return String(cString: n.objCType) == "c" ? "boolean" : "number"
        default: return "\(type(of: v))"
        }
    }
}

extension Record {
    /// A prompt field — a string, an HH transcript or a message list — as turns, parsed as every record format
    /// parses its prompt (for readers of other record shapes, such as KTO's unpaired records).
    public static func promptTurns(_ value: Any, field: String, at location: SourceLocation) throws -> [Message] {
        try RecordParser.promptValue(value, field, location)
    }

    /// A reply field — a string (trimmed) or messages ending with an assistant turn — as text.
    public static func replyText(_ value: Any, field: String, at location: SourceLocation) throws -> String {
        try RecordParser.reply(value, field, prompt: [], location)
    }
}
