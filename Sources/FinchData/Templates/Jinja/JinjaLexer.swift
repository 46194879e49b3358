import Foundation

/// One token of a template, with jinja2's token kinds.
struct JinjaToken {
    enum Kind: Equatable {
        case data, variableBegin, variableEnd, blockBegin, blockEnd
        case name, string, integer, float, op
        case eof
    }
    var kind: Kind
    var text: String = ""
    var int: Int = 0
    var double: Double = 0
    var line: Int
    var column: Int

    func isName(_ n: String) -> Bool { kind == .name && text == n }
    func isOp(_ o: String) -> Bool { kind == .op && text == o }

    /// jinja2's `describe_token`.
    var describe: String {
        switch kind {
        case .data: return "template data"
        case .variableBegin: return "begin of print statement"
        case .variableEnd: return "end of print statement"
        case .blockBegin: return "begin of statement block"
        case .blockEnd: return "end of statement block"
        case .eof: return "end of template"
        case .string: return "string"
        case .integer: return "integer"
        case .float: return "float"
        case .name, .op: return text
        }
    }
}

/// jinja2's lexer with `trim_blocks=True`, `lstrip_blocks=True` (as transformers configures it) and the default
/// delimiters; newlines are normalised to "\n" and one trailing newline is dropped (`keep_trailing_newline=False`).
struct JinjaLexer {
    let src: [Unicode.Scalar]
    let name: String
    var trimBlocks = true
    var lstripBlocks = true
    var pos = 0
    var line = 1
    var lineStart = 0 // index of the first scalar of the current line
    var tokens: [JinjaToken] = []

    init(source: String, name: String) {
        // Normalise newlines and drop one trailing newline, as jinja2's tokeniter does.
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(source.unicodeScalars.count)
        var it = Array(source.unicodeScalars)
        var i = 0
        while i < it.count {
            let c = it[i]
            if c == "\r" {
                out.append("\n")
                if i + 1 < it.count, it[i + 1] == "\n" { i += 1 }
            } else { out.append(c) }
            i += 1
        }
        if out.last == "\n" { out.removeLast() }
        it = []
        src = out
        self.name = name
    }

    func error(_ msg: String, at index: Int? = nil) -> JinjaError {
        // compute line/column for the index
        let idx = min(index ?? pos, src.count)
        var l = 1, col = 1
        var k = 0
        while k < idx { if src[k] == "\n" { l += 1; col = 1 } else { col += 1 }; k += 1 }
        return JinjaError(.syntax, msg, line: l, column: col, templateName: name)
    }

    func at(_ i: Int) -> Unicode.Scalar? { i < src.count ? src[i] : nil }
    func matches(_ s: String, at i: Int) -> Bool {
        var k = i
        for u in s.unicodeScalars {
            guard k < src.count, src[k] == u else { return false }
            k += 1
        }
        return true
    }

    /// Advances `pos` to `to`, counting lines.
    mutating func advance(to: Int) {
        while pos < to {
            if src[pos] == "\n" { line += 1; lineStart = pos + 1 }
            pos += 1
        }
    }

    var column: Int { pos - lineStart + 1 }

    mutating func emitData(_ scalars: ArraySlice<Unicode.Scalar>, line: Int) {
        if scalars.isEmpty { return }
        tokens.append(JinjaToken(kind: .data, text: String(String.UnicodeScalarView(scalars)), line: line, column: 0))
    }

    /// Applies the strip sign / lstrip_blocks rule to `text` (the data before a tag).
    func stripped(_ text: ArraySlice<Unicode.Scalar>, sign: Unicode.Scalar?, isVariable: Bool, lineStarting: Bool) -> ArraySlice<Unicode.Scalar> {
        if sign == "-" {
            var e = text.endIndex
            while e > text.startIndex, isPyWhitespace(text[e - 1]) { e -= 1 }
            return text[text.startIndex..<e]
        }
        if sign != "+" && lstripBlocks && !isVariable {
            var lpos = text.startIndex
            if let nl = text.lastIndex(of: "\n") { lpos = nl + 1 }
            if lpos > text.startIndex || lineStarting {
                let tail = text[lpos...]
                if !tail.isEmpty && tail.allSatisfy(isPyWhitespace) { return text[text.startIndex..<lpos] }
            }
        }
        return text
    }

    mutating func tokenize() throws -> [JinjaToken] {
        var lineStarting = true
        while pos < src.count {
            // Find the next tag start.
            var i = pos
            var tag: Unicode.Scalar? = nil
            while i + 1 < src.count {
                if src[i] == "{", src[i + 1] == "{" || src[i + 1] == "%" || src[i + 1] == "#" { tag = src[i + 1]; break }
                i += 1
            }
            guard let kind = tag else {
                emitData(src[pos...], line: line)
                advance(to: src.count)
                break
            }
            let sign: Unicode.Scalar? = (at(i + 2) == "-" || at(i + 2) == "+") ? at(i + 2) : nil
            // raw block?
            var rawEnd: Int? = nil
            if kind == "%" {
                var k = i + 2 + (sign == nil ? 0 : 1)
                while let c = at(k), isPyWhitespace(c) { k += 1 }
                if matches("raw", at: k) {
                    k += 3
                    while let c = at(k), isPyWhitespace(c) { k += 1 }
                    if matches("-%}", at: k) {
                        k += 3
                        while let c = at(k), isPyWhitespace(c) { k += 1 }
                        rawEnd = k
                    } else if matches("%}", at: k) { rawEnd = k + 2 }
                }
            }
            let text = stripped(src[pos..<i], sign: sign, isVariable: kind == "{", lineStarting: lineStarting)
            emitData(text, line: line)
            advance(to: i)
            let tagLine = line, tagCol = column
            if let rawEnd = rawEnd {
                advance(to: rawEnd)
                try lexRawBody()
                lineStarting = pos > 0 && src[pos - 1] == "\n"
                continue
            }
            advance(to: i + 2 + (sign == nil ? 0 : 1))
            if kind == "#" {
                // comment: up to the first "#}"
                var j = pos
                var found = false
                while j + 1 < src.count { if src[j] == "#", src[j + 1] == "}" { found = true; break }; j += 1 }
                guard found else { throw error("Missing end of comment tag", at: i) }
                var end = j + 2
                if j > pos && src[j - 1] == "-" {
                    while let c = at(end), isPyWhitespace(c) { end += 1 }
                } else if j > pos && src[j - 1] == "+" {
                } else if trimBlocks, at(end) == "\n" { end += 1 }
                advance(to: end)
                lineStarting = src[end - 1] == "\n"
                continue
            }
            let isBlock = kind == "%"
            tokens.append(JinjaToken(kind: isBlock ? .blockBegin : .variableBegin, line: tagLine, column: tagCol))
            try lexTagBody(isBlock: isBlock, startIndex: i)
            lineStarting = pos > 0 && src[pos - 1] == "\n"
        }
        tokens.append(JinjaToken(kind: .eof, line: line, column: column))
        return tokens
    }

    /// After `{% raw %}`: data up to `{% endraw %}`, with the strip rules applied to it.
    mutating func lexRawBody() throws {
        let start = pos, startLine = line
        var i = pos
        while i + 1 < src.count {
            if src[i] == "{", src[i + 1] == "%" {
                let sign: Unicode.Scalar? = (at(i + 2) == "-" || at(i + 2) == "+") ? at(i + 2) : nil
                var k = i + 2 + (sign == nil ? 0 : 1)
                while let c = at(k), isPyWhitespace(c) { k += 1 }
                if matches("endraw", at: k) {
                    k += 6
                    while let c = at(k), isPyWhitespace(c) { k += 1 }
                    var end: Int? = nil
                    if matches("+%}", at: k) { end = k + 3 }
                    else if matches("-%}", at: k) {
                        end = k + 3
                        while let c = at(end!), isPyWhitespace(c) { end! += 1 }
                    } else if matches("%}", at: k) {
                        end = k + 2
                        if trimBlocks, at(end!) == "\n" { end! += 1 }
                    }
                    if let end = end {
                        let text = stripped(src[start..<i], sign: sign, isVariable: false, lineStarting: false)
                        emitData(text, line: startLine)
                        advance(to: end)
                        return
                    }
                }
            }
            i += 1
        }
        throw error("Missing end of raw directive", at: start)
    }

    static let operators3: [String] = []
    static let operators2: [String] = ["//", "**", "==", "!=", "<=", ">="]
    static let operators1: Set<Unicode.Scalar> = ["+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", "<", ">", "=", ".", ":", "|", ",", ";"]

    static func isDigit(_ c: Unicode.Scalar?) -> Bool { guard let c = c else { return false }; return ("0"..."9").contains(c) }
    static func isNameStart(_ c: Unicode.Scalar?) -> Bool {
        guard let c = c else { return false }
        return c == "_" || ("a"..."z").contains(c) || ("A"..."Z").contains(c) || (c.value >= 0x80 && c.properties.isXIDStart)
    }
    static func isNameChar(_ c: Unicode.Scalar?) -> Bool {
        guard let c = c else { return false }
        return isNameStart(c) || isDigit(c) || (c.value >= 0x80 && c.properties.isXIDContinue)
    }

    /// Tokens of one `{{ ... }}` or `{% ... %}` up to and including its end delimiter.
    mutating func lexTagBody(isBlock: Bool, startIndex: Int) throws {
        var balance: [Unicode.Scalar] = []
        while true {
            guard pos < src.count else {
                throw error(isBlock ? "unexpected end of template, expected 'end of statement block'"
                                    : "unexpected end of template, expected 'end of print statement'")
            }
            let c = src[pos]
            if balance.isEmpty {
                let close = isBlock ? "%}" : "}}"
                if c == "-" && matches(close, at: pos + 1) {
                    tokens.append(JinjaToken(kind: isBlock ? .blockEnd : .variableEnd, line: line, column: column))
                    var end = pos + 3
                    while let w = at(end), isPyWhitespace(w) { end += 1 }
                    advance(to: end)
                    return
                }
                if isBlock && c == "+" && matches(close, at: pos + 1) {
                    tokens.append(JinjaToken(kind: .blockEnd, line: line, column: column))
                    advance(to: pos + 3)
                    return
                }
                if matches(close, at: pos) {
                    tokens.append(JinjaToken(kind: isBlock ? .blockEnd : .variableEnd, line: line, column: column))
                    var end = pos + 2
                    if isBlock && trimBlocks && at(end) == "\n" { end += 1 }
                    advance(to: end)
                    return
                }
            }
            if isPyWhitespace(c) { advance(to: pos + 1); continue }
            let tokLine = line, tokCol = column
            if JinjaLexer.isDigit(c) {
                var j = pos
                func digits(_ j: inout Int) { while JinjaLexer.isDigit(at(j)) || (at(j) == "_" && JinjaLexer.isDigit(at(j + 1))) { j += 1 } }
                digits(&j)
                var isFloat = false
                if at(j) == ".", JinjaLexer.isDigit(at(j + 1)) { isFloat = true; j += 1; digits(&j) }
                if at(j) == "e" || at(j) == "E" {
                    var k = j + 1
                    if at(k) == "+" || at(k) == "-" { k += 1 }
                    if JinjaLexer.isDigit(at(k)) { isFloat = true; j = k; digits(&j) }
                }
                let text = String(String.UnicodeScalarView(src[pos..<j])).replacingOccurrences(of: "_", with: "")
                if isFloat {
                    tokens.append(JinjaToken(kind: .float, text: text, double: Double(text) ?? 0, line: tokLine, column: tokCol))
                } else {
                    guard let v = Int(text) else { throw error("integer literal too large: \(text)") }
                    tokens.append(JinjaToken(kind: .integer, text: text, int: v, line: tokLine, column: tokCol))
                }
                advance(to: j)
                continue
            }
            if JinjaLexer.isNameStart(c) {
                var j = pos + 1
                while JinjaLexer.isNameChar(at(j)) { j += 1 }
                tokens.append(JinjaToken(kind: .name, text: String(String.UnicodeScalarView(src[pos..<j])), line: tokLine, column: tokCol))
                advance(to: j)
                continue
            }
            if c == "'" || c == "\"" {
                let (value, end) = try lexString(quote: c)
                tokens.append(JinjaToken(kind: .string, text: value, line: tokLine, column: tokCol))
                advance(to: end)
                continue
            }
            var op: String? = nil
            for o in JinjaLexer.operators2 where matches(o, at: pos) { op = o; break }
            if op == nil, JinjaLexer.operators1.contains(c) { op = String(c) }
            guard let o = op else { throw error("unexpected char \(JinjaValue.pyStringRepr(String(c))) at \(pos)") }
            switch o {
            case "(", "[", "{": balance.append(c)
            case ")", "]", "}":
                let expected: Unicode.Scalar = o == ")" ? "(" : o == "]" ? "[" : "{"
                guard let last = balance.last else { throw error("unexpected '\(o)'") }
                guard last == expected else {
                    let want = last == "(" ? ")" : last == "[" ? "]" : "}"
                    throw error("unexpected '\(o)', expected '\(want)'")
                }
                balance.removeLast()
            default: break
            }
            tokens.append(JinjaToken(kind: .op, text: o, line: tokLine, column: tokCol))
            advance(to: pos + o.unicodeScalars.count)
        }
    }

    /// A string literal decoded like Python's `unicode-escape` (jinja2's lexer does exactly that).
    func lexString(quote: Unicode.Scalar) throws -> (String, Int) {
        var j = pos + 1
        var out = String.UnicodeScalarView()
        while j < src.count {
            let c = src[j]
            if c == quote { return (String(out), j + 1) }
            if c != "\\" { out.append(c); j += 1; continue }
            guard j + 1 < src.count else { break }
            let e = src[j + 1]
            j += 2
            func hex(_ n: Int) -> UInt32? {
                guard j + n <= src.count, let v = UInt32(String(String.UnicodeScalarView(src[j..<j + n])), radix: 16) else { return nil }
                return v
            }
            switch e {
            case "\n": break
            case "\\": out.append("\\")
            case "'": out.append("'")
            case "\"": out.append("\"")
            case "a": out.append("\u{07}")
            case "b": out.append("\u{08}")
            case "f": out.append("\u{0C}")
            case "n": out.append("\n")
            case "r": out.append("\r")
            case "t": out.append("\t")
            case "v": out.append("\u{0B}")
            case "x", "u", "U":
                let n = e == "x" ? 2 : e == "u" ? 4 : 8
                guard let v = hex(n), let u = Unicode.Scalar(v) else { throw error("invalid \\\(e) escape in string literal", at: j) }
                out.append(u)
                j += n
            case "0"..."7":
                var v = e.value - 48
                var k = 0
                while k < 2, j < src.count, ("0"..."7").contains(src[j]) { v = v * 8 + src[j].value - 48; j += 1; k += 1 }
                out.append(Unicode.Scalar(v) ?? "\u{FFFD}")
            default:
                out.append("\\")
                out.append(e)
            }
        }
        throw error("unexpected end of string", at: pos)
    }
}
