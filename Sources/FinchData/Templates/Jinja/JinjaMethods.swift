import Foundation

/// Python methods of str, dict and list values, and the template globals.
extension JinjaRenderer {
    static let dictMethods: Set<String> = ["items", "keys", "values", "get", "copy",
                                           "pop", "popitem", "update", "setdefault", "clear"]
    static let stringMethods: Set<String> = [
        "strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "startswith", "endswith", "replace",
        "upper", "lower", "title", "capitalize", "swapcase", "casefold", "format", "find", "rfind", "index", "rindex",
        "count", "join", "isdigit", "isalpha", "isalnum", "isspace", "isupper", "islower", "isnumeric", "isdecimal",
        "istitle", "zfill", "center", "ljust", "rjust", "partition", "rpartition", "removeprefix", "removesuffix",
        "expandtabs",
    ]
    static let listMethods: Set<String> = ["index", "count", "append", "extend", "insert", "pop", "remove",
                                           "sort", "reverse", "clear", "copy"]
    static let mutatingMethods: Set<String> = ["append", "extend", "insert", "pop", "remove", "sort", "reverse",
                                               "clear", "popitem", "update", "setdefault"]

    func boundMethod(_ obj: JinjaValue, _ name: String) -> JinjaValue {
        .callable(JinjaCallable(name: "\(obj.pyType).\(name)") { [unowned self] args, line in
            guard let r = try self.callMethod(obj, name, args, line: line) else {
                throw self.err(.unsupported, "method '\(name)' of \(obj.pyType)", line)
            }
            return r
        })
    }

    /// Calls `obj.name(args)` when `name` is a method of obj's type; nil when it is not.
    func callMethod(_ obj0: JinjaValue, _ name: String, _ args0: JinjaArguments, line: Int) throws -> JinjaValue? {
        let obj = obj0.plain
        let args = JinjaArguments(args0.positional.map { $0.plain }, args0.keywords.map { ($0.0, $0.1.plain) })
        switch obj {
        case .string(let s):
            guard JinjaRenderer.stringMethods.contains(name) else { return nil }
            return try stringMethod(s, name, args, line: line)
        case .dict(let d):
            if case .some = d[name], !JinjaRenderer.dictMethods.contains(name) { return nil }
            guard JinjaRenderer.dictMethods.contains(name) else { return nil }
            if JinjaRenderer.mutatingMethods.contains(name) {
                throw err(.security, "access to attribute '\(name)' of 'dict' object is unsafe.", line)
            }
            switch name {
            case "items": return .array(d.pairs.map { .tuple([JinjaDict.keyValue($0.0), $0.1]) })
            case "keys": return .array(d.keyValues)
            case "values": return .array(d.pairs.map { $0.1 })
            case "copy": return obj
            case "get":
                guard let k = args.get(0, "key") else { throw err(.type, "get expected at least 1 argument, got 0", line) }
                let def = args.get(1, "default") ?? JinjaValue.none
                guard let ks = JinjaDict.storageKey(k) else { return def }
                return d[ks] ?? def
            default: return nil
            }
        case .array(let a), .tuple(let a):
            guard JinjaRenderer.listMethods.contains(name) else { return nil }
            if JinjaRenderer.mutatingMethods.contains(name) {
                throw err(.security, "access to attribute '\(name)' of '\(obj.pyType)' object is unsafe.", line)
            }
            switch name {
            case "index":
                guard let x = args.positional.first else { throw err(.type, "index expected 1 argument", line) }
                guard let i = a.firstIndex(where: { pyEquals($0, x) }) else {
                    throw err(.type, "\(x.pyRepr) is not in list", line)
                }
                return .int(i)
            case "count":
                guard let x = args.positional.first else { throw err(.type, "count expected 1 argument", line) }
                return .int(a.filter { pyEquals($0, x) }.count)
            case "copy": return obj
            default: return nil
            }
        case .undefined(let m):
            throw err(.undefined, m, line)
        default:
            return nil
        }
    }

    func strArg(_ v: JinjaValue?, _ what: String, line: Int) throws -> [Unicode.Scalar]? {
        guard let v = v else { return nil }
        switch v {
        case .none: return nil
        case .string(let s): return Array(s.unicodeScalars)
        default: throw err(.type, "\(what) must be str or None, not \(v.pyType)", line)
        }
    }

    func stringMethod(_ s: String, _ name: String, _ args: JinjaArguments, line: Int) throws -> JinjaValue {
        let u = Array(s.unicodeScalars)
        func str(_ x: [Unicode.Scalar]) -> JinjaValue { .string(String(String.UnicodeScalarView(x))) }
        func intArg(_ i: Int, _ n: String, _ def: Int) throws -> Int {
            guard let v = args.get(i, n), !v.isNone else { return def }
            guard let k = v.asIndex else { throw err(.type, "'\(v.pyType)' object cannot be interpreted as an integer", line) }
            return k
        }
        switch name {
        case "strip", "lstrip", "rstrip":
            let chars = try strArg(args.get(0, "chars"), "strip arg", line: line)
            return str(pyStrip(u, chars, left: name != "rstrip", right: name != "lstrip"))
        case "split", "rsplit":
            let sep = try strArg(args.get(0, "sep"), "must be str or None", line: line)
            let maxsplit = try intArg(1, "maxsplit", -1)
            if let sep = sep, sep.isEmpty { throw err(.type, "empty separator", line) }
            let parts = name == "split" ? pySplit(u, sep, maxsplit) : pyRSplit(u, sep, maxsplit)
            return .array(parts.map { str($0) })
        case "splitlines":
            let keep = args.get(0, "keepends")?.truthy ?? false
            var out: [JinjaValue] = []
            var cur: [Unicode.Scalar] = []
            var i = 0
            while i < u.count {
                let c = u[i]
                let isBreak = ["\n", "\r", "\u{0B}", "\u{0C}", "\u{1C}", "\u{1D}", "\u{1E}", "\u{85}", "\u{2028}", "\u{2029}"].contains(c)
                if isBreak {
                    var brk = [c]
                    if c == "\r", i + 1 < u.count, u[i + 1] == "\n" { brk.append("\n"); i += 1 }
                    out.append(str(keep ? cur + brk : cur))
                    cur = []
                } else { cur.append(c) }
                i += 1
            }
            if !cur.isEmpty { out.append(str(cur)) }
            return .array(out)
        case "startswith", "endswith":
            guard let p = args.positional.first else { throw err(.type, "\(name) takes at least 1 argument", line) }
            let start = try intArg(1, "start", 0), end = try intArg(2, "end", Int.max)
            let (lo, hi) = pyRange(u.count, start, end == Int.max ? nil : end)
            let sub = lo <= hi ? Array(u[lo..<hi]) : []
            let candidates: [JinjaValue]
            switch p {
            case .tuple(let t): candidates = t
            case .string: candidates = [p]
            default:
                throw err(.type, "\(name) first arg must be str or a tuple of str, not \(p.pyType)", line)
            }
            if lo > u.count || lo > hi && !(lo == hi) { return .bool(false) }
            for c in candidates {
                guard case .string(let cs) = c else { throw err(.type, "tuple for \(name) must only contain str", line) }
                let cu = Array(cs.unicodeScalars)
                if cu.count > sub.count { continue }
                if name == "startswith" ? Array(sub.prefix(cu.count)) == cu : Array(sub.suffix(cu.count)) == cu { return .bool(true) }
            }
            return .bool(false)
        case "replace":
            guard let old = try strArg(args.get(0, "old"), "replace arg", line: line),
                  let new = try strArg(args.get(1, "new"), "replace arg", line: line) else {
                throw err(.type, "replace expected at least 2 arguments", line)
            }
            return str(pyReplace(u, old, new, try intArg(2, "count", -1)))
        case "upper": return .string(s.uppercased())
        case "lower": return .string(s.lowercased())
        case "casefold": return .string(s.lowercased())
        case "swapcase":
            return .string(String(s.unicodeScalars.map { c -> String in
                c.properties.isUppercase ? String(c).lowercased() : c.properties.isLowercase ? String(c).uppercased() : String(c)
            }.joined()))
        case "title": return .string(pyTitle(s))
        case "capitalize": return .string(pyCapitalize(s))
        case "find", "rfind", "index", "rindex", "count":
            guard let sub = try strArg(args.get(0, "sub"), "must be str", line: line) else {
                throw err(.type, "\(name) expected at least 1 argument", line)
            }
            let (lo, hi) = pyRange(u.count, try intArg(1, "start", 0), args.get(2, "end").flatMap { $0.asIndex })
            let hay = lo <= hi ? Array(u[lo..<hi]) : []
            if name == "count" {
                if lo > hi { return .int(0) }
                if sub.isEmpty { return .int(hay.count + 1) }
                var n = 0, i = 0
                while let f = scalarsFind(hay, sub, from: i) { n += 1; i = f + sub.count }
                return .int(n)
            }
            var found: Int? = nil
            if lo <= hi {
                if name.hasPrefix("r") {
                    var i = 0
                    while let f = scalarsFind(hay, sub, from: i) { found = f; i = f + 1; if f >= hay.count { break } }
                } else { found = scalarsFind(hay, sub, from: 0) }
            }
            if let f = found { return .int(f + lo) }
            if name.hasSuffix("index") { throw err(.type, "substring not found", line) }
            return .int(-1)
        case "join":
            guard let it = args.positional.first else { throw err(.type, "join() takes exactly one argument", line) }
            var parts: [String] = []
            for (i, v) in try iterate(it, line: line).enumerated() {
                guard case .string(let p) = v else {
                    throw err(.type, "sequence item \(i): expected str instance, \(v.pyType) found", line)
                }
                parts.append(p)
            }
            return .string(parts.joined(separator: s))
        case "isdigit", "isnumeric", "isdecimal":
            return .bool(!u.isEmpty && u.allSatisfy { $0.properties.numericType != nil })
        case "isalpha": return .bool(!u.isEmpty && u.allSatisfy { $0.properties.isAlphabetic })
        case "isalnum": return .bool(!u.isEmpty && u.allSatisfy { $0.properties.isAlphabetic || $0.properties.numericType != nil })
        case "isspace": return .bool(!u.isEmpty && u.allSatisfy(isPyWhitespace))
        case "isupper":
            let cased = u.filter { $0.properties.isUppercase || $0.properties.isLowercase }
            return .bool(!cased.isEmpty && cased.allSatisfy { $0.properties.isUppercase })
        case "islower":
            let cased = u.filter { $0.properties.isUppercase || $0.properties.isLowercase }
            return .bool(!cased.isEmpty && cased.allSatisfy { $0.properties.isLowercase })
        case "istitle": return .bool(!u.isEmpty && pyTitle(s) == s)
        case "zfill":
            let w = try intArg(0, "width", 0)
            if u.count >= w { return .string(s) }
            var body = u
            var sign: [Unicode.Scalar] = []
            if let f = body.first, f == "+" || f == "-" { sign = [f]; body.removeFirst() }
            return str(sign + Array(repeating: "0", count: w - u.count) + body)
        case "center", "ljust", "rjust":
            let w = try intArg(0, "width", 0)
            let fill = try strArg(args.get(1, "fillchar"), "fillchar", line: line)?.first ?? " "
            if u.count >= w { return .string(s) }
            let pad = w - u.count
            switch name {
            case "ljust": return str(u + Array(repeating: fill, count: pad))
            case "rjust": return str(Array(repeating: fill, count: pad) + u)
            default:
                let left = pad / 2 + (pad & w & 1)
                return str(Array(repeating: fill, count: left) + u + Array(repeating: fill, count: pad - left))
            }
        case "partition", "rpartition":
            guard let sep = try strArg(args.get(0, "sep"), "sep", line: line), !sep.isEmpty else { throw err(.type, "empty separator", line) }
            var found: Int? = nil
            if name == "partition" { found = scalarsFind(u, sep, from: 0) }
            else { var i = 0; while let f = scalarsFind(u, sep, from: i) { found = f; i = f + 1 } }
            guard let f = found else {
                return name == "partition" ? .tuple([.string(s), .string(""), .string("")]) : .tuple([.string(""), .string(""), .string(s)])
            }
            return .tuple([str(Array(u[..<f])), str(sep), str(Array(u[(f + sep.count)...]))])
        case "removeprefix":
            let p = try strArg(args.get(0, "prefix"), "prefix", line: line) ?? []
            return Array(u.prefix(p.count)) == p ? str(Array(u.dropFirst(p.count))) : .string(s)
        case "removesuffix":
            let p = try strArg(args.get(0, "suffix"), "suffix", line: line) ?? []
            return !p.isEmpty && Array(u.suffix(p.count)) == p ? str(Array(u.dropLast(p.count))) : .string(s)
        case "expandtabs":
            return .string(s.replacingOccurrences(of: "\t", with: "        "))
        case "format":
            return .string(try pyFormat(u, args, line: line))
        default:
            throw err(.unsupported, "str method '\(name)'", line)
        }
    }

    /// `str.format` for `{}`, `{0}`, `{name}` and `{{`/`}}` (no format specs).
    func pyFormat(_ u: [Unicode.Scalar], _ args: JinjaArguments, line: Int) throws -> String {
        var out = ""
        var i = 0
        var auto = 0
        while i < u.count {
            let c = u[i]
            if c == "{" {
                if i + 1 < u.count, u[i + 1] == "{" { out += "{"; i += 2; continue }
                guard let close = u[i...].firstIndex(of: "}") else { throw err(.type, "Single '{' encountered in format string", line) }
                let field = String(String.UnicodeScalarView(u[(i + 1)..<close]))
                if field.contains(":") || field.contains("!") || field.contains(".") || field.contains("[") {
                    throw err(.unsupported, "str.format field '{\(field)}'", line)
                }
                let v: JinjaValue?
                if field.isEmpty { v = auto < args.positional.count ? args.positional[auto] : nil; auto += 1 }
                else if let n = Int(field) { v = n < args.positional.count ? args.positional[n] : nil }
                else { v = args.keyword(field) }
                guard let val = v else { throw err(.type, "Replacement index \(field) out of range for positional args tuple", line) }
                out += val.pyStr
                i = close + 1
            } else if c == "}" {
                if i + 1 < u.count, u[i + 1] == "}" { out += "}"; i += 2; continue }
                throw err(.type, "Single '}' encountered in format string", line)
            } else {
                out.unicodeScalars.append(c)
                i += 1
            }
        }
        return out
    }

    // MARK: globals

    func makeGlobals() -> [String: JinjaValue] {
        var g: [String: JinjaValue] = [:]
        g["range"] = .callable(JinjaCallable(name: "range") { [unowned self] args, line in
            let ints = try args.positional.map { v -> Int in
                guard let i = v.asIndex else { throw self.err(.type, "'\(v.pyType)' object cannot be interpreted as an integer", line) }
                return i
            }
            var start = 0, stop = 0, step = 1
            switch ints.count {
            case 1: stop = ints[0]
            case 2: start = ints[0]; stop = ints[1]
            case 3: start = ints[0]; stop = ints[1]; step = ints[2]
            default: throw self.err(.type, "range expected 1 to 3 arguments, got \(ints.count)", line)
            }
            if step == 0 { throw self.err(.type, "range() arg 3 must not be zero", line) }
            var out: [JinjaValue] = []
            var k = start
            while step > 0 ? k < stop : k > stop {
                out.append(.int(k))
                if out.count > 100_000 { throw self.err(.security, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).", line) }
                k += step
            }
            return .array(out)
        })
        g["namespace"] = .callable(JinjaCallable(name: "namespace") { [unowned self] args, line in
            let ns = JinjaNamespace()
            if let first = args.positional.first {
                guard case .dict(let d) = first else { throw self.err(.type, "namespace() argument must be a mapping", line) }
                for (k, v) in d.pairs { ns.attributes[k] = v }
            }
            for (k, v) in args.keywords {
                if k.hasPrefix("_") {
                    throw self.err(.security, "Chat templates cannot store underscore-prefixed attributes on a namespace, but got '\(k)'. Please rename the attribute.", line)
                }
                ns.attributes[k] = v
            }
            return .namespace(ns)
        })
        g["dict"] = .callable(JinjaCallable(name: "dict") { [unowned self] args, line in
            var d = JinjaDict()
            if let first = args.positional.first {
                switch first {
                case .dict(let x): d = x
                default:
                    for item in try self.iterate(first, line: line) {
                        let kv = try self.iterate(item, line: line)
                        guard kv.count == 2, let k = JinjaDict.storageKey(kv[0]) else {
                            throw self.err(.type, "dict() sequence elements must be (str, value) pairs", line)
                        }
                        d[k] = kv[1]
                    }
                }
            }
            for (k, v) in args.keywords { d[k] = v }
            return .dict(d)
        })
        g["raise_exception"] = .callable(JinjaCallable(name: "raise_exception") { [unowned self] args, line in
            throw self.err(.raised, args.get(0, "message")?.pyStr ?? "", line)
        })
        g["strftime_now"] = .callable(JinjaCallable(name: "strftime_now") { [unowned self] args, line in
            guard case .string(let f)? = args.get(0, "format") else { throw self.err(.type, "strftime_now expects a format string", line) }
            return .string(try pyStrftime(f, self.now, line: line))
        })
        return g
    }

    func pyStrftime(_ format: String, _ date: Date, line: Int) throws -> String {
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone.current
        let c = cal.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday, .nanosecond], from: date)
        let months = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
                      "October", "November", "December"]
        let days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
        let y = c.year!, mo = c.month!, d = c.day!, h = c.hour!, mi = c.minute!, s = c.second!, wd = c.weekday! - 1
        let yday = cal.ordinality(of: .day, in: .year, for: date) ?? 1
        func p2(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        var out = ""
        let u = Array(format.unicodeScalars)
        var i = 0
        while i < u.count {
            guard u[i] == "%", i + 1 < u.count else { out.unicodeScalars.append(u[i]); i += 1; continue }
            var code = u[i + 1]
            var noPad = false
            if code == "-", i + 2 < u.count { noPad = true; code = u[i + 2]; i += 1 }
            i += 2
            func num(_ v: Int, _ width: Int) -> String {
                if noPad { return "\(v)" }
                let sv = "\(v)"
                return String(repeating: "0", count: max(0, width - sv.count)) + sv
            }
            switch code {
            case "Y": out += "\(y)"
            case "y": out += num(y % 100, 2)
            case "m": out += num(mo, 2)
            case "d": out += num(d, 2)
            case "e": out += d < 10 ? " \(d)" : "\(d)"
            case "H": out += num(h, 2)
            case "I": out += num(h % 12 == 0 ? 12 : h % 12, 2)
            case "M": out += num(mi, 2)
            case "S": out += num(s, 2)
            case "p": out += h < 12 ? "AM" : "PM"
            case "B": out += months[mo - 1]
            case "b", "h": out += String(months[mo - 1].prefix(3))
            case "A": out += days[wd]
            case "a": out += String(days[wd].prefix(3))
            case "j": out += num(yday, 3)
            case "w": out += "\(wd)"
            case "u": out += "\(wd == 0 ? 7 : wd)"
            case "f": out += num((c.nanosecond ?? 0) / 1000, 6)
            case "F": out += "\(y)-\(p2(mo))-\(p2(d))"
            case "T": out += "\(p2(h)):\(p2(mi)):\(p2(s))"
            case "D": out += "\(p2(mo))/\(p2(d))/\(p2(y % 100))"
            case "%": out += "%"
            default: throw err(.unsupported, "strftime directive '%\(code)'", line)
            }
        }
        return out
    }
}

// MARK: Python string helpers

func pyStrip(_ u: [Unicode.Scalar], _ chars: [Unicode.Scalar]?, left: Bool, right: Bool) -> [Unicode.Scalar] {
    let strip: (Unicode.Scalar) -> Bool = chars.map { set in { set.contains($0) } } ?? isPyWhitespace
    var lo = 0, hi = u.count
    if left { while lo < hi, strip(u[lo]) { lo += 1 } }
    if right { while hi > lo, strip(u[hi - 1]) { hi -= 1 } }
    return Array(u[lo..<hi])
}

func pySplit(_ u: [Unicode.Scalar], _ sep: [Unicode.Scalar]?, _ maxsplit: Int) -> [[Unicode.Scalar]] {
    var out: [[Unicode.Scalar]] = []
    if let sep = sep {
        var i = 0
        var splits = 0
        while maxsplit < 0 || splits < maxsplit, let f = scalarsFind(u, sep, from: i) {
            out.append(Array(u[i..<f]))
            i = f + sep.count
            splits += 1
        }
        out.append(Array(u[i...]))
        return out
    }
    var i = 0
    var splits = 0
    while i < u.count {
        while i < u.count, isPyWhitespace(u[i]) { i += 1 }
        if i >= u.count { break }
        if maxsplit >= 0 && splits >= maxsplit {
            var e = u.count
            while e > i, isPyWhitespace(u[e - 1]) { e -= 1 }
            out.append(Array(u[i..<e]))
            return out
        }
        var j = i
        while j < u.count, !isPyWhitespace(u[j]) { j += 1 }
        out.append(Array(u[i..<j]))
        splits += 1
        i = j
    }
    return out
}

func pyRSplit(_ u: [Unicode.Scalar], _ sep: [Unicode.Scalar]?, _ maxsplit: Int) -> [[Unicode.Scalar]] {
    if maxsplit < 0 { return pySplit(u, sep, maxsplit) }
    let r = Array(u.reversed())
    let parts = pySplit(r, sep.map { Array($0.reversed()) }, maxsplit)
    return parts.reversed().map { Array($0.reversed()) }
}

func pyReplace(_ u: [Unicode.Scalar], _ old: [Unicode.Scalar], _ new: [Unicode.Scalar], _ count: Int) -> [Unicode.Scalar] {
    var out: [Unicode.Scalar] = []
    var n = 0
    if old.isEmpty {
        for c in u {
            if count < 0 || n < count { out += new; n += 1 }
            out.append(c)
        }
        if count < 0 || n < count { out += new }
        return out
    }
    var i = 0
    while count < 0 || n < count, let f = scalarsFind(u, old, from: i) {
        out += u[i..<f]
        out += new
        i = f + old.count
        n += 1
    }
    out += u[i...]
    return out
}

/// Python slice bounds for `s[start:end]` clamped to 0...n.
func pyRange(_ n: Int, _ start: Int, _ end: Int?) -> (Int, Int) {
    var lo = start, hi = end ?? n
    if lo < 0 { lo = max(0, lo + n) } else { lo = min(lo, n) }
    if hi < 0 { hi = max(0, hi + n) } else { hi = min(hi, n) }
    return (lo, hi)
}

/// Python's `str.title`: a cased character after an uncased one is upper-cased, others lower-cased.
func pyTitle(_ s: String) -> String {
    var out = ""
    var prevCased = false
    for c in s.unicodeScalars {
        let cased = c.properties.isUppercase || c.properties.isLowercase || c.properties.changesWhenTitlecased
        if cased {
            out += prevCased ? String(c).lowercased() : c.properties.titlecaseMapping
        } else {
            out.unicodeScalars.append(c)
        }
        prevCased = cased
    }
    return out
}

/// Python's `str.capitalize`.
func pyCapitalize(_ s: String) -> String {
    guard let f = s.unicodeScalars.first else { return s }
    return f.properties.titlecaseMapping + String(String.UnicodeScalarView(s.unicodeScalars.dropFirst())).lowercased()
}
