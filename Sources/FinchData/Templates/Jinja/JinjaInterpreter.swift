import Foundation

/// A rendered template plus the spans its `{% generation %}` blocks produced (transformers' AssistantTracker).
public struct JinjaRendering {
    public var text: String
    /// Spans in Unicode scalar offsets (Python string indices, what transformers records).
    public var generationSpans: [Range<Int>]
    /// The same spans in UTF-8 byte offsets into `text`.
    public var generationUTF8Spans: [Range<Int>]
}

/// A parsed Jinja template, rendered with jinja2's semantics as transformers configures it
/// (`ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)`, loop controls, `{% generation %}`,
/// and the globals `raise_exception`, `strftime_now`, `namespace`, `dict`, `range`).
public final class JinjaTemplate: @unchecked Sendable { // immutable after init; each render has its own state
    public let name: String
    let body: [JStmt]

    public init(source: String, name: String = "<template>") throws {
        self.name = name
        var lexer = JinjaLexer(source: source, name: name)
        let tokens = try lexer.tokenize()
        var parser = JinjaParser(tokens: tokens, name: name)
        body = try parser.parse()
    }

    /// Renders with `context` as the template's variables; `now` is what `strftime_now` formats (local time zone).
    public func render(_ context: [String: JinjaValue], now: Date = Date()) throws -> String {
        try renderTracking(context, now: now).text
    }

    /// Renders and reports the `{% generation %}` spans.
    public func renderTracking(_ context: [String: JinjaValue], now: Date = Date()) throws -> JinjaRendering {
        let r = JinjaRenderer(name: name, now: now)
        let root = JinjaScope(parent: nil)
        for (k, v) in context { root.vars[k] = v }
        r.globalsScope = root
        do {
            _ = try r.exec(body, root)
        } catch let e as LoopControl {
            throw JinjaError(.syntax, "'\(e)' outside of a loop", templateName: name)
        }
        // UTF-8 offsets of the scalar spans
        var utf8Spans: [Range<Int>] = []
        if !r.spans.isEmpty {
            var scalarToUTF8: [Int] = [0]
            scalarToUTF8.reserveCapacity(r.out.unicodeScalars.count + 1)
            var acc = 0
            for u in r.out.unicodeScalars { acc += UTF8.width(u); scalarToUTF8.append(acc) }
            utf8Spans = r.spans.map { scalarToUTF8[$0.lowerBound]..<scalarToUTF8[$0.upperBound] }
        }
        return JinjaRendering(text: r.out, generationSpans: r.spans, generationUTF8Spans: utf8Spans)
    }
}

final class JinjaScope {
    var vars: [String: JinjaValue] = [:]
    let parent: JinjaScope?
    init(parent: JinjaScope?) { self.parent = parent }
    func lookup(_ n: String) -> JinjaValue? {
        var s: JinjaScope? = self
        while let c = s {
            if let v = c.vars[n] { return v }
            s = c.parent
        }
        return nil
    }
}

enum LoopControl: Error, CustomStringConvertible {
    case breakLoop, continueLoop
    var description: String { self == .breakLoop ? "break" : "continue" }
}

/// The tree-walking evaluator.
final class JinjaRenderer {
    let name: String
    let now: Date
    var out = ""
    var captureDepth = 0
    // Limits against hostile templates (tools/fuzz: each was a crash or hang); real chat templates stay far below them.
    /// Nesting of expression evaluations and macro calls (a recursive macro would otherwise overflow the stack).
    static let maxDepth = 400
    /// Loop iterations per render (nested `range(100000)` loops would otherwise run for hours).
    static let maxIterations = 100_000
    /// UTF-8 bytes of any string, items of any list, that a template builds, and of the output.
    static let maxLength = 16 << 20
    var depth = 0
    var iterations = 0

    /// Throws when a string or list of `n` bytes/items would pass ``maxLength``.
    func checkLength(_ n: Int, _ line: Int) throws {
        if n > Self.maxLength {
            throw err(.security, "the template builds a string or list of \(n) bytes or items, over the limit of \(Self.maxLength)", line)
        }
    }

    /// Counts one nesting level (an expression or a macro call); pair with `depth -= 1`.
    func enter(_ line: Int) throws {
        depth += 1
        if depth > Self.maxDepth {
            throw err(.security, "expressions or macro calls nest more than \(Self.maxDepth) levels deep (runaway recursion?)", line)
        }
    }
    var spans: [Range<Int>] = []
    var globalsScope: JinjaScope!
    lazy var globals: [String: JinjaValue] = makeGlobals()

    init(name: String, now: Date) {
        self.name = name
        self.now = now
    }

    func err(_ kind: JinjaError.Kind, _ msg: String, _ line: Int) -> JinjaError {
        JinjaError(kind, msg, line: line, templateName: name)
    }

    /// Renders `body` into a fresh buffer and returns it.
    func capture(_ body: [JStmt], _ scope: JinjaScope) throws -> String {
        let saved = out
        out = ""
        captureDepth += 1
        defer { captureDepth -= 1 }
        do {
            _ = try exec(body, scope)
        } catch {
            out = saved
            throw error
        }
        let r = out
        out = saved
        return r
    }

    // MARK: statements

    func exec(_ stmts: [JStmt], _ scope: JinjaScope) throws {
        for s in stmts {
            try exec(s, scope)
            try checkLength(out.utf8.count, 0)
        }
    }

    func exec(_ stmt: JStmt, _ scope: JinjaScope) throws {
        switch stmt {
        case .output(let s):
            out += s
        case .print(let e):
            let v = try eval(e, scope)
            out += try stringForOutput(v, line: e.line)
        case .ifStmt(let branches, let elseBody, _):
            for (test, body) in branches {
                if try eval(test, scope).truthy { try exec(body, scope); return }
            }
            try exec(elseBody, scope)
        case .forStmt(let target, let iterExpr, let filter, let body, let elseBody, let line):
            let seq = try iterate(try eval(iterExpr, scope), line: iterExpr.line)
            var items = seq
            if let f = filter {
                items = []
                for it in seq {
                    let s = JinjaScope(parent: scope)
                    try assign(target, it, s, line: line)
                    if try eval(f, s).truthy { items.append(it) }
                }
            }
            if items.isEmpty { try exec(elseBody, scope); return }
            let n = items.count
            for (idx, item) in items.enumerated() {
                iterations += 1
                if iterations > Self.maxIterations {
                    throw err(.security, "loops ran more than \(Self.maxIterations) iterations in one render (a runaway template?)", line)
                }
                let s = JinjaScope(parent: scope)
                try assign(target, item, s, line: line)
                var loop = JinjaDict()
                loop["index"] = .int(idx + 1)
                loop["index0"] = .int(idx)
                loop["revindex"] = .int(n - idx)
                loop["revindex0"] = .int(n - idx - 1)
                loop["first"] = .bool(idx == 0)
                loop["last"] = .bool(idx == n - 1)
                loop["length"] = .int(n)
                loop["depth"] = .int(1)
                loop["depth0"] = .int(0)
                if idx > 0 { loop["previtem"] = items[idx - 1] }
                if idx + 1 < n { loop["nextitem"] = items[idx + 1] }
                loop["cycle"] = .callable(JinjaCallable(name: "loop.cycle") { args, line in
                    guard !args.positional.isEmpty else { throw JinjaError(.type, "no items for cycling given", line: line) }
                    return args.positional[idx % args.positional.count]
                })
                s.vars["loop"] = .dict(loop)
                do {
                    try exec(body, s)
                } catch LoopControl.breakLoop {
                    break
                } catch LoopControl.continueLoop {
                    continue
                }
            }
        case .set(let target, let e, let line):
            try assign(target, try eval(e, scope), scope, line: line)
        case .setBlock(let target, let filter, let body, let line):
            var v: JinjaValue = .string(try capture(body, JinjaScope(parent: scope)))
            if let f = filter { v = try evalFilterChain(f, base: v, scope) }
            try assign(target, v, scope, line: line)
        case .macro(let n, let params, let body, let line):
            scope.vars[n] = .callable(makeMacro(n, params, body, scope, line: line))
        case .callBlock(let call, let params, let body, let line):
            guard case .call(let callee, let argExprs, let kwExprs) = call.kind else { return }
            let caller = makeMacro("caller", params, body, scope, line: line)
            var args = JinjaArguments(try argExprs.map { try eval($0, scope) }, try kwExprs.map { ($0.0, try eval($0.1, scope)) })
            args.keywords.append(("caller", .callable(caller)))
            let f = try eval(callee, scope)
            let v = try callValue(f, args, line: line)
            out += try stringForOutput(v, line: line)
        case .filterBlock(let filter, let body, _):
            let text = try capture(body, JinjaScope(parent: scope))
            let v = try evalFilterChain(filter, base: .string(text), scope)
            out += try stringForOutput(v, line: filter.line)
        case .with(let assigns, let body, let line):
            let s = JinjaScope(parent: scope)
            for (t, e) in assigns { try assign(t, try eval(e, scope), s, line: line) }
            try exec(body, s)
        case .generation(let body, _):
            if captureDepth == 0 {
                let start = out.unicodeScalars.count
                try exec(body, scope)
                spans.append(start..<out.unicodeScalars.count)
            } else {
                try exec(body, scope)
            }
        case .breakStmt:
            throw LoopControl.breakLoop
        case .continueStmt:
            throw LoopControl.continueLoop
        }
    }

    func stringForOutput(_ v: JinjaValue, line: Int) throws -> String {
        v.pyStr
    }

    func assign(_ target: JTarget, _ value: JinjaValue, _ scope: JinjaScope, line: Int) throws {
        switch target {
        case .name(let n):
            scope.vars[n] = value
        case .nsAttr(let ns, let attr):
            guard let v = scope.lookup(ns) ?? globals[ns] else {
                throw err(.undefined, "'\(ns)' is undefined", line)
            }
            guard case .namespace(let obj) = v else {
                throw err(.type, "cannot assign attribute on non-namespace object", line)
            }
            if attr.hasPrefix("_") {
                throw err(.security, "Chat templates cannot store underscore-prefixed attributes on a namespace, but got '\(attr)'. Please rename the attribute.", line)
            }
            if JinjaRenderer.reaches(value, obj) {
                throw err(.security, "cannot store namespace '\(ns)' inside itself (attribute '\(attr)')", line)
            }
            obj.attributes[attr] = value
        case .tuple(let targets):
            let items = try iterate(value, line: line)
            if items.count != targets.count {
                throw err(.type, items.count > targets.count
                          ? "too many values to unpack (expected \(targets.count))"
                          : "not enough values to unpack (expected \(targets.count), got \(items.count))", line)
            }
            for (t, v) in zip(targets, items) { try assign(t, v, scope, line: line) }
        }
    }

    /// Whether `value` holds `target` (directly or through other namespaces): storing it would make a cycle,
    /// which printing or comparing would follow forever.
    static func reaches(_ value: JinjaValue, _ target: JinjaNamespace) -> Bool {
        var seen = Set<ObjectIdentifier>()
        func walk(_ v: JinjaValue) -> Bool {
            switch v {
            case .array(let a), .tuple(let a), .generator(let a): return a.contains(where: walk)
            case .dict(let d): return d.storage.values.contains(where: walk)
            case .namespace(let n):
                if n === target { return true }
                guard seen.insert(ObjectIdentifier(n)).inserted else { return false }
                return n.attributes.storage.values.contains(where: walk)
            default: return false
            }
        }
        return walk(value)
    }

    func makeMacro(_ n: String, _ params: [(String, JExpr?)], _ body: [JStmt], _ scope: JinjaScope, line: Int) -> JinjaCallable {
        JinjaCallable(name: n) { [unowned self, weak scope] args, callLine in
            try self.enter(callLine)
            defer { self.depth -= 1 }
            let s = JinjaScope(parent: scope ?? self.globalsScope)
            var kwargs = JinjaDict()
            for (k, v) in args.keywords { kwargs[k] = v }
            for (idx, (pname, def)) in params.enumerated() {
                if idx < args.positional.count {
                    if kwargs[pname] != nil {
                        throw self.err(.type, "macro '\(n)' got multiple values for argument '\(pname)'", callLine)
                    }
                    s.vars[pname] = args.positional[idx]
                } else if let v = kwargs[pname] {
                    s.vars[pname] = v
                    kwargs[pname] = nil
                } else if let d = def {
                    s.vars[pname] = try self.eval(d, s)
                } else {
                    s.vars[pname] = .undefined("parameter '\(pname)' was not provided")
                }
            }
            if let c = kwargs["caller"] { s.vars["caller"] = c; kwargs["caller"] = nil }
            s.vars["varargs"] = .tuple(Array(args.positional.dropFirst(params.count)))
            s.vars["kwargs"] = .dict(kwargs)
            return .string(try self.capture(body, s))
        }
    }

    // MARK: expressions

    func eval(_ e: JExpr, _ scope: JinjaScope) throws -> JinjaValue {
        do {
            try enter(e.line)
            defer { depth -= 1 }
            return try evalInner(e, scope)
        } catch var je as JinjaError {
            if je.line == 0 { je.line = e.line }
            je.templateName = name
            throw je
        }
    }

    func lookupName(_ n: String, _ scope: JinjaScope) -> JinjaValue {
        if let v = scope.lookup(n) { return v }
        if let g = globals[n] { return g }
        return .undefined("'\(n)' is undefined")
    }

    func evalInner(_ e: JExpr, _ scope: JinjaScope) throws -> JinjaValue {
        switch e.kind {
        case .literal(let v): return v
        case .name(let n): return lookupName(n, scope)
        case .list(let items): return .array(try items.map { try eval($0, scope) })
        case .tuple(let items): return .tuple(try items.map { try eval($0, scope) })
        case .dict(let pairs):
            var d = JinjaDict()
            for (k, v) in pairs {
                let key = try eval(k, scope)
                guard let ks = JinjaDict.storageKey(key) else {
                    throw err(.type, "unhashable type: '\(key.pyType)'", e.line)
                }
                d[ks] = try eval(v, scope)
            }
            return .dict(d)
        case .getattr(let obj, let attr):
            return try getAttr(try eval(obj, scope), attr, line: e.line)
        case .getitem(let obj, let idx):
            let o = try eval(obj, scope)
            if case .slice(let a, let b, let c) = idx.kind {
                return try slice(o, a.map { try eval($0, scope) }, b.map { try eval($0, scope) }, c.map { try eval($0, scope) }, line: e.line)
            }
            return try getItem(o, try eval(idx, scope), line: e.line)
        case .slice:
            throw err(.syntax, "slice outside of a subscript", e.line)
        case .call(let callee, let argExprs, let kwExprs):
            let args = JinjaArguments(try argExprs.map { try eval($0, scope) }, try kwExprs.map { ($0.0, try eval($0.1, scope)) })
            if case .getattr(let objExpr, let attr) = callee.kind {
                let obj = try eval(objExpr, scope)
                if let r = try callMethod(obj, attr, args, line: e.line) { return r }
                return try callValue(try getAttr(obj, attr, line: e.line), args, line: e.line)
            }
            return try callValue(try eval(callee, scope), args, line: e.line)
        case .filter:
            return try evalFilterChain(e, base: nil, scope)
        case .test(let valueExpr, let tname, let argExprs, let kwExprs):
            let v = try eval(valueExpr, scope)
            let args = JinjaArguments(try argExprs.map { try eval($0, scope) }, try kwExprs.map { ($0.0, try eval($0.1, scope)) })
            return .bool(try applyTest(tname, v, args, line: e.line))
        case .neg(let x):
            let v = try eval(x, scope)
            switch v {
            case .int(let i): return .int(-i)
            case .double(let d): return .double(-d)
            case .bool(let b): return .int(b ? -1 : 0)
            case .undefined(let m): throw err(.undefined, m, e.line)
            default: throw err(.type, "bad operand type for unary -: '\(v.pyType)'", e.line)
            }
        case .pos(let x):
            let v = try eval(x, scope)
            switch v {
            case .int, .double: return v
            case .bool(let b): return .int(b ? 1 : 0)
            case .undefined(let m): throw err(.undefined, m, e.line)
            default: throw err(.type, "bad operand type for unary +: '\(v.pyType)'", e.line)
            }
        case .not(let x): return .bool(!(try eval(x, scope).truthy))
        case .and(let a, let b):
            let l = try eval(a, scope)
            return l.truthy ? try eval(b, scope) : l
        case .or(let a, let b):
            let l = try eval(a, scope)
            return l.truthy ? l : try eval(b, scope)
        case .binary(let op, let a, let b):
            return try binary(op, try eval(a, scope), try eval(b, scope), line: e.line)
        case .concat(let parts):
            var s = ""
            for p in parts {
                s += try eval(p, scope).pyStr
                try checkLength(s.utf8.count, e.line)
            }
            return .string(s)
        case .compare(let first, let ops):
            var left = try eval(first, scope)
            for (op, rexpr) in ops {
                let right = try eval(rexpr, scope)
                if !(try compare(op, left, right, line: e.line)) { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .condExpr(let test, let then, let otherwise):
            if try eval(test, scope).truthy { return try eval(then, scope) }
            if let o = otherwise { return try eval(o, scope) }
            return .undefined("the inline if-expression on line \(e.line) evaluated to false and no else section was defined.")
        }
    }

    /// Applies a filter expression chain; a chain link with no base value gets `base`.
    func evalFilterChain(_ e: JExpr, base: JinjaValue?, _ scope: JinjaScope) throws -> JinjaValue {
        guard case .filter(let inner, let fname, let argExprs, let kwExprs) = e.kind else { return try eval(e, scope) }
        let value: JinjaValue
        if let inner = inner { value = try evalFilterChain(inner, base: base, scope) }
        else if let b = base { value = b }
        else { throw err(.syntax, "filter without a value", e.line) }
        let args = JinjaArguments(try argExprs.map { try eval($0, scope) }, try kwExprs.map { ($0.0, try eval($0.1, scope)) })
        do {
            return try applyFilter(fname, value, args, line: e.line, scope: scope)
        } catch var je as JinjaError {
            if je.line == 0 { je.line = e.line }
            je.templateName = name
            throw je
        }
    }

    func callValue(_ f: JinjaValue, _ args: JinjaArguments, line: Int) throws -> JinjaValue {
        switch f {
        case .callable(let c): return try c.call(args, line: line)
        case .undefined(let m): throw err(.undefined, m, line)
        default: throw err(.type, "'\(f.pyType)' object is not callable", line)
        }
    }

    /// Python iteration.
    func iterate(_ v: JinjaValue, line: Int) throws -> [JinjaValue] {
        switch v.plain {
        case .undefined: return []
        case .array(let a), .tuple(let a): return a
        case .dict(let d): return d.keyValues
        case .generator(let a): return a
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        default: throw err(.type, "'\(v.pyType)' object is not iterable", line)
        }
    }

    // MARK: attribute and item access

    func getAttr(_ obj0: JinjaValue, _ attr: String, line: Int) throws -> JinjaValue {
        let obj = obj0.plain
        switch obj {
        case .undefined(let m): throw err(.undefined, m, line)
        case .dict(let d):
            if JinjaRenderer.dictMethods.contains(attr) { return boundMethod(obj, attr) }
            if let v = d[attr] { return v }
        case .namespace(let n):
            if let v = n.attributes[attr] { return v }
        case .string:
            if JinjaRenderer.stringMethods.contains(attr) { return boundMethod(obj, attr) }
        case .array, .tuple:
            if JinjaRenderer.listMethods.contains(attr) { return boundMethod(obj, attr) }
        default: break
        }
        return .undefined(missingMessage(obj, attr))
    }

    func missingMessage(_ obj: JinjaValue, _ attr: String) -> String {
        "\(JinjaValue.pyStringRepr(obj.typeName)) has no attribute \(JinjaValue.pyStringRepr(attr))"
    }

    func getItem(_ obj0: JinjaValue, _ key0: JinjaValue, line: Int) throws -> JinjaValue {
        let obj = obj0.plain, key = key0.plain
        switch (obj, key) {
        case (.undefined(let m), _): throw err(.undefined, m, line)
        case (.dict(let d), .string(let k)):
            if let v = d[k] { return v }
            if JinjaRenderer.dictMethods.contains(k) { return boundMethod(obj, k) }
            return .undefined(missingMessage(obj, k))
        case (.dict(let d), _):
            if let sk = JinjaDict.storageKey(key), let v = d[sk] { return v }
            return .undefined("\(obj.typeName) has no element \(key.pyRepr)")
        case (.namespace(let n), .string(let k)):
            if let v = n.attributes[k] { return v }
            return .undefined(missingMessage(obj, k))
        case (.array(let a), _), (.tuple(let a), _):
            guard let i = key.asIndex else {
                if case .string(let k) = key { return try getAttr(obj, k, line: line) }
                throw err(.type, "list indices must be integers or slices, not \(key.pyType)", line)
            }
            let j = i < 0 ? i + a.count : i
            if j >= 0 && j < a.count { return a[j] }
            return .undefined("\(obj.typeName) has no element \(key.pyRepr)")
        case (.string(let s), _):
            guard let i = key.asIndex else {
                if case .string(let k) = key { return try getAttr(obj, k, line: line) }
                throw err(.type, "string indices must be integers, not '\(key.pyType)'", line)
            }
            let u = Array(s.unicodeScalars)
            let j = i < 0 ? i + u.count : i
            if j >= 0 && j < u.count { return .string(String(u[j])) }
            return .undefined("\(obj.typeName) has no element \(key.pyRepr)")
        default:
            if case .string(let k) = key { return try getAttr(obj, k, line: line) }
            return .undefined("\(obj.typeName) has no element \(key.pyRepr)")
        }
    }

    func slice(_ obj0: JinjaValue, _ a: JinjaValue?, _ b: JinjaValue?, _ c: JinjaValue?, line: Int) throws -> JinjaValue {
        func idx(_ v: JinjaValue?) throws -> Int? {
            guard let v = v else { return nil }
            if v.isNone { return nil }
            guard let i = v.asIndex else { throw err(.type, "slice indices must be integers or None", line) }
            return i
        }
        let obj = obj0.plain
        let start = try idx(a), stop = try idx(b), step = try idx(c) ?? 1
        if step == 0 { throw err(.type, "slice step cannot be zero", line) }
        func indices(_ n: Int) -> [Int] {
            var out: [Int] = []
            if step > 0 {
                var lo = start ?? 0, hi = stop ?? n
                if lo < 0 { lo = max(0, lo + n) } else { lo = min(lo, n) }
                if hi < 0 { hi = max(0, hi + n) } else { hi = min(hi, n) }
                var k = lo
                while k < hi { out.append(k); k += step }
            } else {
                var lo = start ?? (n - 1), hi = stop ?? -1 - n
                if lo < 0 { lo = max(-1, lo + n) } else { lo = min(lo, n - 1) }
                if hi < 0 { hi = max(-1, hi + n) } else { hi = min(hi, n - 1) }
                if stop == nil { hi = -1 }
                var k = lo
                while k > hi { out.append(k); k += step }
            }
            return out
        }
        switch obj {
        case .array(let arr): return .array(indices(arr.count).map { arr[$0] })
        case .tuple(let arr): return .tuple(indices(arr.count).map { arr[$0] })
        case .string(let s):
            let u = Array(s.unicodeScalars)
            var r = String.UnicodeScalarView()
            for k in indices(u.count) { r.append(u[k]) }
            return .string(String(r))
        case .undefined(let m): throw err(.undefined, m, line)
        default: throw err(.type, "'\(obj.pyType)' object is not subscriptable", line)
        }
    }

    // MARK: operators

    func binary(_ op: String, _ a0: JinjaValue, _ b0: JinjaValue, line: Int) throws -> JinjaValue {
        if op == "+" {
            switch (a0, b0) {
            case (.markup(let x), .markup(let y)): return .markup(x + y)
            case (.markup(let x), .string(let y)): return .markup(x + htmlEscape(y))
            case (.string(let x), .markup(let y)): return .markup(htmlEscape(x) + y)
            default: break
            }
        }
        let a = a0.plain, b = b0.plain
        if case .undefined(let m) = a { throw err(.undefined, m, line) }
        if case .undefined(let m) = b { throw err(.undefined, m, line) }
        func typeError() -> JinjaError {
            err(.type, "unsupported operand type(s) for \(op): '\(a.pyType)' and '\(b.pyType)'", line)
        }
        func overflow() -> JinjaError { err(.unsupported, "integer overflow in '\(op)' (Python integers are unbounded)", line) }
        switch op {
        case "+":
            switch (a, b) {
            case (.string(let x), .string(let y)): try checkLength(x.utf8.count + y.utf8.count, line); return .string(x + y)
            case (.array(let x), .array(let y)): try checkLength(x.count + y.count, line); return .array(x + y)
            case (.tuple(let x), .tuple(let y)): try checkLength(x.count + y.count, line); return .tuple(x + y)
            case (.string, _), (.array, _), (.tuple, _):
                throw err(.type, "can only concatenate \(a.pyType) (not \"\(b.pyType)\") to \(a.pyType)", line)
            default: break
            }
        case "*":
            // Repetition: the result's size first (`'ab' * 10**12` must not try to allocate it).
            func repeated(_ n: Int, _ by: JinjaValue) throws {
                let (total, o) = n.multipliedReportingOverflow(by: max(0, by.asIndex ?? 0))
                try checkLength(o ? Int.max : total, line)
            }
            switch (a, b) {
            case (.string(let s), _) where b.isIntLike:
                try repeated(s.utf8.count, b); return .string(String(repeating: s, count: max(0, b.asIndex!)))
            case (_, .string(let s)) where a.isIntLike:
                try repeated(s.utf8.count, a); return .string(String(repeating: s, count: max(0, a.asIndex!)))
            case (.array(let x), _) where b.isIntLike:
                try repeated(x.count, b); return .array(Array(repeating: x, count: max(0, b.asIndex!)).flatMap { $0 })
            case (.tuple(let x), _) where b.isIntLike:
                try repeated(x.count, b); return .tuple(Array(repeating: x, count: max(0, b.asIndex!)).flatMap { $0 })
            default: break
            }
        case "%":
            if case .string = a { throw err(.unsupported, "printf-style string formatting ('%' on a string) is not supported", line) }
        default: break
        }
        guard let x = a.numeric, let y = b.numeric else { throw typeError() }
        switch (x, y) {
        case (.int(let i), .int(let j)):
            switch op {
            case "+": let r = i.addingReportingOverflow(j); if r.overflow { throw overflow() }; return .int(r.partialValue)
            case "-": let r = i.subtractingReportingOverflow(j); if r.overflow { throw overflow() }; return .int(r.partialValue)
            case "*": let r = i.multipliedReportingOverflow(by: j); if r.overflow { throw overflow() }; return .int(r.partialValue)
            case "/":
                if j == 0 { throw err(.type, "division by zero", line) }
                return .double(Double(i) / Double(j))
            case "//":
                if j == 0 { throw err(.type, "integer division or modulo by zero", line) }
                var q = i / j
                if (i % j != 0) && ((i < 0) != (j < 0)) { q -= 1 }
                return .int(q)
            case "%":
                if j == 0 { throw err(.type, "integer division or modulo by zero", line) }
                let m = i % j
                return .int((m != 0 && ((m < 0) != (j < 0))) ? m + j : m)
            case "**":
                if j < 0 { return .double(pow(Double(i), Double(j))) }
                var r = 1, base = i, e = j
                while e > 0 {
                    if e & 1 == 1 { let m = r.multipliedReportingOverflow(by: base); if m.overflow { throw overflow() }; r = m.partialValue }
                    e >>= 1
                    if e > 0 { let m = base.multipliedReportingOverflow(by: base); if m.overflow { throw overflow() }; base = m.partialValue }
                }
                return .int(r)
            default: throw typeError()
            }
        default:
            let p = x.double, q = y.double
            switch op {
            case "+": return .double(p + q)
            case "-": return .double(p - q)
            case "*": return .double(p * q)
            case "/":
                if q == 0 { throw err(.type, "float division by zero", line) }
                return .double(p / q)
            case "//":
                if q == 0 { throw err(.type, "float floor division by zero", line) }
                return .double((p / q).rounded(.down))
            case "%":
                if q == 0 { throw err(.type, "float modulo", line) }
                var m = fmod(p, q)
                if m != 0 && ((m < 0) != (q < 0)) { m += q }
                return .double(m)
            case "**": return .double(pow(p, q))
            default: throw typeError()
            }
        }
    }

    func compare(_ op: String, _ a0: JinjaValue, _ b0: JinjaValue, line: Int) throws -> Bool {
        let a = a0.plain, b = b0.plain
        switch op {
        case "==": return pyEquals(a, b)
        case "!=": return !pyEquals(a, b)
        case "in": return try contains(b, a, line: line)
        case "notin": return !(try contains(b, a, line: line))
        default:
            if case .undefined(let m) = a { throw err(.undefined, m, line) }
            if case .undefined(let m) = b { throw err(.undefined, m, line) }
            guard let c = pyCompare(a, b) else {
                throw err(.type, "'\(op)' not supported between instances of '\(a.pyType)' and '\(b.pyType)'", line)
            }
            switch op {
            case "<": return c < 0
            case "<=": return c <= 0
            case ">": return c > 0
            case ">=": return c >= 0
            default: throw err(.syntax, "unknown operator \(op)", line)
            }
        }
    }

    /// Python `needle in container`.
    func contains(_ container: JinjaValue, _ needle: JinjaValue, line: Int) throws -> Bool {
        switch container {
        case .undefined: return false
        case .string(let s):
            guard case .string(let n) = needle else {
                throw err(.type, "'in <string>' requires string as left operand, not \(needle.pyType)", line)
            }
            return scalarsContain(Array(s.unicodeScalars), Array(n.unicodeScalars))
        case .array(let a), .tuple(let a): return a.contains { pyEquals($0, needle) }
        case .dict(let d):
            if let k = JinjaDict.storageKey(needle) { return d[k] != nil }
            return false
        case .generator(let a): return a.contains { pyEquals($0, needle) }
        default:
            throw err(.type, "argument of type '\(container.pyType)' is not iterable", line)
        }
    }
}

// MARK: Python value semantics

enum PyNumber {
    case int(Int)
    case double(Double)
    var double: Double { switch self { case .int(let i): return Double(i); case .double(let d): return d } }
}

extension JinjaValue {
    var numeric: PyNumber? {
        switch self {
        case .int(let i): return .int(i)
        case .bool(let b): return .int(b ? 1 : 0)
        case .double(let d): return .double(d)
        default: return nil
        }
    }
    var isIntLike: Bool { if case .int = self { return true }; if case .bool = self { return true }; return false }
    var asIndex: Int? {
        switch self {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }
    var isStringValue: Bool { if case .string = self { return true }; return false }
}

/// markupsafe's escape.
func htmlEscape(_ s: String) -> String {
    var out = ""
    for c in s.unicodeScalars {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&#34;"
        case "'": out += "&#39;"
        default: out.unicodeScalars.append(c)
        }
    }
    return out
}

func scalarsContain(_ hay: [Unicode.Scalar], _ needle: [Unicode.Scalar]) -> Bool {
    scalarsFind(hay, needle, from: 0) != nil
}

func scalarsFind(_ hay: [Unicode.Scalar], _ needle: [Unicode.Scalar], from: Int) -> Int? {
    if needle.isEmpty { return from <= hay.count ? from : nil }
    if needle.count > hay.count { return nil }
    var i = max(0, from)
    let first = needle[0]
    while i + needle.count <= hay.count {
        if hay[i] == first {
            var ok = true
            for k in 1..<needle.count where hay[i + k] != needle[k] { ok = false; break }
            if ok { return i }
        }
        i += 1
    }
    return nil
}

/// Python `==`.
func pyEquals(_ a0: JinjaValue, _ b0: JinjaValue) -> Bool {
    let a = a0.plain, b = b0.plain
    switch (a, b) {
    case (.undefined, .undefined): return true
    case (.undefined, _), (_, .undefined): return false
    case (.none, .none): return true
    case (.string(let x), .string(let y)): return x.unicodeScalars.elementsEqual(y.unicodeScalars)
    case (.array(let x), .array(let y)), (.tuple(let x), .tuple(let y)):
        return x.count == y.count && zip(x, y).allSatisfy { pyEquals($0, $1) }
    case (.dict(let x), .dict(let y)):
        return x.count == y.count && x.pairs.allSatisfy { k, v in y[k].map { pyEquals(v, $0) } ?? false }
    case (.namespace(let x), .namespace(let y)): return x === y
    case (.callable(let x), .callable(let y)): return x === y
    default:
        if let x = a.numeric, let y = b.numeric {
            if case .int(let i) = x, case .int(let j) = y { return i == j }
            return x.double == y.double
        }
        return false
    }
}

/// Python ordering (`<`), nil when the types are not orderable.
func pyCompare(_ a0: JinjaValue, _ b0: JinjaValue) -> Int? {
    let a = a0.plain, b = b0.plain
    switch (a, b) {
    case (.string(let x), .string(let y)):
        var i1 = x.unicodeScalars.makeIterator(), i2 = y.unicodeScalars.makeIterator()
        while true {
            let c1 = i1.next(), c2 = i2.next()
            switch (c1, c2) {
            case (nil, nil): return 0
            case (nil, _): return -1
            case (_, nil): return 1
            case (let p?, let q?): if p != q { return p.value < q.value ? -1 : 1 }
            }
        }
    case (.array(let x), .array(let y)), (.tuple(let x), .tuple(let y)):
        for (p, q) in zip(x, y) where !pyEquals(p, q) { return pyCompare(p, q) }
        return x.count == y.count ? 0 : (x.count < y.count ? -1 : 1)
    default:
        if let x = a.numeric, let y = b.numeric {
            if case .int(let i) = x, case .int(let j) = y { return i == j ? 0 : (i < j ? -1 : 1) }
            let p = x.double, q = y.double
            return p == q ? 0 : (p < q ? -1 : 1)
        }
        return nil
    }
}
