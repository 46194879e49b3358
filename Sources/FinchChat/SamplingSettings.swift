import Foundation

/// How the next token is chosen. `temperature == 0` means greedy decoding.
public struct SamplingSettings: Equatable, Sendable {
    /// Softmax temperature; 0 = greedy (always the most likely token).
    public var temperature: Float = 0.7
    /// Keep only the k most likely tokens; 0 = off.
    public var topK: Int = 40
    /// Keep the smallest set of tokens whose probabilities sum to at least p; 1 = off.
    public var topP: Float = 0.95
    /// Drop tokens whose probability is below min_p × the top probability; 0 = off.
    public var minP: Float = 0.05
    /// CTRL-style penalty (> 1 discourages tokens already in the context); 1 = off.
    public var repetitionPenalty: Float = 1.1
    /// Maximum number of new tokens in one reply.
    public var maxTokens: Int = 512
    /// Random seed; nil = a fresh random seed for every reply. The same seed and conversation give the same reply.
    public var seed: UInt64? = nil
    /// Generation stops when one of these strings appears (it is not part of the reply).
    public var stop: [String] = []

    public init() {}

    /// The keys `/set` and `apply(key:value:)` accept, in display order.
    public static let keys = ["temperature", "top_k", "top_p", "min_p", "repetition_penalty", "max_tokens", "seed", "stop"]

    /// Other spellings people type (llama.cpp / Ollama / Hugging Face names).
    static let aliases = ["temp": "temperature", "topk": "top_k", "topp": "top_p", "minp": "min_p",
                          "repeat_penalty": "repetition_penalty", "max_new_tokens": "max_tokens",
                          "num_predict": "max_tokens"]

    /// Sets one value from text, validating it. `stop+=TEXT` (key `stop+`) appends a stop string.
    public mutating func apply(key rawKey: String, value: String) throws {
        let lowered = rawKey.lowercased()
        let key = Self.aliases[lowered] ?? lowered
        func number<T: LosslessStringConvertible>(_ type: T.Type) throws -> T {
            guard let v = T(value.trimmingCharacters(in: .whitespaces)) else {
                throw SettingsError.invalid(key: key, value: value, reason: "not a number")
            }
            return v
        }
        func check(_ ok: Bool, _ reason: String) throws {
            if !ok { throw SettingsError.invalid(key: key, value: value, reason: reason) }
        }
        switch key {
        case "temperature":
            let v = try number(Float.self); try check(v >= 0 && v.isFinite, "must be >= 0 (0 = greedy)")
            temperature = v
        case "top_k":
            let v = try number(Int.self); try check(v >= 0, "must be >= 0 (0 = off)")
            topK = v
        case "top_p":
            let v = try number(Float.self); try check(v > 0 && v <= 1, "must be in (0, 1] (1 = off)")
            topP = v
        case "min_p":
            let v = try number(Float.self); try check(v >= 0 && v < 1, "must be in [0, 1) (0 = off)")
            minP = v
        case "repetition_penalty":
            let v = try number(Float.self); try check(v > 0 && v.isFinite, "must be > 0 (1 = off)")
            repetitionPenalty = v
        case "max_tokens":
            let v = try number(Int.self); try check(v >= 1, "must be >= 1")
            maxTokens = v
        case "seed":
            if ["random", "none", "off", ""].contains(value.lowercased()) { seed = nil; return }
            guard let v = UInt64(value) else {
                throw SettingsError.invalid(key: key, value: value, reason: "must be a non-negative integer or 'random'")
            }
            seed = v
        case "stop":
            stop = value.isEmpty ? [] : [value]
        case "stop+":
            try check(!value.isEmpty, "an empty stop string would stop at once")
            stop.append(value)
        default:
            throw SettingsError.unknownKey(rawKey)
        }
    }

    /// Applies `key=value` assignments as typed after `/set` (quotes and `\n`-style escapes allowed:
    /// `stop="\n\nUser:"`). All assignments are checked before any is applied.
    public mutating func apply(assignments text: String) throws -> [String] {
        let words = try ShellWords.split(text)
        guard !words.isEmpty else { throw SettingsError.empty }
        var updated = self
        var changed: [String] = []
        for word in words {
            guard let eq = word.firstIndex(of: "=") else { throw SettingsError.notAssignment(word) }
            let key = String(word[..<eq]), value = String(word[word.index(after: eq)...])
            guard !key.isEmpty else { throw SettingsError.notAssignment(word) }
            try updated.apply(key: key, value: value)
            let canonical = Self.aliases[key.lowercased()] ?? key.lowercased()
            changed.append(canonical == "stop+" ? "stop" : canonical)
        }
        self = updated
        return changed
    }

    /// The value of one key as text (as `/show` prints it).
    public func value(of key: String) -> String {
        switch key {
        case "temperature": return temperature == 0 ? "0 (greedy)" : "\(temperature)"
        case "top_k": return topK == 0 ? "0 (off)" : "\(topK)"
        case "top_p": return topP >= 1 ? "1 (off)" : "\(topP)"
        case "min_p": return minP == 0 ? "0 (off)" : "\(minP)"
        case "repetition_penalty": return repetitionPenalty == 1 ? "1 (off)" : "\(repetitionPenalty)"
        case "max_tokens": return "\(maxTokens)"
        case "seed": return seed.map { "\($0)" } ?? "random"
        case "stop": return stop.isEmpty ? "(none)" : stop.map { JSONText.quote($0) }.joined(separator: ", ")
        default: return "?"
        }
    }

    /// `key=value` lines for every setting.
    public var summary: [String] { Self.keys.map { "\($0)=\(value(of: $0))" } }

    /// The settings with the seed changed for attempt number `attempt` (0 = first reply, n = n-th `/retry`),
    /// so retries give new answers while a fixed seed stays reproducible.
    public func forAttempt(_ attempt: Int) -> SamplingSettings {
        guard attempt > 0, let seed else { return self }
        var copy = self
        copy.seed = seed &+ UInt64(attempt) &* 0x9E37_79B9_7F4A_7C15
        return copy
    }

    /// Defaults from a model folder's `generation_config.json` (Hugging Face fields), on top of `base`.
    /// A missing file gives `base` unchanged; a malformed one throws naming the file and field.
    public static func modelDefaults(folder: URL, base: SamplingSettings = SamplingSettings()) throws -> SamplingSettings {
        let url = folder.appendingPathComponent("generation_config.json")
        guard FileManager.default.fileExists(atPath: url.path) else { return base }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) } catch {
            throw SettingsError.badFile(url.path, "not valid JSON (\(error.localizedDescription))")
        }
        guard let json = object as? [String: Any] else { throw SettingsError.badFile(url.path, "not a JSON object") }
        var settings = base
        let fields: [(String, String)] = [("temperature", "temperature"), ("top_k", "top_k"), ("top_p", "top_p"),
                                          ("min_p", "min_p"), ("repetition_penalty", "repetition_penalty"),
                                          ("max_new_tokens", "max_tokens")]
        for (field, key) in fields {
            guard let raw = json[field], !(raw is NSNull) else { continue }
            guard let n = raw as? NSNumber else { throw SettingsError.badFile(url.path, "field \(field) is not a number") }
            do { try settings.apply(key: key, value: n.stringValue) } catch {
                throw SettingsError.badFile(url.path, "field \(field): \(error)")
            }
        }
        if let doSample = json["do_sample"] as? Bool, !doSample { settings.temperature = 0 }
        return settings
    }
}

/// A `/set` or option value that cannot be used; the message names the key.
public enum SettingsError: Error, Equatable, CustomStringConvertible {
    case unknownKey(String)
    case invalid(key: String, value: String, reason: String)
    case notAssignment(String)
    case empty
    case badFile(String, String)

    public var description: String {
        switch self {
        case .unknownKey(let k):
            return "unknown setting '\(k)' (known: \(SamplingSettings.keys.joined(separator: ", ")))"
        case .invalid(let k, let v, let reason):
            return "\(k)=\(v): \(reason)"
        case .notAssignment(let w):
            return "'\(w)' is not key=value (example: /set temperature=0.8 top_k=40)"
        case .empty:
            return "nothing to set (example: /set temperature=0.8 top_k=40)"
        case .badFile(let path, let reason):
            return "\(path): \(reason)"
        }
    }
}
