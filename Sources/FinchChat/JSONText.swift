import Foundation

/// Writes JSON text by hand so that key order is fixed and non-ASCII characters appear as themselves
/// (the same convention as the shared data files).
public enum JSONText {
    /// `s` as a JSON string literal.
    public static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// `[{"role":…,"content":…},…]`
    public static func messages(_ messages: [Message]) -> String {
        "[" + messages.map { "{\"role\":\(quote($0.role.rawValue)),\"content\":\(quote($0.content))}" }
            .joined(separator: ",") + "]"
    }
}
