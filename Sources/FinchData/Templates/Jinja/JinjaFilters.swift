import Foundation

/// jinja2's built-in filters (the ones chat templates use) and transformers' `tojson`.
extension JinjaRenderer {
    static let filterNames: Set<String> = [
        "trim", "tojson", "length", "count", "join", "upper", "lower", "title", "capitalize", "default", "d",
        "items", "list", "first", "last", "string", "int", "float", "abs", "round", "replace", "safe", "escape", "e",
        "forceescape", "selectattr", "rejectattr", "select", "reject", "map", "unique", "sort", "reverse", "sum",
        "min", "max", "batch", "wordcount", "indent", "center", "dictsort", "attr", "bool",
    ]

    func applyFilter(_ name: String, _ value0: JinjaValue, _ args0: JinjaArguments, line: Int, scope: JinjaScope) throws -> JinjaValue {
        if case .markup = value0, ["escape", "e", "safe"].contains(name) { return value0 }
        let value = value0.plain
        let args = JinjaArguments(args0.positional.map { $0.plain }, args0.keywords.map { ($0.0, $0.1.plain) })
        func arg(_ i: Int, _ n: String) -> JinjaValue? { args.get(i, n) }
        func boolArg(_ i: Int, _ n: String) -> Bool { arg(i, n)?.truthy ?? false }
        func str(_ u: [Unicode.Scalar]) -> JinjaValue { .string(String(String.UnicodeScalarView(u))) }
        func requireDefinedForString() throws {
            // jinja2 soft_str(Undefined) is "" — no error.
        }
        switch name {
        case "trim":
            let chars = try strArg(arg(0, "chars"), "trim chars", line: line)
            return str(pyStrip(Array(value.pyStr.unicodeScalars), chars, left: true, right: true))
        case "tojson":
            let ensureASCII = arg(0, "ensure_ascii")?.truthy ?? false
            let indent = arg(1, "indent") ?? JinjaValue.none
            let separators = arg(2, "separators") ?? JinjaValue.none
            let sortKeys = arg(3, "sort_keys")?.truthy ?? false
            return .string(try JSONDumper(ensureASCII: ensureASCII, indent: indent, separators: separators,
                                          sortKeys: sortKeys, line: line, renderer: self).dump(value))
        case "length", "count":
            switch value {
            case .undefined: return .int(0)
            case .string(let s): return .int(s.unicodeScalars.count)
            case .array(let a), .tuple(let a): return .int(a.count)
            case .dict(let d): return .int(d.count)
            default: throw err(.type, "object of type '\(value.pyType)' has no len()", line)
            }
        case "join":
            var items = try iterate(value, line: line)
            if let attr = arg(1, "attribute"), !attr.isNone { items = try items.map { try attrGetter($0, attr, line: line) } }
            let sep = arg(0, "d")?.pyStr ?? ""
            return .string(items.map { $0.pyStr }.joined(separator: sep))
        case "upper": return .string(value.pyStr.uppercased())
        case "lower": return .string(value.pyStr.lowercased())
        case "title":
            // jinja2's do_title: split on runs of -, whitespace, brackets; capitalise each piece
            var out = ""
            var piece: [Unicode.Scalar] = []
            var pieceIsSep = false
            func flush() {
                guard let f = piece.first else { return }
                out += String(f).uppercased() + String(String.UnicodeScalarView(piece.dropFirst())).lowercased()
                piece = []
            }
            for c in value.pyStr.unicodeScalars {
                let sep = c == "-" || c == "(" || c == "{" || c == "[" || c == "<" || isPyWhitespace(c)
                if sep != pieceIsSep { flush(); pieceIsSep = sep }
                piece.append(c)
            }
            flush()
            return .string(out)
        case "capitalize": return .string(pyCapitalize(value.pyStr))
        case "default", "d":
            let def = arg(0, "default_value") ?? .string("")
            if value.isUndefined || (boolArg(1, "boolean") && !value.truthy) { return def }
            return value
        case "items":
            switch value {
            case .undefined: return .array([])
            case .dict(let d): return .generator(d.pairs.map { .tuple([JinjaDict.keyValue($0.0), $0.1]) })
            default: throw err(.type, "Can only get item pairs from a mapping.", line)
            }
        case "list": return .array(try iterate(value, line: line))
        case "first":
            let items = try iterate(value, line: line)
            return items.first ?? .undefined("No first item, sequence was empty.")
        case "last":
            if case .generator = value { throw err(.type, "'generator' object is not reversible", line) }
            let items = try iterate(value, line: line)
            return items.last ?? .undefined("No last item, sequence was empty.")
        case "string": return .string(value.pyStr)
        case "bool": return .bool(value.truthy)
        case "int":
            let def = arg(0, "default") ?? .int(0)
            let base = arg(1, "base")?.asIndex ?? 10
            switch value {
            case .int, .bool: return .int(value.asIndex!)
            case .double(let d):
                guard d.isFinite, abs(d) < 9.2e18 else { return def }
                return .int(Int(d))
            case .string(let s):
                let t = s.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "_", with: "")
                if let i = Int(t, radix: base) { return .int(i) }
                if let d = Double(t), d.isFinite, abs(d) < 9.2e18 { return .int(Int(d)) }
                return def
            default: return def
            }
        case "float":
            let def = arg(0, "default") ?? .double(0)
            switch value {
            case .int, .bool: return .double(Double(value.asIndex!))
            case .double: return value
            case .string(let s):
                let t = s.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
                if t == "nan" || t == "+nan" || t == "-nan" { return .double(.nan) }
                if t == "inf" || t == "+inf" || t == "infinity" { return .double(.infinity) }
                if t == "-inf" || t == "-infinity" { return .double(-.infinity) }
                if let d = Double(t.replacingOccurrences(of: "_", with: "")) { return .double(d) }
                return def
            default: return def
            }
        case "abs":
            switch value {
            case .int(let i): return .int(abs(i))
            case .bool(let b): return .int(b ? 1 : 0)
            case .double(let d): return .double(abs(d))
            case .undefined(let m): throw err(.undefined, m, line)
            default: throw err(.type, "bad operand type for abs(): '\(value.pyType)'", line)
            }
        case "round":
            let precision = arg(0, "precision")?.asIndex ?? 0
            let method = arg(1, "method")?.pyStr ?? "common"
            guard let n = value.numeric else {
                if case .undefined(let m) = value { throw err(.undefined, m, line) }
                throw err(.type, "type \(value.pyType) doesn't define __round__ method", line)
            }
            if case .int(let i) = n, method == "common" { return .int(i) }
            let d = n.double
            let scale = pow(10.0, Double(precision))
            switch method {
            case "common": return .double((d * scale).rounded(.toNearestOrEven) / scale)
            case "ceil": return .double((d * scale).rounded(.up) / scale)
            case "floor": return .double((d * scale).rounded(.down) / scale)
            default: throw err(.type, "method must be common, ceil or floor", line)
            }
        case "replace":
            guard let old = arg(0, "old"), let new = arg(1, "new") else { throw err(.type, "replace expects old and new", line) }
            let count = arg(2, "count")?.asIndex ?? -1
            return str(pyReplace(Array(value.pyStr.unicodeScalars), Array(old.pyStr.unicodeScalars), Array(new.pyStr.unicodeScalars), count))
        case "safe": return .markup(value.pyStr)
        case "escape", "e", "forceescape":
            return .markup(htmlEscape(value.pyStr))
        case "select", "reject":
            let items = value.truthy ? try iterate(value, line: line) : []
            let want = name == "select"
            guard let testName = args.positional.first?.pyStr else { return .generator(items.filter { $0.truthy == want }) }
            let targs = JinjaArguments(Array(args.positional.dropFirst()), args.keywords)
            return .generator(try items.filter { try applyTest(testName, $0, targs, line: line) == want })
        case "selectattr", "rejectattr":
            let items = value.truthy ? try iterate(value, line: line) : []
            let want = name == "selectattr"
            guard let attr = args.positional.first else { throw err(.type, "\(name) needs an attribute name", line) }
            let testName = args.positional.count > 1 ? args.positional[1].pyStr : nil
            let targs = JinjaArguments(Array(args.positional.dropFirst(2)), args.keywords)
            return .generator(try items.filter { item in
                let v = try attrGetter(item, attr, line: line)
                if let t = testName { return try applyTest(t, v, targs, line: line) == want }
                return v.truthy == want
            })
        case "map":
            let items = value.truthy ? try iterate(value, line: line) : []
            if let attr = args.keyword("attribute") {
                let def = args.keyword("default")
                return .generator(try items.map { item in
                    let v = try attrGetter(item, attr, line: line)
                    if v.isUndefined, let d = def { return d }
                    return v
                })
            }
            guard let fname = args.positional.first?.pyStr else { return .generator(items) }
            let fargs = JinjaArguments(Array(args.positional.dropFirst()), args.keywords)
            return .generator(try items.map { try applyFilter(fname, $0, fargs, line: line, scope: scope) })
        case "unique":
            let caseSensitive = boolArg(0, "case_sensitive")
            let attr = arg(1, "attribute")
            var seen: [JinjaValue] = []
            var out: [JinjaValue] = []
            for item in try iterate(value, line: line) {
                var key = item
                if let a = attr, !a.isNone { key = try attrGetter(item, a, line: line) }
                if !caseSensitive, case .string(let s) = key { key = .string(s.lowercased()) }
                if !seen.contains(where: { pyEquals($0, key) }) { seen.append(key); out.append(item) }
            }
            return .generator(out)
        case "sort":
            let reverse = boolArg(0, "reverse")
            let caseSensitive = boolArg(1, "case_sensitive")
            let attr = arg(2, "attribute")
            let items = try iterate(value, line: line)
            let keys = try items.map { item -> JinjaValue in
                var key = item
                if let a = attr, !a.isNone { key = try attrGetter(item, a, line: line) }
                if !caseSensitive, case .string(let s) = key { key = .string(s.lowercased()) }
                return key
            }
            var idx = Array(items.indices)
            var failure: JinjaError? = nil
            // stable merge sort via enumerated tie-break
            idx.sort { a, b in
                guard let c = pyCompare(keys[a], keys[b]) else {
                    failure = err(.type, "'<' not supported between instances of '\(keys[a].pyType)' and '\(keys[b].pyType)'", line)
                    return a < b
                }
                if c == 0 { return a < b }
                return reverse ? c > 0 : c < 0
            }
            if let f = failure { throw f }
            return .array(idx.map { items[$0] })
        case "dictsort":
            guard case .dict(let d) = value else { throw err(.type, "You can only sort by either \"key\" or \"value\"", line) }
            let caseSensitive = boolArg(0, "case_sensitive")
            let byValue = arg(1, "by")?.pyStr == "value"
            let reverse = boolArg(2, "reverse")
            let pairs = d.pairs
            func key(_ p: (String, JinjaValue)) -> JinjaValue {
                var k = byValue ? p.1 : JinjaDict.keyValue(p.0)
                if !caseSensitive, case .string(let s) = k { k = .string(s.lowercased()) }
                return k
            }
            let sorted = pairs.enumerated().sorted { a, b in
                let c = pyCompare(key(a.element), key(b.element)) ?? 0
                if c == 0 { return a.offset < b.offset }
                return reverse ? c > 0 : c < 0
            }
            return .array(sorted.map { .tuple([JinjaDict.keyValue($0.element.0), $0.element.1]) })
        case "reverse":
            switch value {
            case .string(let s): return .string(String(String.UnicodeScalarView(s.unicodeScalars.reversed())))
            default: return .array(try iterate(value, line: line).reversed())
            }
        case "sum":
            var total = arg(1, "start") ?? .int(0)
            let attr = arg(0, "attribute")
            for item in try iterate(value, line: line) {
                var v = item
                if let a = attr, !a.isNone { v = try attrGetter(item, a, line: line) }
                total = try binary("+", total, v, line: line)
            }
            return total
        case "min", "max":
            let caseSensitive = boolArg(0, "case_sensitive")
            let attr = arg(1, "attribute")
            let items = try iterate(value, line: line)
            guard !items.isEmpty else { return .undefined("No aggregated item, sequence was empty.") }
            func key(_ item: JinjaValue) throws -> JinjaValue {
                var k = item
                if let a = attr, !a.isNone { k = try attrGetter(item, a, line: line) }
                if !caseSensitive, case .string(let s) = k { k = .string(s.lowercased()) }
                return k
            }
            var best = items[0]
            var bestKey = try key(best)
            for item in items.dropFirst() {
                let k = try key(item)
                guard let c = pyCompare(k, bestKey) else { throw err(.type, "'<' not supported between instances of '\(k.pyType)' and '\(bestKey.pyType)'", line) }
                if name == "min" ? c < 0 : c > 0 { best = item; bestKey = k }
            }
            return best
        case "batch":
            guard let n = arg(0, "linecount")?.asIndex, n > 0 else { throw err(.type, "batch needs a positive line count", line) }
            let fill = arg(1, "fill_with")
            var out: [JinjaValue] = []
            var cur: [JinjaValue] = []
            for item in try iterate(value, line: line) {
                cur.append(item)
                if cur.count == n { out.append(.array(cur)); cur = [] }
            }
            if !cur.isEmpty {
                if let f = fill, !f.isNone { while cur.count < n { cur.append(f) } }
                out.append(.array(cur))
            }
            return .generator(out)
        case "wordcount":
            var n = 0
            var inWord = false
            for c in value.pyStr.unicodeScalars {
                let w = c == "_" || c.properties.isAlphabetic || c.properties.numericType != nil
                if w && !inWord { n += 1 }
                inWord = w
            }
            return .int(n)
        case "indent":
            let widthV = arg(0, "width") ?? .int(4)
            let indention: String
            if case .string(let w) = widthV { indention = w } else { indention = String(repeating: " ", count: widthV.asIndex ?? 4) }
            let first = boolArg(1, "first"), blank = boolArg(2, "blank")
            let s = value.pyStr + "\n"
            guard case .array(let linesV) = try stringMethod(s, "splitlines", JinjaArguments(), line: line) else { return value }
            var lines = linesV.map { $0.pyStr }
            var rv: String
            if blank {
                rv = lines.joined(separator: "\n" + indention)
            } else {
                rv = lines.isEmpty ? "" : lines.removeFirst()
                if !lines.isEmpty { rv += "\n" + lines.map { $0.isEmpty ? $0 : indention + $0 }.joined(separator: "\n") }
            }
            if first { rv = indention + rv }
            return .string(rv)
        case "center":
            return try stringMethod(value.pyStr, "center", JinjaArguments([arg(0, "width") ?? .int(80)]), line: line)
        case "attr":
            guard let a = arg(0, "name") else { throw err(.type, "attr needs a name", line) }
            return try getAttr(value, a.pyStr, line: line)
        default:
            throw err(.unsupported, "filter '\(name)' is not supported by Finch's Jinja interpreter", line)
        }
    }

    /// jinja2's `make_attrgetter`: dotted names, integer parts as indexes, through `getitem`.
    func attrGetter(_ item: JinjaValue, _ attr: JinjaValue, line: Int) throws -> JinjaValue {
        var parts: [JinjaValue]
        switch attr {
        case .string(let s): parts = s.split(separator: ".", omittingEmptySubsequences: false).map { p in Int(p).map { .int($0) } ?? .string(String(p)) }
        default: parts = [attr]
        }
        var v = item
        for p in parts {
            if case .undefined = v { return v }
            v = try getItem(v, p, line: line)
        }
        return v
    }

    // MARK: tests

    static let testNames: Set<String> = [
        "defined", "undefined", "none", "boolean", "false", "true", "integer", "float", "number", "string", "mapping",
        "iterable", "sequence", "callable", "sameas", "escaped", "in", "eq", "equalto", "==", "ne", "!=", "lt",
        "lessthan", "<", "le", "<=", "gt", "greaterthan", ">", "ge", ">=", "odd", "even", "divisibleby", "lower",
        "upper", "filter", "test",
    ]

    func applyTest(_ name: String, _ v0: JinjaValue, _ args0: JinjaArguments, line: Int) throws -> Bool {
        let v = v0.plain
        let args = JinjaArguments(args0.positional.map { $0.plain }, args0.keywords.map { ($0.0, $0.1.plain) })
        func other() throws -> JinjaValue {
            guard let o = args.positional.first ?? args.keywords.first?.1 else {
                throw err(.type, "test '\(name)' needs an argument", line)
            }
            return o
        }
        switch name {
        case "defined": return !v.isUndefined
        case "undefined": return v.isUndefined
        case "none": return v.isNone
        case "boolean": if case .bool = v { return true }; return false
        case "true": if case .bool(true) = v { return true }; return false
        case "false": if case .bool(false) = v { return true }; return false
        case "integer": if case .int = v { return true }; return false
        case "float": if case .double = v { return true }; return false
        case "number": return v.numeric != nil
        case "string": return v.isStringValue
        case "mapping": if case .dict = v { return true }; return false
        case "iterable":
            switch v { case .undefined, .string, .array, .tuple, .dict, .generator: return true; default: return false }
        case "sequence":
            switch v { case .undefined, .string, .array, .tuple, .dict: return true; default: return false }
        case "callable":
            switch v { case .callable, .undefined: return true; default: return false }
        case "sameas":
            let o = try other()
            switch (v, o) {
            case (.none, .none): return true
            case (.bool(let a), .bool(let b)): return a == b
            case (.namespace(let a), .namespace(let b)): return a === b
            case (.int(let a), .int(let b)): return a == b && (-5...256).contains(a)
            default: return false
            }
        case "escaped": return false
        case "in": return try contains(try other(), v, line: line)
        case "eq", "equalto", "==": return pyEquals(v, try other())
        case "ne", "!=": return !pyEquals(v, try other())
        case "lt", "lessthan", "<": return try compare("<", v, try other(), line: line)
        case "le", "<=": return try compare("<=", v, try other(), line: line)
        case "gt", "greaterthan", ">": return try compare(">", v, try other(), line: line)
        case "ge", ">=": return try compare(">=", v, try other(), line: line)
        case "odd", "even":
            if case .undefined(let m) = v { throw err(.undefined, m, line) }
            guard let n = try binary("%", v, .int(2), line: line).numeric else { return false }
            return (n.double == 1) == (name == "odd")
        case "divisibleby":
            if case .undefined(let m) = v { throw err(.undefined, m, line) }
            guard let n = try binary("%", v, try other(), line: line).numeric else { return false }
            return n.double == 0
        case "lower":
            let u = v.pyStr.unicodeScalars.filter { $0.properties.isUppercase || $0.properties.isLowercase }
            return !u.isEmpty && u.allSatisfy { $0.properties.isLowercase }
        case "upper":
            let u = v.pyStr.unicodeScalars.filter { $0.properties.isUppercase || $0.properties.isLowercase }
            return !u.isEmpty && u.allSatisfy { $0.properties.isUppercase }
        case "filter": return JinjaRenderer.filterNames.contains(v.pyStr)
        case "test": return JinjaRenderer.testNames.contains(v.pyStr)
        default:
            throw err(.unsupported, "test '\(name)' is not supported by Finch's Jinja interpreter", line)
        }
    }
}

/// Python's `json.dumps` (the options transformers' `tojson` filter exposes).
struct JSONDumper {
    var ensureASCII: Bool
    var indent: JinjaValue
    var separators: JinjaValue
    var sortKeys: Bool
    var line: Int
    unowned var renderer: JinjaRenderer

    func dump(_ v: JinjaValue) throws -> String {
        var indentStr: String? = nil
        switch indent {
        case .none: indentStr = nil
        case .int(let n): indentStr = String(repeating: " ", count: max(0, n))
        case .string(let s): indentStr = s
        default: throw renderer.err(.type, "indent must be an int or a string", line)
        }
        var itemSep = indentStr == nil ? ", " : ","
        var keySep = ": "
        if case .array(let a) = separators, a.count == 2 { itemSep = a[0].pyStr; keySep = a[1].pyStr }
        if case .tuple(let a) = separators, a.count == 2 { itemSep = a[0].pyStr; keySep = a[1].pyStr }
        var out = ""
        try write(v, indentStr, itemSep, keySep, level: 0, into: &out)
        return out
    }

    func write(_ v: JinjaValue, _ ind: String?, _ itemSep: String, _ keySep: String, level: Int, into out: inout String) throws {
        switch v {
        case .none: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d):
            if d.isNaN { out += "NaN" } else if d.isInfinite { out += d < 0 ? "-Infinity" : "Infinity" }
            else { out += JinjaValue.pyFloatRepr(d) }
        case .string(let s), .markup(let s): writeString(s, into: &out)
        case .array(let a), .tuple(let a):
            if a.isEmpty { out += "[]"; return }
            out += "["
            let nl = ind.map { "\n" + String(repeating: $0, count: level + 1) }
            if let nl = nl { out += nl }
            for (i, x) in a.enumerated() {
                if i > 0 { out += itemSep; if let nl = nl { out += nl } }
                try write(x, ind, itemSep, keySep, level: level + 1, into: &out)
            }
            if let ind = ind { out += "\n" + String(repeating: ind, count: level) }
            out += "]"
        case .dict(let d):
            if d.count == 0 { out += "{}"; return }
            out += "{"
            let nl = ind.map { "\n" + String(repeating: $0, count: level + 1) }
            if let nl = nl { out += nl }
            var pairs = d.pairs
            if sortKeys { pairs.sort { pyCompare(.string($0.0), .string($1.0))! < 0 } }
            for (i, (k, x)) in pairs.enumerated() {
                if i > 0 { out += itemSep; if let nl = nl { out += nl } }
                switch JinjaDict.keyValue(k) {
                case .string(let ks): writeString(ks, into: &out)
                case .none: out += "\"null\""
                case let kv: out += "\"" + kv.pyRepr + "\""
                }
                out += keySep
                try write(x, ind, itemSep, keySep, level: level + 1, into: &out)
            }
            if let ind = ind { out += "\n" + String(repeating: ind, count: level) }
            out += "}"
        case .undefined:
            throw renderer.err(.type, "Object of type Undefined is not JSON serializable", line)
        case .namespace:
            throw renderer.err(.type, "Object of type Namespace is not JSON serializable", line)
        case .callable:
            throw renderer.err(.type, "Object of type function is not JSON serializable", line)
        case .generator:
            throw renderer.err(.type, "Object of type generator is not JSON serializable", line)
        }
    }

    func writeString(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) }
                else if ensureASCII && u.value > 0x7e {
                    if u.value > 0xffff {
                        let v = u.value - 0x10000
                        out += String(format: "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3ff))
                    } else { out += String(format: "\\u%04x", u.value) }
                } else { out.unicodeScalars.append(u) }
            }
        }
        out += "\""
    }
}
