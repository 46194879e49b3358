import Foundation
import FinchModel
import Yams

/// A run's configuration: command defaults, overridden by a YAML recipe (`--config recipe.yaml`),
/// overridden by the flags given on the command line. Keys are the flag names in kebab-case
/// (`learning-rate: 3e-4`, `target-modules: [q_proj, v_proj]`); snake_case keys are accepted and
/// normalised (`learning_rate` → `learning-rate`).
///
/// The command builds `flags` from the options the user actually typed (nil options left out), so a
/// flag always wins over the recipe and the recipe over the defaults. `write(to:)` records the resolved
/// configuration (`config.yaml` and `config.json`) in the run folder.
public struct Recipe {
    /// Where a value came from.
    public enum Source: String, Codable, Sendable {
        case defaultValue = "default", recipe, flag
    }

    /// The resolved key → value map (Int, Double, Bool, String, arrays and maps of those).
    public private(set) var values: [String: Any]
    /// The origin of every resolved value.
    public private(set) var sources: [String: Source]
    /// The recipe file, if one was given.
    public let recipeURL: URL?
    private var lines: [String: Int] = [:]

    /// - Parameters:
    ///   - defaults: the command's defaults.
    ///   - recipe: a YAML file whose top level is a mapping.
    ///   - flags: options given on the command line.
    ///   - knownKeys: when given, a recipe or flag key outside it is an error (typos do not pass silently).
    public init(defaults: [String: Any] = [:], recipe: URL? = nil, flags: [String: Any] = [:],
                knownKeys: Set<String>? = nil) throws {
        recipeURL = recipe
        values = [:]
        sources = [:]
        for (k, v) in try Self.normalised(defaults, origin: "defaults") { values[k] = v; sources[k] = .defaultValue }
        if let url = recipe {
            let (yaml, lines) = try Self.loadYAML(url)
            self.lines = lines
            for (k, v) in yaml {
                if let known = knownKeys, !known.contains(k) {
                    throw TrainingError("\(url.path):\(lines[k] ?? 0): unknown key '\(k)'\(Self.suggestion(k, known))")
                }
                values[k] = v; sources[k] = .recipe
            }
        }
        for (k, v) in try Self.normalised(flags, origin: "command line") {
            if let known = knownKeys, !known.contains(k) {
                throw TrainingError("unknown option '--\(k)'\(Self.suggestion(k, known))")
            }
            values[k] = v; sources[k] = .flag
        }
    }

    /// Reads a YAML recipe: its top-level mapping with kebab-case keys, and the line of each key.
    public static func loadYAML(_ url: URL) throws -> (values: [String: Any], lines: [String: Int]) {
        let text = try UserTextFile.read(url, what: "recipe")
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch {
            throw TrainingError("\(url.path): not valid YAML: \(error)")
        }
        guard let root = node else { return ([:], [:]) }   // empty file
        guard let mapping = root.mapping else {
            throw TrainingError("\(url.path):\(root.mark?.line ?? 1): a recipe must be a mapping of option names to values")
        }
        var values: [String: Any] = [:], lines: [String: Int] = [:]
        for (keyNode, valueNode) in mapping {
            let line = keyNode.mark?.line ?? 0
            guard let raw = keyNode.string else { throw TrainingError("\(url.path):\(line): keys must be option names") }
            let key = normaliseKey(raw)
            if values[key] != nil { throw TrainingError("\(url.path):\(line): '\(raw)' is given twice (as '\(key)')") }
            values[key] = valueNode.any
            lines[key] = line
        }
        return (values, lines)
    }

    // MARK: - Access

    public subscript(key: String) -> Any? { values[Self.normaliseKey(key)] }

    /// `message` (an error naming options as `--key`) with the recipe file and line added for every named option
    /// whose value came from the recipe, so that a bad value in a YAML file is found where it was written.
    public func annotate(_ message: String) -> String {
        var places: [String] = []
        var rest = Substring(message)
        while let r = rest.range(of: "--") {
            let key = String(rest[r.upperBound...].prefix { $0.isLetter || $0.isNumber || $0 == "-" })
            rest = rest[r.upperBound...]
            if !key.isEmpty, sources[key] == .recipe, case let place = "'\(key)' at \(origin(of: key))", !places.contains(place) {
                places.append(place)
            }
        }
        return places.isEmpty ? message : message + " (set in the recipe: " + places.joined(separator: ", ") + ")"
    }

    /// Where a key's value is from, for error messages: `recipe.yaml:12`, `--flag`, or `default`.
    public func origin(of key: String) -> String {
        let k = Self.normaliseKey(key)
        switch sources[k] {
        case .recipe?: return "\(recipeURL?.path ?? "recipe"):\(lines[k] ?? 0)"
        case .flag?: return "--\(k)"
        case .defaultValue?: return "default"
        case nil: return "unset"
        }
    }

    public func string(_ key: String) throws -> String? {
        guard let v = self[key], !(v is NSNull) else { return nil }
        if let s = v as? String { return s }
        if let n = v as? NSNumber { return n.stringValue }
        throw mismatch(key, v, "a string")
    }

    public func int(_ key: String) throws -> Int? {
        guard let v = self[key], !(v is NSNull) else { return nil }
        if let i = v as? Int { return i }
        if let d = v as? Double, d == d.rounded(), abs(d) < 1e15 { return Int(d) }
        if let s = v as? String, let i = Int(s.replacingOccurrences(of: "_", with: "")) { return i }
        throw mismatch(key, v, "an integer")
    }

    public func double(_ key: String) throws -> Double? {
        guard let v = self[key], !(v is NSNull) else { return nil }
        if let d = v as? Double { return d }
        if let i = v as? Int { return Double(i) }
        if let s = v as? String, let d = Double(s) { return d }
        throw mismatch(key, v, "a number")
    }

    public func bool(_ key: String) throws -> Bool? {
        guard let v = self[key], !(v is NSNull) else { return nil }
        if let b = v as? Bool { return b }
        if let s = v as? String {
            switch s.lowercased() { case "true", "yes", "on", "1": return true
            case "false", "no", "off", "0": return false
            default: break }
        }
        throw mismatch(key, v, "true or false")
    }

    /// A list: a YAML sequence, or a comma-separated string (`q_proj,v_proj`) as flags give it.
    public func strings(_ key: String) throws -> [String]? {
        guard let v = self[key], !(v is NSNull) else { return nil }
        if let a = v as? [Any] { return a.map { "\($0)" } }
        if let s = v as? String { return s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        throw mismatch(key, v, "a list")
    }

    /// Decodes the resolved values into a configuration type whose properties are the camelCase forms
    /// of the keys (`learning-rate` → `learningRate`); errors name the key and where its value came from.
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        var camel: [String: Any] = [:]
        for (k, v) in values { camel[Self.camelCase(k)] = v }
        let data = try JSONSerialization.data(withJSONObject: MetricsLog.sanitise(camel))
        do { return try JSONDecoder().decode(T.self, from: data) } catch let DecodingError.typeMismatch(t, ctx) {
            let key = ctx.codingPath.first.map { Self.kebabCase($0.stringValue) } ?? "?"
            throw TrainingError("\(origin(of: key)): '\(key)' must be \(t) (got \(values[key].map { "\($0)" } ?? "nothing"))")
        } catch let DecodingError.keyNotFound(k, _) {
            throw TrainingError("missing required option '\(Self.kebabCase(k.stringValue))'")
        } catch let DecodingError.valueNotFound(t, ctx) {
            let key = ctx.codingPath.first.map { Self.kebabCase($0.stringValue) } ?? "?"
            throw TrainingError("\(origin(of: key)): '\(key)' must be \(t), not null")
        } catch let DecodingError.dataCorrupted(ctx) {
            let key = ctx.codingPath.first.map { Self.kebabCase($0.stringValue) } ?? "?"
            throw TrainingError("\(origin(of: key)): '\(key)': \(ctx.debugDescription)")
        }
    }

    /// The properties of a configuration value as recipe keys (`maxSteps` → `max-steps`; nil optionals
    /// left out): pass a default instance as `defaults:` so every key is resolved and recorded, and
    /// `decode` finds every non-optional property.
    public static func defaults<T: Encodable>(from value: T) throws -> [String: Any] {
        guard case .object(let obj) = try JSONValue(encoding: value) else {
            throw TrainingError("\(T.self) does not encode as a keyed object")
        }
        var out: [String: Any] = [:]
        for (k, v) in obj { out[kebabCase(k)] = v.nativeValue }
        return out
    }

    // MARK: - Recording

    /// The resolved configuration as YAML (keys sorted).
    /// Floats are written as YAML 1.1 floats (`1.0e-03`, `0.9`), which PyYAML and other YAML 1.1 readers read as
    /// numbers; Yams' own `1e-3` is a string to them.
    public func yaml() throws -> String { try Yams.dump(object: Self.yamlFloats(Self.native(values)), sortKeys: true) }

    static func yamlFloats(_ v: Any) -> Any {
        switch v {
        case let m as [String: Any]: return m.mapValues(yamlFloats)
        case let a as [Any]: return a.map(yamlFloats)
        case let d as Double: return YAMLFloat(value: d)
        default: return v
        }
    }

    /// The resolved configuration as JSON (keys sorted, pretty-printed).
    public func json() throws -> Data {
        try JSONSerialization.data(withJSONObject: MetricsLog.sanitise(values), options: [.prettyPrinted, .sortedKeys])
    }

    /// Writes `config.yaml` and `config.json` into the run folder, atomically.
    public func write(to run: RunFolder) throws {
        try AtomicFile.write(Data(try yaml().utf8), to: run.configYAMLURL)
        try AtomicFile.write(try json(), to: run.configJSONURL)
    }

    // MARK: - Keys

    /// `learning_rate` / `Learning-Rate` → `learning-rate`.
    public static func normaliseKey(_ k: String) -> String {
        k.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "_", with: "-").lowercased()
    }

    /// Foundation numbers (from JSON) as Swift Bool / Int / Double, which Yams can represent.
    static func native(_ v: Any) -> Any {
        switch v {
        case let m as [String: Any]: return m.mapValues(native)
        case let a as [Any]: return a.map(native)
        case is Bool, is Int, is Double, is String, is UInt64, is Int64: return v
        case let n as NSNumber:
            switch String(cString: n.objCType) {
            case "c", "B": return n.boolValue
            case "f", "d": return n.doubleValue
            case "Q": return n.uint64Value
            default: return n.intValue
            }
        default: return v
        }
    }

    static func camelCase(_ k: String) -> String {
        let parts = k.split(separator: "-")
        guard let first = parts.first else { return k }
        return String(first) + parts.dropFirst().map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }

    static func kebabCase(_ k: String) -> String {
        var out = ""
        for ch in k {
            if ch.isUppercase { out += "-" + ch.lowercased() } else { out.append(ch) }
        }
        return out
    }

    static func normalised(_ d: [String: Any], origin: String) throws -> [String: Any] {
        var out: [String: Any] = [:]
        for (k, v) in d {
            let n = normaliseKey(k)
            if out[n] != nil { throw TrainingError("\(origin): '\(k)' is given twice (as '\(n)')") }
            out[n] = v
        }
        return out
    }

    private func mismatch(_ key: String, _ v: Any, _ what: String) -> TrainingError {
        TrainingError("\(origin(of: key)): '\(Self.normaliseKey(key))' must be \(what) (got \(v))")
    }

    /// " (did you mean 'x'?)" for the known key closest in edit distance, if close enough.
    static func suggestion(_ k: String, _ known: Set<String>) -> String {
        func distance(_ a: String, _ b: String) -> Int {
            let a = Array(a), b = Array(b)
            var prev = Array(0...b.count)
            for i in 1...max(1, a.count) where !a.isEmpty {
                var cur = [i] + Array(repeating: 0, count: b.count)
                for j in 1...max(1, b.count) where !b.isEmpty {
                    cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
                }
                prev = cur
            }
            return a.isEmpty ? b.count : (b.isEmpty ? a.count : prev[b.count])
        }
        guard let best = known.min(by: { (distance(k, $0), $0) < (distance(k, $1), $1) }),
              distance(k, best) <= max(2, k.count / 3) else { return "" }
        return " (did you mean '\(best)'?)"
    }
}

/// A double written the way YAML 1.1 readers take as a float: a dot in the mantissa, `.inf`, `.nan`.
struct YAMLFloat: NodeRepresentable {
    let value: Double
    func represented() throws -> Node {
        Node(Self.text(value), Tag(.float))
    }
    static func text(_ d: Double) -> String {
        if d.isNaN { return ".nan" }
        if d.isInfinite { return d < 0 ? "-.inf" : ".inf" }
        var s = "\(d)"                                   // shortest round-trip form: "0.9", "1e-08", "16.0"
        if let e = s.firstIndex(where: { $0 == "e" || $0 == "E" }), !s[..<e].contains(".") {
            s.insert(contentsOf: ".0", at: e)             // "1e-08" → "1.0e-08"
        }
        return s
    }
}
