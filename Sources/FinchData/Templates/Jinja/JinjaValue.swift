import Foundation

/// An insertion-ordered string-keyed dictionary (Python `dict` as chat templates see it).
public struct JinjaDict {
    public private(set) var keys: [String] = []
    public private(set) var storage: [String: JinjaValue] = [:]

    public init() {}
    public init(_ pairs: [(String, JinjaValue)]) { for (k, v) in pairs { self[k] = v } }

    public subscript(key: String) -> JinjaValue? {
        get { storage[key] }
        set {
            if let v = newValue {
                if storage.updateValue(v, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }
    public var count: Int { keys.count }
    public var pairs: [(String, JinjaValue)] { keys.map { ($0, storage[$0]!) } }

    /// Storage key of a Python dict key: strings are themselves; ints (and bools, integral floats, None) get a
    /// private prefix so they stay distinct from strings. nil for unhashable keys.
    static func storageKey(_ v: JinjaValue) -> String? {
        switch v {
        case .string(let s): return s
        case .int(let i): return "\u{0}i\(i)"
        case .bool(let b): return "\u{0}i\(b ? 1 : 0)"
        case .double(let d): return d == d.rounded() && abs(d) < 9e18 ? "\u{0}i\(Int(d))" : "\u{0}f\(JinjaValue.pyFloatRepr(d))"
        case .none: return "\u{0}n"
        default: return nil
        }
    }
    /// The Python value of a storage key.
    static func keyValue(_ k: String) -> JinjaValue {
        guard k.unicodeScalars.first == "\u{0}" else { return .string(k) }
        let rest = String(k.unicodeScalars.dropFirst(2))
        switch k.unicodeScalars.dropFirst().first {
        case "i": return .int(Int(rest) ?? 0)
        case "f": return .double(Double(rest) ?? 0)
        default: return .none
        }
    }
    /// Keys as Python values.
    public var keyValues: [JinjaValue] { keys.map(JinjaDict.keyValue) }
}

/// Positional and keyword arguments of a call.
public struct JinjaArguments {
    public var positional: [JinjaValue]
    public var keywords: [(String, JinjaValue)]
    public init(_ positional: [JinjaValue] = [], _ keywords: [(String, JinjaValue)] = []) {
        self.positional = positional
        self.keywords = keywords
    }
    public func keyword(_ name: String) -> JinjaValue? { keywords.first { $0.0 == name }?.1 }
    /// The argument at `index`, or the keyword `name`, or nil.
    public func get(_ index: Int, _ name: String) -> JinjaValue? {
        if index < positional.count { return positional[index] }
        return keyword(name)
    }
}

/// A function value: a global (`range`, `namespace`, ...), a macro, a bound method or `loop.cycle`.
public final class JinjaCallable {
    public let name: String
    let body: (JinjaArguments, Int) throws -> JinjaValue
    public init(name: String, _ body: @escaping (JinjaArguments, Int) throws -> JinjaValue) {
        self.name = name
        self.body = body
    }
    /// Calls it; `line` is used in error messages.
    public func call(_ args: JinjaArguments, line: Int = 0) throws -> JinjaValue { try body(args, line) }
}

/// jinja2's `namespace()`: the one mutable object templates can assign attributes on.
public final class JinjaNamespace {
    public var attributes = JinjaDict()
    public init() {}
}

/// A Jinja value, with Python's semantics: `int` and `float` kept apart, truthiness, `str()` and `repr()`.
public indirect enum JinjaValue {
    /// jinja2's default `Undefined`; the payload is the message an operation on it raises.
    case undefined(String)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JinjaValue])
    case tuple([JinjaValue])
    case dict(JinjaDict)
    case namespace(JinjaNamespace)
    case callable(JinjaCallable)
    /// A one-shot iterator (what jinja2's `map`, `select`, `selectattr`, `unique`, `items`... filters return):
    /// always truthy, no `len()`, not JSON-serialisable, iterable.
    case generator([JinjaValue])
    /// markupsafe's `Markup` (from `|safe`, `|escape`): a string whose `+` HTML-escapes the plain-string operand.
    case markup(String)

    /// From `JSONSerialization` output (or plain Swift values): `NSNull`/nil → none, NSNumber booleans → bool,
    /// integral numbers → int, other numbers → double. Swift dictionaries are unordered, so their keys get a fixed
    /// order (``preferredKeyOrder``, then sorted); use ``JinjaValue/parseJSON(_:)`` to keep a JSON document's order.
    public init(json: Any) {
        switch json {
        case is NSNull: self = .none
        case let v as JinjaValue: self = v
        case let s as String: self = .string(s)
        case let s as Substring: self = .string(String(s))
        case let n as NSNumber:
            if JinjaValue.isBoolean(n) { self = .bool(n.boolValue); return }
            let t = String(cString: n.objCType)
            if t == "d" || t == "f" { self = .double(n.doubleValue); return }
            self = .int(n.intValue)
        case let b as Bool: self = .bool(b)
        case let i as Int: self = .int(i)
        case let d as Double: self = .double(d)
        case let a as [Any]: self = .array(a.map { JinjaValue(json: $0) })
        case let d as [String: Any]:
            var out = JinjaDict()
            for k in JinjaValue.orderedKeys(d.keys) { out[k] = JinjaValue(json: d[k]!) }
            self = .dict(out)
        case let o as Optional<Any>:
            if case .some(let inner) = o { self = JinjaValue(json: inner) } else { self = .none }
        }
    }

    /// The order given to an unordered Swift dictionary's keys: the usual keys of chat messages, tool calls and
    /// tool schemas in the order OpenAI-style JSON writes them (role, tool_call_id, id, type, name, description,
    /// content, ...), then the others sorted. Deterministic, and what templates that print whole dictionaries
    /// (`tools | tojson`) would have seen from a JSON file.
    static let preferredKeyOrder = ["role", "tool_call_id", "id", "type", "name", "description", "content", "text",
                                    "reasoning_content", "thinking", "tool_calls", "function", "arguments",
                                    "parameters", "properties", "required", "enum", "items"]
    static func orderedKeys<S: Sequence>(_ keys: S) -> [String] where S.Element == String {
        let rank = Dictionary(uniqueKeysWithValues: preferredKeyOrder.enumerated().map { ($1, $0) })
        return keys.sorted { a, b in
            switch (rank[a], rank[b]) {
            case let (x?, y?): return x < y
            case (_?, nil): return true
            case (nil, _?): return false
            default: return a < b
            }
        }
    }

    static func isBoolean(_ n: NSNumber) -> Bool {
        #if canImport(Darwin)
        return CFGetTypeID(n) == CFBooleanGetTypeID()
        #else
        return String(cString: n.objCType) == "c"
        #endif
    }

    /// Parses a JSON document keeping object key order (Python's `json.loads`).
    public static func parseJSON(_ text: String) throws -> JinjaValue {
        var p = JinjaJSONReader(Array(text.unicodeScalars))
        let v = try p.value()
        p.skipWS()
        if p.i != p.s.count { throw JinjaError(.syntax, "trailing characters in JSON at offset \(p.i)") }
        return v
    }

    /// A Swift value (for callers): strings, numbers, bools, arrays, dictionaries (`[String: Any]`), nil for none/undefined.
    public var anyValue: Any? {
        switch self {
        case .undefined, .none: return nil
        case .bool(let b): return b
        case .int(let i): return i
        case .double(let d): return d
        case .string(let s): return s
        case .array(let a), .tuple(let a): return a.map { $0.anyValue ?? NSNull() }
        case .dict(let d):
            var out: [String: Any] = [:]
            for (k, v) in d.pairs { out[k] = v.anyValue ?? NSNull() }
            return out
        case .namespace(let n): return JinjaValue.dict(n.attributes).anyValue
        case .generator(let a): return a.map { $0.anyValue ?? NSNull() }
        case .markup(let s): return s
        case .callable: return nil
        }
    }

    /// `Markup` as a plain string; every other value unchanged.
    var plain: JinjaValue { if case .markup(let s) = self { return .string(s) }; return self }

    public var isUndefined: Bool { if case .undefined = self { return true } else { return false } }
    public var isNone: Bool { if case .none = self { return true } else { return false } }

    /// Python truthiness.
    public var truthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s), .markup(let s): return !s.isEmpty
        case .array(let a), .tuple(let a): return !a.isEmpty
        case .dict(let d): return d.count > 0
        case .namespace, .callable, .generator: return true
        }
    }

    /// jinja2's `object_type_repr` for error messages.
    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "None"
        case .bool: return "bool object"
        case .int: return "int object"
        case .double: return "float object"
        case .string: return "str object"
        case .array: return "list object"
        case .tuple: return "tuple object"
        case .dict: return "dict object"
        case .namespace: return "jinja2.utils.Namespace object"
        case .callable: return "function object"
        case .generator: return "generator object"
        case .markup: return "Markup object"
        }
    }
    /// Python's `type(x).__name__`.
    var pyType: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .array: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .namespace: return "Namespace"
        case .callable: return "function"
        case .generator: return "generator"
        case .markup: return "Markup"
        }
    }

    /// Python `str(x)` (jinja2 output of `{{ x }}`; undefined renders as "").
    public var pyStr: String {
        switch self {
        case .undefined: return ""
        case .string(let s), .markup(let s): return s
        default: return pyRepr
        }
    }

    /// Python `repr(x)`.
    public var pyRepr: String {
        switch self {
        case .undefined: return ""
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .double(let d): return JinjaValue.pyFloatRepr(d)
        case .string(let s): return JinjaValue.pyStringRepr(s)
        case .array(let a): return "[" + a.map { $0.pyRepr }.joined(separator: ", ") + "]"
        case .tuple(let a):
            if a.count == 1 { return "(" + a[0].pyRepr + ",)" }
            return "(" + a.map { $0.pyRepr }.joined(separator: ", ") + ")"
        case .dict(let d):
            return "{" + d.pairs.map { JinjaDict.keyValue($0.0).pyRepr + ": " + $0.1.pyRepr }.joined(separator: ", ") + "}"
        case .namespace(let n):
            return "<Namespace " + JinjaValue.dict(n.attributes).pyRepr + ">"
        case .callable(let c): return "<function \(c.name)>"
        case .generator: return "<generator object>"
        case .markup(let s): return "Markup(" + JinjaValue.pyStringRepr(s) + ")"
        }
    }

    /// Python's `repr(float)`: shortest round-trip digits, exponent form outside 1e-4 ..< 1e16.
    public static func pyFloatRepr(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d < 0 ? "-inf" : "inf" }
        if d == 0 { return d.sign == .minus ? "-0.0" : "0.0" }
        // Swift's description gives the shortest round-trip digits; re-layout them as Python does.
        var s = "\(abs(d))"
        var exp = 0
        if let e = s.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exp = Int(s[s.index(after: e)...])!
            s = String(s[..<e])
        }
        var intPart = s, frac = ""
        if let dot = s.firstIndex(of: ".") {
            intPart = String(s[..<dot])
            frac = String(s[s.index(after: dot)...])
        }
        var digits = intPart + frac
        var pointPos = intPart.count + exp // decimal point position within digits
        // strip leading zeros
        while digits.count > 1 && digits.first == "0" { digits.removeFirst(); pointPos -= 1 }
        while digits.count > 1 && digits.last == "0" { digits.removeLast() }
        let sci = pointPos - 1 // exponent in d.ddd form
        var out: String
        if sci < -4 || sci >= 16 {
            var m = String(digits.first!)
            if digits.count > 1 { m += "." + digits.dropFirst() }
            let es = abs(sci) < 10 ? "0\(abs(sci))" : "\(abs(sci))"
            out = m + "e" + (sci < 0 ? "-" : "+") + es
        } else if pointPos <= 0 {
            out = "0." + String(repeating: "0", count: -pointPos) + digits
        } else if pointPos >= digits.count {
            out = digits + String(repeating: "0", count: pointPos - digits.count) + ".0"
        } else {
            let idx = digits.index(digits.startIndex, offsetBy: pointPos)
            out = digits[..<idx] + "." + digits[idx...]
        }
        return d < 0 ? "-" + out : out
    }

    /// Python's `repr(str)`.
    public static func pyStringRepr(_ s: String) -> String {
        let quote: Character = (s.contains("'") && !s.contains("\"")) ? "\"" : "'"
        var out = String(quote)
        for u in s.unicodeScalars {
            switch u {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if Character(u) == quote { out += "\\" + String(quote); continue }
                let v = u.value
                if v < 0x20 || v == 0x7f { out += String(format: "\\x%02x", v) }
                else if v >= 0x80 && !isPrintable(u) {
                    if v <= 0xff { out += String(format: "\\x%02x", v) }
                    else if v <= 0xffff { out += String(format: "\\u%04x", v) }
                    else { out += String(format: "\\U%08x", v) }
                } else { out.unicodeScalars.append(u) }
            }
        }
        out.append(quote)
        return out
    }

    /// Python's `str.isprintable` for one non-ASCII scalar (approximation by general category).
    static func isPrintable(_ u: Unicode.Scalar) -> Bool {
        switch u.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator: return false
        case .spaceSeparator: return u.value == 0x20
        default: return true
        }
    }
}

/// Python's whitespace (`str.isspace`, `\s`).
func isPyWhitespace(_ u: Unicode.Scalar) -> Bool {
    (0x1c...0x1f).contains(u.value) || u.properties.isWhitespace
}

/// Reads JSON keeping key order.
struct JinjaJSONReader {
    let s: [Unicode.Scalar]
    var i = 0
    init(_ s: [Unicode.Scalar]) { self.s = s }

    mutating func skipWS() { while i < s.count, [" ", "\n", "\r", "\t"].contains(s[i]) { i += 1 } }
    func fail(_ m: String) -> JinjaError { JinjaError(.syntax, "JSON: \(m) at offset \(i)") }

    mutating func value() throws -> JinjaValue {
        skipWS()
        guard i < s.count else { throw fail("unexpected end") }
        switch s[i] {
        case "{":
            i += 1
            var d = JinjaDict()
            skipWS()
            if i < s.count, s[i] == "}" { i += 1; return .dict(d) }
            while true {
                skipWS()
                guard i < s.count, s[i] == "\"" else { throw fail("expected key") }
                let k = try string()
                skipWS()
                guard i < s.count, s[i] == ":" else { throw fail("expected ':'") }
                i += 1
                d[k] = try value()
                skipWS()
                guard i < s.count else { throw fail("unexpected end") }
                if s[i] == "," { i += 1; continue }
                if s[i] == "}" { i += 1; return .dict(d) }
                throw fail("expected ',' or '}'")
            }
        case "[":
            i += 1
            var a: [JinjaValue] = []
            skipWS()
            if i < s.count, s[i] == "]" { i += 1; return .array(a) }
            while true {
                a.append(try value())
                skipWS()
                guard i < s.count else { throw fail("unexpected end") }
                if s[i] == "," { i += 1; continue }
                if s[i] == "]" { i += 1; return .array(a) }
                throw fail("expected ',' or ']'")
            }
        case "\"": return .string(try string())
        case "t": try word("true"); return .bool(true)
        case "f": try word("false"); return .bool(false)
        case "n": try word("null"); return .none
        case "N": try word("NaN"); return .double(.nan)
        case "I": try word("Infinity"); return .double(.infinity)
        default:
            let start = i
            if s[i] == "-" { i += 1 }
            if i < s.count, s[i] == "I" { try word("Infinity"); return .double(-.infinity) }
            var isFloat = false
            while i < s.count {
                let c = s[i]
                if ("0"..."9").contains(c) || c == "-" || c == "+" { i += 1 }
                else if c == "." || c == "e" || c == "E" { isFloat = true; i += 1 }
                else { break }
            }
            let text = String(String.UnicodeScalarView(s[start..<i]))
            if !isFloat, let n = Int(text) { return .int(n) }
            guard let d = Double(text) else { throw fail("bad number '\(text)'") }
            return .double(d)
        }
    }

    mutating func word(_ w: String) throws {
        for u in w.unicodeScalars {
            guard i < s.count, s[i] == u else { throw fail("expected \(w)") }
            i += 1
        }
    }

    mutating func string() throws -> String {
        i += 1
        var out = String.UnicodeScalarView()
        while i < s.count {
            let c = s[i]
            i += 1
            if c == "\"" { return String(out) }
            if c != "\\" { out.append(c); continue }
            guard i < s.count else { break }
            let e = s[i]
            i += 1
            switch e {
            case "n": out.append("\n")
            case "t": out.append("\t")
            case "r": out.append("\r")
            case "b": out.append("\u{08}")
            case "f": out.append("\u{0C}")
            case "/": out.append("/")
            case "\\": out.append("\\")
            case "\"": out.append("\"")
            case "u":
                var v = try hex4()
                if (0xD800..<0xDC00).contains(v), i + 1 < s.count, s[i] == "\\", s[i + 1] == "u" {
                    i += 2
                    let lo = try hex4()
                    v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00)
                }
                out.append(Unicode.Scalar(v) ?? "\u{FFFD}")
            default: throw fail("bad escape")
            }
        }
        throw fail("unterminated string")
    }

    mutating func hex4() throws -> UInt32 {
        guard i + 4 <= s.count, let v = UInt32(String(String.UnicodeScalarView(s[i..<i + 4])), radix: 16) else {
            throw fail("bad \\u escape")
        }
        i += 4
        return v
    }
}
