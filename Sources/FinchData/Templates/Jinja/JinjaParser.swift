import Foundation

/// jinja2's recursive-descent parser, for the statements chat templates use.
struct JinjaParser {
    var tokens: [JinjaToken]
    var i = 0
    let name: String
    /// Names of the open block statements (for jinja2's "innermost block" hint).
    var blockStack: [String] = []

    init(tokens: [JinjaToken], name: String) {
        self.tokens = tokens
        self.name = name
    }

    var current: JinjaToken { tokens[i] }
    var look: JinjaToken { tokens[min(i + 1, tokens.count - 1)] }
    mutating func next() -> JinjaToken { let t = tokens[i]; if i < tokens.count - 1 { i += 1 }; return t }

    func fail(_ msg: String, _ tok: JinjaToken? = nil) -> JinjaError {
        let t = tok ?? current
        return JinjaError(.syntax, msg, line: t.line, column: t.column, templateName: name)
    }

    mutating func expectOp(_ o: String) throws {
        guard current.isOp(o) else { throw fail("expected token '\(o)', got '\(current.describe)'") }
        _ = next()
    }
    mutating func expectName(_ n: String? = nil) throws -> JinjaToken {
        guard current.kind == .name, n == nil || current.text == n else {
            throw fail("expected token '\(n ?? "name")', got '\(current.describe)'")
        }
        return next()
    }
    mutating func expect(_ k: JinjaToken.Kind) throws {
        guard current.kind == k else {
            throw fail("expected token '\(JinjaToken(kind: k, line: 0, column: 0).describe)', got '\(current.describe)'")
        }
        _ = next()
    }
    mutating func skipOp(_ o: String) -> Bool { if current.isOp(o) { _ = next(); return true }; return false }
    mutating func skipName(_ n: String) -> Bool { if current.isName(n) { _ = next(); return true }; return false }

    // MARK: statements

    mutating func parse() throws -> [JStmt] {
        let body = try subparse(endTokens: nil)
        if current.kind != .eof { throw fail("unexpected '\(current.describe)'") }
        return body
    }

    /// Parses until one of `endTokens` (names) appears as the first word of a block tag; the cursor is left on it.
    mutating func subparse(endTokens: [String]?) throws -> [JStmt] {
        var body: [JStmt] = []
        while true {
            let t = current
            switch t.kind {
            case .data:
                _ = next()
                body.append(.output(t.text))
            case .variableBegin:
                _ = next()
                let e = try parseTuple(withCondExpr: true)
                try expect(.variableEnd)
                body.append(.print(e))
            case .blockBegin:
                _ = next()
                if let ends = endTokens, current.kind == .name, ends.contains(current.text) { return body }
                body.append(try parseStatement())
                try expect(.blockEnd)
            case .eof:
                if let ends = endTokens { throw unexpectedEnd(ends) }
                return body
            default:
                throw fail("unexpected '\(t.describe)'")
            }
        }
    }

    /// `parse_statements`: expects the end of the opening tag, then the body up to an end token.
    mutating func parseStatements(_ ends: [String], dropNeedle: Bool = false) throws -> [JStmt] {
        _ = skipOp(":")
        try expect(.blockEnd)
        let body = try subparse(endTokens: ends)
        if current.kind == .eof { throw unexpectedEnd(ends) }
        if dropNeedle { _ = next() }
        return body
    }

    func unexpectedEnd(_ ends: [String]) -> JinjaError {
        var m = "Unexpected end of template. Jinja was looking for the following tags: "
            + ends.map { "'\($0)'" }.joined(separator: " or ") + "."
        if let b = blockStack.last { m += " The innermost block that needs to be closed is '\(b)'." }
        return fail(m)
    }

    mutating func parseStatement() throws -> JStmt {
        let t = current
        guard t.kind == .name else { throw fail("tag name expected") }
        let isBlock = ["if", "for", "macro", "call", "filter", "with", "generation"].contains(t.text)
            || (t.text == "set" && !tokens[(i + 1)...].prefix { $0.kind != .blockEnd }.contains { $0.isOp("=") })
        if isBlock { blockStack.append(t.text) }
        defer { if isBlock { blockStack.removeLast() } }
        switch t.text {
        case "if": return try parseIf()
        case "for": return try parseFor()
        case "set": return try parseSet()
        case "macro": return try parseMacro()
        case "call": return try parseCallBlock()
        case "filter": return try parseFilterBlock()
        case "with": return try parseWith()
        case "generation":
            _ = next()
            let body = try parseStatements(["endgeneration"], dropNeedle: true)
            return .generation(body: body, line: t.line)
        case "break": _ = next(); return .breakStmt(line: t.line)
        case "continue": _ = next(); return .continueStmt(line: t.line)
        case "endif", "endfor", "endset", "endmacro", "endcall", "endfilter", "endwith", "endgeneration", "else", "elif":
            throw fail("Encountered unknown tag '\(t.text)'. Jinja was looking for a matching opening tag.")
        case "include", "import", "from", "extends", "block", "do", "autoescape", "trans", "pluralize":
            throw JinjaError(.unsupported, "statement '\(t.text)' is not supported by Finch's Jinja interpreter",
                             line: t.line, column: t.column, templateName: name)
        default:
            throw fail("Encountered unknown tag '\(t.text)'.")
        }
    }

    mutating func parseIf() throws -> JStmt {
        let line = next().line
        var branches: [(JExpr, [JStmt])] = []
        var elseBody: [JStmt] = []
        while true {
            let test = try parseTuple(withCondExpr: false)
            let body = try parseStatements(["elif", "else", "endif"])
            branches.append((test, body))
            let tok = next()
            if tok.text == "elif" { continue }
            if tok.text == "else" { elseBody = try parseStatements(["endif"], dropNeedle: true) }
            break
        }
        return .ifStmt(branches, elseBody, line: line)
    }

    mutating func parseFor() throws -> JStmt {
        let line = next().line
        let target = try parseAssignTarget(extraEnd: ["in"])
        _ = try expectName("in")
        let iter = try parseTuple(withCondExpr: false, extraEnd: ["recursive"])
        var filter: JExpr? = nil
        if skipName("if") { filter = try parseExpression() }
        if current.isName("recursive") {
            throw JinjaError(.unsupported, "recursive for loops are not supported", line: current.line, templateName: name)
        }
        let body = try parseStatements(["endfor", "else"])
        var elseBody: [JStmt] = []
        if next().text != "endfor" { elseBody = try parseStatements(["endfor"], dropNeedle: true) }
        return .forStmt(target: target, iter: iter, filter: filter, body: body, elseBody: elseBody, line: line)
    }

    mutating func parseSet() throws -> JStmt {
        let line = next().line
        let target = try parseAssignTarget(withNamespace: true)
        if skipOp("=") {
            let e = try parseTuple(withCondExpr: true)
            return .set(target, e, line: line)
        }
        let filter = try parseFilter(nil, startInline: false)
        let body = try parseStatements(["endset"], dropNeedle: true)
        return .setBlock(target, filter: filter, body: body, line: line)
    }

    mutating func parseSignature() throws -> [(String, JExpr?)] {
        var params: [(String, JExpr?)] = []
        try expectOp("(")
        while !current.isOp(")") {
            if !params.isEmpty { try expectOp(",") }
            let n = try expectName().text
            var def: JExpr? = nil
            if skipOp("=") { def = try parseExpression() }
            else if params.contains(where: { $0.1 != nil }) { throw fail("non-default argument follows default argument") }
            params.append((n, def))
        }
        try expectOp(")")
        return params
    }

    mutating func parseMacro() throws -> JStmt {
        let line = next().line
        let n = try expectName().text
        let params = try parseSignature()
        let body = try parseStatements(["endmacro"], dropNeedle: true)
        return .macro(name: n, params: params, body: body, line: line)
    }

    mutating func parseCallBlock() throws -> JStmt {
        let line = next().line
        var params: [(String, JExpr?)] = []
        if current.isOp("(") { params = try parseSignature() }
        let call = try parseExpression()
        guard case .call = call.kind else { throw fail("expected call", tokens[i]) }
        let body = try parseStatements(["endcall"], dropNeedle: true)
        return .callBlock(call: call, params: params, body: body, line: line)
    }

    mutating func parseFilterBlock() throws -> JStmt {
        let line = next().line
        guard let f = try parseFilter(nil, startInline: true) else { throw fail("expected filter") }
        let body = try parseStatements(["endfilter"], dropNeedle: true)
        return .filterBlock(filter: f, body: body, line: line)
    }

    mutating func parseWith() throws -> JStmt {
        let line = next().line
        var assigns: [(JTarget, JExpr)] = []
        while current.kind != .blockEnd {
            if !assigns.isEmpty { try expectOp(",") }
            let target = try parseAssignTarget()
            try expectOp("=")
            assigns.append((target, try parseExpression()))
        }
        let body = try parseStatements(["endwith"], dropNeedle: true)
        return .with(assigns, body: body, line: line)
    }

    mutating func parseAssignTarget(withTuple: Bool = true, extraEnd: [String] = [], withNamespace: Bool = false) throws -> JTarget {
        if withNamespace, current.kind == .name, look.isOp(".") {
            let ns = next().text
            _ = next()
            let attr = try expectName().text
            return .nsAttr(ns, attr)
        }
        func one(_ p: inout JinjaParser) throws -> JTarget {
            if p.current.isOp("(") {
                _ = p.next()
                let t = try p.parseAssignTarget(extraEnd: [])
                try p.expectOp(")")
                return t
            }
            let tok = p.current
            guard tok.kind == .name else { throw p.fail("can't assign to '\(tok.describe)'") }
            if ["true", "false", "none", "True", "False", "None"].contains(tok.text) { throw p.fail("can't assign to literal") }
            _ = p.next()
            return .name(tok.text)
        }
        if !withTuple { return try one(&self) }
        var items: [JTarget] = []
        var isTuple = false
        while true {
            if !items.isEmpty { try expectOp(",") }
            if isTupleEnd(extraEnd) { break }
            items.append(try one(&self))
            if current.isOp(",") { isTuple = true } else { break }
        }
        if !isTuple {
            guard let f = items.first else { throw fail("expected an expression, got '\(current.describe)'") }
            return f
        }
        return .tuple(items)
    }

    func isTupleEnd(_ extraEnd: [String]) -> Bool {
        switch current.kind {
        case .variableEnd, .blockEnd: return true
        case .op where current.text == ")": return true
        case .name where extraEnd.contains(current.text): return true
        default: return false
        }
    }

    // MARK: expressions

    mutating func parseTuple(simplified: Bool = false, withCondExpr: Bool = true, extraEnd: [String] = [],
                             explicitParentheses: Bool = false) throws -> JExpr {
        let line = current.line
        var args: [JExpr] = []
        var isTuple = false
        while true {
            if !args.isEmpty { try expectOp(",") }
            if isTupleEnd(extraEnd) { break }
            if simplified { args.append(try parsePrimary()) }
            else { args.append(try parseExpression(withCondExpr: withCondExpr)) }
            if current.isOp(",") { isTuple = true } else { break }
        }
        if !isTuple {
            if let a = args.first { return a }
            if !explicitParentheses { throw fail("Expected an expression, got '\(current.describe)'") }
        }
        return JExpr(.tuple(args), line: line)
    }

    mutating func parseExpression(withCondExpr: Bool = true) throws -> JExpr {
        withCondExpr ? try parseCondExpr() : try parseOr()
    }

    mutating func parseCondExpr() throws -> JExpr {
        let line = current.line
        var e1 = try parseOr()
        while skipName("if") {
            let e2 = try parseOr()
            var e3: JExpr? = nil
            if skipName("else") { e3 = try parseCondExpr() }
            e1 = JExpr(.condExpr(e2, e1, e3), line: line)
        }
        return e1
    }

    mutating func parseOr() throws -> JExpr {
        var left = try parseAnd()
        while current.isName("or") {
            let l = next().line
            left = JExpr(.or(left, try parseAnd()), line: l)
        }
        return left
    }

    mutating func parseAnd() throws -> JExpr {
        var left = try parseNot()
        while current.isName("and") {
            let l = next().line
            left = JExpr(.and(left, try parseNot()), line: l)
        }
        return left
    }

    mutating func parseNot() throws -> JExpr {
        if current.isName("not") {
            let l = next().line
            return JExpr(.not(try parseNot()), line: l)
        }
        return try parseCompare()
    }

    mutating func parseCompare() throws -> JExpr {
        let line = current.line
        let expr = try parseMath1()
        var ops: [(String, JExpr)] = []
        while true {
            if current.kind == .op, ["==", "!=", "<", "<=", ">", ">="].contains(current.text) {
                let o = next().text
                ops.append((o, try parseMath1()))
            } else if skipName("in") {
                ops.append(("in", try parseMath1()))
            } else if current.isName("not"), look.isName("in") {
                _ = next(); _ = next()
                ops.append(("notin", try parseMath1()))
            } else { break }
        }
        return ops.isEmpty ? expr : JExpr(.compare(expr, ops), line: line)
    }

    mutating func parseMath1() throws -> JExpr {
        var left = try parseConcat()
        while current.isOp("+") || current.isOp("-") {
            let t = next()
            left = JExpr(.binary(t.text, left, try parseConcat()), line: t.line)
        }
        return left
    }

    mutating func parseConcat() throws -> JExpr {
        let line = current.line
        var args = [try parseMath2()]
        while skipOp("~") { args.append(try parseMath2()) }
        return args.count == 1 ? args[0] : JExpr(.concat(args), line: line)
    }

    mutating func parseMath2() throws -> JExpr {
        var left = try parsePow()
        while current.kind == .op, ["*", "/", "//", "%"].contains(current.text) {
            let t = next()
            left = JExpr(.binary(t.text, left, try parsePow()), line: t.line)
        }
        return left
    }

    mutating func parsePow() throws -> JExpr {
        var left = try parseUnary()
        while current.isOp("**") {
            let t = next()
            left = JExpr(.binary("**", left, try parseUnary()), line: t.line)
        }
        return left
    }

    mutating func parseUnary(withFilter: Bool = true) throws -> JExpr {
        let t = current
        var node: JExpr
        if t.isOp("-") {
            _ = next()
            node = JExpr(.neg(try parseUnary(withFilter: false)), line: t.line)
        } else if t.isOp("+") {
            _ = next()
            node = JExpr(.pos(try parseUnary(withFilter: false)), line: t.line)
        } else {
            node = try parsePrimary()
        }
        node = try parsePostfix(node)
        if withFilter { node = try parseFilterExpr(node) }
        return node
    }

    mutating func parsePrimary() throws -> JExpr {
        let t = current
        switch t.kind {
        case .name:
            _ = next()
            switch t.text {
            case "true", "True": return JExpr(.literal(.bool(true)), line: t.line)
            case "false", "False": return JExpr(.literal(.bool(false)), line: t.line)
            case "none", "None": return JExpr(.literal(.none), line: t.line)
            default: return JExpr(.name(t.text), line: t.line)
            }
        case .string:
            var s = next().text
            while current.kind == .string { s += next().text }
            return JExpr(.literal(.string(s)), line: t.line)
        case .integer: _ = next(); return JExpr(.literal(.int(t.int)), line: t.line)
        case .float: _ = next(); return JExpr(.literal(.double(t.double)), line: t.line)
        case .op where t.text == "(":
            _ = next()
            let e = try parseTuple(explicitParentheses: true)
            try expectOp(")")
            return e
        case .op where t.text == "[":
            _ = next()
            var items: [JExpr] = []
            while !current.isOp("]") {
                if !items.isEmpty { try expectOp(",") }
                if current.isOp("]") { break }
                items.append(try parseExpression())
            }
            try expectOp("]")
            return JExpr(.list(items), line: t.line)
        case .op where t.text == "{":
            _ = next()
            var items: [(JExpr, JExpr)] = []
            while !current.isOp("}") {
                if !items.isEmpty { try expectOp(",") }
                if current.isOp("}") { break }
                let k = try parseExpression()
                try expectOp(":")
                items.append((k, try parseExpression()))
            }
            try expectOp("}")
            return JExpr(.dict(items), line: t.line)
        default:
            throw fail("unexpected '\(t.describe)'")
        }
    }

    mutating func parsePostfix(_ start: JExpr) throws -> JExpr {
        var node = start
        while true {
            if current.isOp(".") || current.isOp("[") {
                node = try parseSubscript(node)
            } else if current.isOp("(") {
                node = try parseCall(node)
            } else { break }
        }
        return node
    }

    mutating func parseFilterExpr(_ start: JExpr) throws -> JExpr {
        var node = start
        while true {
            if current.isOp("|") {
                node = try parseFilter(node, startInline: false)!
            } else if current.isName("is") {
                node = try parseTest(node)
            } else if current.isOp("(") {
                node = try parseCall(node)
            } else { break }
        }
        return node
    }

    mutating func parseSubscript(_ node: JExpr) throws -> JExpr {
        let t = next()
        if t.isOp(".") {
            let a = next()
            if a.kind == .name { return JExpr(.getattr(node, a.text), line: a.line) }
            if a.kind == .integer { return JExpr(.getitem(node, JExpr(.literal(.int(a.int)), line: a.line)), line: a.line) }
            throw fail("expected name or number", a)
        }
        var args: [JExpr] = []
        while !current.isOp("]") {
            if !args.isEmpty { try expectOp(",") }
            args.append(try parseSubscribed())
        }
        try expectOp("]")
        let arg = args.count == 1 ? args[0] : JExpr(.tuple(args), line: t.line)
        return JExpr(.getitem(node, arg), line: t.line)
    }

    mutating func parseSubscribed() throws -> JExpr {
        let line = current.line
        var parts: [JExpr?] = []
        if current.isOp(":") {
            _ = next()
            parts = [nil]
        } else {
            let node = try parseExpression()
            if !current.isOp(":") { return node }
            _ = next()
            parts = [node]
        }
        if current.isOp(":") { parts.append(nil) }
        else if !current.isOp("]") && !current.isOp(",") { parts.append(try parseExpression()) }
        else { parts.append(nil) }
        if current.isOp(":") {
            _ = next()
            if !current.isOp("]") && !current.isOp(",") { parts.append(try parseExpression()) } else { parts.append(nil) }
        } else { parts.append(nil) }
        return JExpr(.slice(parts[0], parts[1], parts[2]), line: line)
    }

    mutating func parseCallArgs() throws -> ([JExpr], [(String, JExpr)]) {
        try expectOp("(")
        var args: [JExpr] = []
        var kwargs: [(String, JExpr)] = []
        var requireComma = false
        while !current.isOp(")") {
            if requireComma {
                try expectOp(",")
                if current.isOp(")") { break }
            }
            if current.isOp("*") || current.isOp("**") {
                throw JinjaError(.unsupported, "*args / **kwargs in calls are not supported", line: current.line, templateName: name)
            }
            if current.kind == .name, look.isOp("=") {
                let k = next().text
                _ = next()
                kwargs.append((k, try parseExpression()))
            } else {
                if !kwargs.isEmpty { throw fail("positional argument follows keyword argument") }
                args.append(try parseExpression())
            }
            requireComma = true
        }
        try expectOp(")")
        return (args, kwargs)
    }

    mutating func parseCall(_ node: JExpr) throws -> JExpr {
        let line = current.line
        let (args, kwargs) = try parseCallArgs()
        return JExpr(.call(node, args, kwargs), line: line)
    }

    mutating func parseFilter(_ start: JExpr?, startInline: Bool) throws -> JExpr? {
        var node = start
        var inline = startInline
        while current.isOp("|") || inline {
            if !inline { _ = next() }
            let tok = try expectName()
            var n = tok.text
            while current.isOp(".") { _ = next(); n += "." + (try expectName().text) }
            var args: [JExpr] = [], kwargs: [(String, JExpr)] = []
            if current.isOp("(") { (args, kwargs) = try parseCallArgs() }
            node = JExpr(.filter(node, n, args, kwargs), line: tok.line)
            inline = false
        }
        return node
    }

    mutating func parseTest(_ node: JExpr) throws -> JExpr {
        let tok = next() // 'is'
        let negated = skipName("not")
        var n = try expectName().text
        while current.isOp(".") { _ = next(); n += "." + (try expectName().text) }
        var args: [JExpr] = [], kwargs: [(String, JExpr)] = []
        if current.isOp("(") {
            (args, kwargs) = try parseCallArgs()
        } else if [.name, .string, .integer, .float].contains(current.kind) || current.isOp("[") || current.isOp("{"),
                  !current.isName("else"), !current.isName("or"), !current.isName("and") {
            if current.isName("is") { throw fail("You cannot chain multiple tests with is") }
            var arg = try parsePrimary()
            arg = try parsePostfix(arg)
            args = [arg]
        }
        let t = JExpr(.test(node, n, args, kwargs), line: tok.line)
        return negated ? JExpr(.not(t), line: tok.line) : t
    }
}
