import Foundation

/// Any JSON value, Codable and exact for 64-bit integers: lets a checkpoint carry state whose type
/// FinchTrain does not know (the data loader's cursor, a method's extras) without losing precision.
public enum JSONBlob: Codable, Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case array([JSONBlob])
    case object([String: JSONBlob])

    /// Captures any Encodable value.
    public init<T: Encodable>(encoding value: T) throws {
        let data = try JSONEncoder().encode(value)
        self = try JSONDecoder().decode(JSONBlob.self, from: data)
    }

    /// Rebuilds a Decodable value from the blob.
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

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int64.self) { self = .int(i) }
        else if let u = try? c.decode(UInt64.self) { self = .uint(u) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONBlob].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONBlob].self)) }
    }

    public func encode(to encoder: Encoder) throws {
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
}
