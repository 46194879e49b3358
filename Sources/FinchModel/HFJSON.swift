import Foundation

/// A JSON value, used to read and write the Hugging Face / PEFT JSON files (config.json,
/// generation_config.json, adapter_config.json) with full control of the text: keys sorted,
/// two-space indent and `"key": value` as Python's `json.dumps(indent=2, sort_keys=True)` writes,
/// doubles in their shortest round-trip form (`1e-05`, `10000.0`) rather than Foundation's.
public enum JSONNode: Equatable, Sendable, Decodable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONNode])
    case object([String: JSONNode])

    /// Parses JSON text; `file` names the source in the error.
    public static func parse(_ data: Data, file: String) throws -> JSONNode {
        do { return try JSONDecoder().decode(JSONNode.self, from: data) } catch {
            throw ModelFileError("\(file): not valid JSON (\(error))")
        }
    }

    /// Reads and parses a JSON file.
    public static func read(_ url: URL) throws -> JSONNode {
        guard let data = try? Data(contentsOf: url) else { throw ModelFileError("cannot read \(url.path)") }
        return try parse(data, file: url.path)
    }

    // MARK: typed access (nil when absent, null or of another type)

    public subscript(key: String) -> JSONNode? {
        if case .object(let o) = self { return o[key] } else { return nil }
    }
    public var object: [String: JSONNode]? { if case .object(let o) = self { return o } else { return nil } }
    public var string: String? { if case .string(let s) = self { return s } else { return nil } }
    public var bool: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var isNull: Bool { self == .null }
    public var int: Int? {
        switch self {
        case .int(let i): return i
        case .double(let d): return Int(exactly: d)
        default: return nil
        }
    }
    public var double: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }
    public var array: [JSONNode]? { if case .array(let a) = self { return a } else { return nil } }

    /// A Float written as the shortest decimal that reads back as the same Float (1e-05, not 9.99999974e-06).
    public static func float(_ f: Float) -> JSONNode { .double(Double("\(f)") ?? Double(f)) }
    /// An Int or null.
    public static func optionalInt(_ i: Int?) -> JSONNode { i.map { .int($0) } ?? .null }
    /// A number written as an int when integral (PEFT writes `lora_alpha: 8`).
    public static func number(_ d: Double) -> JSONNode { Int(exactly: d).map { .int($0) } ?? .double(d) }

    /// Integral numbers (`8`, also `10000.0`) decode as `.int`, others as `.double`.
    public init(from decoder: Swift.Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONNode].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONNode].self)) }
    }

    // MARK: writing

    /// Python-style pretty text (`indent=2, sort_keys=True`) ending in a newline.
    public func text() -> String {
        var out = ""
        write(into: &out, indent: 0)
        out += "\n"
        return out
    }

    public func data() -> Data { Data(text().utf8) }

    private func write(into out: inout String, indent: Int) {
        let pad = String(repeating: " ", count: indent + 2), end = String(repeating: " ", count: indent)
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d):
            if d.isNaN { out += "NaN" } else if d.isInfinite { out += d > 0 ? "Infinity" : "-Infinity" } else { out += "\(d)" }
        case .string(let s): out += JSONNode.quote(s)
        case .array(let a):
            if a.isEmpty { out += "[]"; return }
            out += "[\n"
            for (i, v) in a.enumerated() {
                out += pad
                v.write(into: &out, indent: indent + 2)
                out += i + 1 < a.count ? ",\n" : "\n"
            }
            out += end + "]"
        case .object(let o):
            if o.isEmpty { out += "{}"; return }
            out += "{\n"
            let keys = o.keys.sorted()
            for (i, k) in keys.enumerated() {
                out += pad + JSONNode.quote(k) + ": "
                o[k]!.write(into: &out, indent: indent + 2)
                out += i + 1 < keys.count ? ",\n" : "\n"
            }
            out += end + "}"
        }
    }

    /// `s` as a JSON string literal; non-ASCII characters appear as themselves (as Python's ensure_ascii=False).
    public static func quote(_ s: String) -> String {
        var r = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": r += "\\\""
            case "\\": r += "\\\\"
            case "\n": r += "\\n"
            case "\r": r += "\\r"
            case "\t": r += "\\t"
            default:
                if u.value < 0x20 || u.value == 0x7F { r += String(format: "\\u%04x", u.value) } else { r.unicodeScalars.append(u) }
            }
        }
        return r + "\""
    }
}
