import Foundation

/// Finch's one JSON value: any JSON document, Codable both ways and exact for 64-bit integers.
///
/// - Hugging Face / PEFT files (config.json, generation_config.json, adapter_config.json, finch.json): read with
///   `read(_:)` and the typed accessors, written with `text()` / `data()`, which reproduce Python's
///   `json.dumps(indent=2, sort_keys=True)` byte for byte: keys sorted, two-space indent, `"key": value`, doubles
///   in their shortest round-trip form (`1e-05`, `10000.0`) rather than Foundation's.
/// - Checkpoints: `init(encoding:)` captures any Encodable value (a data loader's cursor, a method's extras) and
///   `decode(_:)` rebuilds it, without losing 64-bit integers (JSONEncoder/JSONDecoder through the cases below).
/// - Conformance cases: `case.json` read through the accessors (`ints`, `doubles`, `intRows`, `nestedFloats`, …).
///
/// Integers decode as `.int` (also integral numbers written `10000.0`), integers above `Int64.max` as `.uint`,
/// other numbers as `.double`.
public enum JSONValue: Codable, Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// An integer from an `Int` (the HF writers build from `Int` sizes and ids).
    public static func int(_ i: Int) -> JSONValue { .int(Int64(i)) }

    // MARK: reading files

    /// Parses JSON text; `file` names the source in the error.
    public static func parse(_ data: Data, file: String) throws -> JSONValue {
        do { return try JSONDecoder().decode(JSONValue.self, from: data) } catch {
            throw ModelFileError("\(file): not valid JSON (\(error))")
        }
    }

    /// Reads and parses a JSON file.
    public static func read(_ url: URL) throws -> JSONValue {
        guard let data = try? Data(contentsOf: url) else { throw ModelFileError("cannot read \(url.path)") }
        return try parse(data, file: url.path)
    }

    // MARK: capturing Codable values

    /// Captures any Encodable value.
    public init<T: Encodable>(encoding value: T) throws {
        let data = try JSONEncoder().encode(value)
        self = try JSONDecoder().decode(JSONValue.self, from: data)
    }

    /// Rebuilds a Decodable value from this one.
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: JSONEncoder().encode(self))
    }

    /// The value as plain Swift types (`NSNull`, Bool, Int / UInt64, Double, String, arrays, dictionaries),
    /// as JSONSerialization-style APIs expect.
    public var nativeValue: Any {
        switch self {
        case .null: return NSNull()
        case .bool(let b): return b
        case .int(let i): return Int(i)
        case .uint(let u): return u
        case .double(let d): return d
        case .string(let s): return s
        case .array(let a): return a.map(\.nativeValue)
        case .object(let o): return o.mapValues(\.nativeValue)
        }
    }

    // MARK: typed access (nil when absent, null or of another type)

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] } else { return nil }
    }
    public var object: [String: JSONValue]? { if case .object(let o) = self { return o } else { return nil } }
    public var array: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
    public var string: String? { if case .string(let s) = self { return s } else { return nil } }
    public var bool: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var isNull: Bool { self == .null }
    /// An integer, or a double with an integral value.
    public var int: Int? {
        switch self {
        case .int(let i): return Int(exactly: i)
        case .uint(let u): return Int(exactly: u)
        case .double(let d): return Int(exactly: d)
        default: return nil
        }
    }
    /// Any number, as a Double.
    public var double: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .uint(let u): return Double(u)
        case .double(let d): return d
        default: return nil
        }
    }

    /// An array of integers (nil if any element is not one).
    public var ints: [Int]? { array.flatMap { a in allOrNil(a.map(\.int)) } }
    /// An array of numbers as Doubles (nil if any element is not a number).
    public var doubles: [Double]? { array.flatMap { a in allOrNil(a.map(\.double)) } }
    /// An array of strings (nil if any element is not one).
    public var strings: [String]? { array.flatMap { a in allOrNil(a.map(\.string)) } }
    /// An array of booleans (nil if any element is not one).
    public var bools: [Bool]? { array.flatMap { a in allOrNil(a.map(\.bool)) } }
    /// An array of arrays of integers (`[[1, 2], [3, 4]]`).
    public var intRows: [[Int]]? { array.flatMap { a in allOrNil(a.map(\.ints)) } }

    /// Nested arrays of numbers (or one number) flattened row-major to Floats (each number read as a Double,
    /// then rounded to Float), with the shape taken from the first array at each depth; nil if a leaf is not a number.
    public var nestedFloats: (values: [Float], shape: [Int])? {
        var values: [Float] = [], shape: [Int] = []
        func walk(_ v: JSONValue, depth: Int) -> Bool {
            if case .array(let a) = v {
                if shape.count == depth { shape.append(a.count) }
                return a.allSatisfy { walk($0, depth: depth + 1) }
            }
            guard let d = v.double else { return false }
            values.append(Float(d))
            return true
        }
        return walk(self, depth: 0) ? (values, shape) : nil
    }

    private func allOrNil<T>(_ items: [T?]) -> [T]? {
        var out: [T] = []
        out.reserveCapacity(items.count)
        for case let x? in items { out.append(x) }
        return out.count == items.count ? out : nil
    }

    // MARK: building HF values

    /// A Float written as the shortest decimal that reads back as the same Float (1e-05, not 9.99999974e-06).
    public static func float(_ f: Float) -> JSONValue { .double(Double("\(f)") ?? Double(f)) }
    /// An Int or null.
    public static func optionalInt(_ i: Int?) -> JSONValue { i.map { .int($0) } ?? .null }
    /// A number written as an int when integral (PEFT writes `lora_alpha: 8`).
    public static func number(_ d: Double) -> JSONValue { Int64(exactly: d).map { .int($0) } ?? .double(d) }

    // MARK: Codable

    public init(from decoder: Swift.Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int64.self) { self = .int(i) }
        else if let u = try? c.decode(UInt64.self) { self = .uint(u) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: Swift.Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .uint(let u): try c.encode(u)
        case .double(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    // MARK: writing HF-style text

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
        case .uint(let u): out += String(u)
        case .double(let d):
            if d.isNaN { out += "NaN" } else if d.isInfinite { out += d > 0 ? "Infinity" : "-Infinity" } else { out += "\(d)" }
        case .string(let s): out += JSONValue.quote(s)
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
                out += pad + JSONValue.quote(k) + ": "
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
