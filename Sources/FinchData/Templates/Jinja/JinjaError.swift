import Foundation

/// An error raised while parsing or rendering a Jinja template.
///
/// `kind` tells a template's own `raise_exception(...)` (``Kind/raised``, whose `message` is exactly the
/// template's text, as jinja2's `TemplateError` carries it) from syntax errors, undefined values, type errors,
/// sandbox refusals and constructs this interpreter does not implement (``Kind/unsupported``).
public struct JinjaError: Error, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case syntax, undefined, type, security, unsupported, raised
    }
    public var kind: Kind
    /// 1-based line in the template source (0 when unknown).
    public var line: Int
    /// 1-based column for syntax errors, else 0.
    public var column: Int
    public var message: String
    public var templateName: String

    public init(_ kind: Kind, _ message: String, line: Int = 0, column: Int = 0, templateName: String = "<template>") {
        self.kind = kind
        self.message = message
        self.line = line
        self.column = column
        self.templateName = templateName
    }

    public var description: String {
        let place = column > 0 ? "\(templateName):\(line):\(column)" : "\(templateName):\(line)"
        switch kind {
        case .raised: return "\(place): template raised: \(message)"
        case .syntax: return "\(place): syntax error: \(message)"
        case .unsupported: return "\(place): unsupported: \(message)"
        default: return "\(place): \(kind.rawValue) error: \(message)"
        }
    }
}
