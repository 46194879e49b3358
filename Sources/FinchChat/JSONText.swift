import Foundation
import FinchModel

/// Writes JSON text by hand so that key order is fixed and non-ASCII characters appear as themselves
/// (the same convention as the shared data files).
public enum JSONText {
    /// `s` as a JSON string literal.
    public static func quote(_ s: String) -> String { JSONValue.quote(s) }

    /// `[{"role":…,"content":…},…]`
    public static func messages(_ messages: [Message]) -> String {
        "[" + messages.map { "{\"role\":\(quote($0.role.rawValue)),\"content\":\(quote($0.content))}" }
            .joined(separator: ",") + "]"
    }
}
