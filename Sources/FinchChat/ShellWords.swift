/// Splits a command line into words the way a shell user expects: whitespace separates words,
/// single or double quotes group them, and backslash escapes (`\n`, `\t`, `\\`, `\"`) are decoded.
enum ShellWords {
    struct UnclosedQuote: Error, CustomStringConvertible {
        var description: String { "unclosed quote" }
    }

    static func split(_ text: String) throws -> [String] {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quote: Character? = nil
        var escaping = false
        for ch in text {
            if escaping {
                switch ch {
                case "n": current.append("\n")
                case "t": current.append("\t")
                case "r": current.append("\r")
                default: current.append(ch)
                }
                escaping = false
                inWord = true
                continue
            }
            if ch == "\\" && quote != "'" { escaping = true; continue }
            if let q = quote {
                if ch == q { quote = nil } else { current.append(ch) }
                continue
            }
            if ch == "\"" || ch == "'" { quote = ch; inWord = true; continue }
            if ch.isWhitespace {
                if inWord { words.append(current); current = ""; inWord = false }
                continue
            }
            current.append(ch)
            inWord = true
        }
        if quote != nil { throw UnclosedQuote() }
        if escaping { current.append("\\") }
        if inWord { words.append(current) }
        return words
    }
}
