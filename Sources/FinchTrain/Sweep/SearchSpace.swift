import Foundation
import FinchData

/// The hyper-parameters a sweep searches: recipe keys (`lr`, `lora-r`, `warmup`, …) of the swept command, each with a
/// distribution. SPACE.yaml maps every key to one of
///
///     lr: {log-uniform: [1.0e-4, 1.0e-2]}      # continuous, sampled uniformly in log space
///     lora-dropout: {uniform: [0.0, 0.2]}
///     warmup: {int: [0, 100]}                  # integers, both ends included
///     max-steps: {log-int: [100, 1000]}
///     lora-r: {choice: [4, 8, 16, 32]}          # any YAML values, lists included
///     method: [lora, dora]                      # a bare list is a choice
public struct SearchSpace {
    public enum Distribution: Equatable {
        case uniform(Double, Double), logUniform(Double, Double), int(Int, Int), logInt(Int, Int)
        case choice([RecipeValue])

        /// Whether the search and the charts treat the value in log space.
        var isLog: Bool {
            switch self { case .logUniform, .logInt: return true; default: return false }
        }

        /// The numeric range in search space (log for log scales); nil for a choice.
        var range: (Double, Double)? {
            switch self {
            case .uniform(let a, let b): return (a, b)
            case .logUniform(let a, let b): return (log(a), log(b))
            case .int(let a, let b): return (Double(a) - 0.5, Double(b) + 0.5)
            case .logInt(let a, let b): return (log(Double(a) - 0.5), log(Double(b) + 0.5))
            case .choice: return nil
            }
        }

        /// A search-space coordinate back to the recipe value (rounded and clamped for integers).
        func value(at u: Double) -> RecipeValue {
            switch self {
            case .uniform(let a, let b): return .double(min(max(u, a), b))
            case .logUniform(let a, let b): return .double(min(max(exp(u), a), b))
            case .int(let a, let b): return .int(min(max(Int(u.rounded()), a), b))
            case .logInt(let a, let b): return .int(min(max(Int(exp(u).rounded()), a), b))
            case .choice(let c): return c[min(max(Int(u), 0), c.count - 1)]
            }
        }

        /// A recipe value's search-space coordinate (the index for a choice); nil when it is outside the space.
        func coordinate(of v: RecipeValue) -> Double? {
            switch (self, v) {
            case (.choice(let c), _): return c.firstIndex(of: v).map(Double.init)
            case (.uniform, _), (.int, _): return v.number
            case (.logUniform, _), (.logInt, _): return v.number.flatMap { $0 > 0 ? log($0) : nil }
            }
        }
    }

    public struct Parameter: Equatable {
        public var key: String
        public var distribution: Distribution
        public init(key: String, distribution: Distribution) { self.key = key; self.distribution = distribution }
    }

    /// In the file's order (the order of the results table's columns).
    public var parameters: [Parameter]

    public init(parameters: [Parameter]) { self.parameters = parameters }

    /// Reads SPACE.yaml. `knownKeys`: the swept command's recipe keys; anything else is refused, as are keys a sweep
    /// cannot vary (`reserved`: the run folder, resuming).
    public static func load(_ url: URL, knownKeys: Set<String>, reserved: Set<String> = ["out", "resume", "config"]) throws -> SearchSpace {
        let (values, lines) = try Recipe.loadYAML(url)
        let order = lines.sorted { $0.value < $1.value }.map(\.key) + values.keys.filter { lines[$0] == nil }.sorted()
        var params: [Parameter] = []
        for key in order {
            let at = "\(url.path):\(lines[key] ?? 0)"
            guard knownKeys.contains(key), !reserved.contains(key) else {
                let hint = reserved.contains(key) ? " (the sweep sets it for every trial)" : Recipe.suggestion(key, knownKeys)
                throw TrainingError("\(at): '\(key)' is not a parameter the sweep can vary\(hint)")
            }
            params.append(Parameter(key: key, distribution: try distribution(values[key]!, at: at)))
        }
        guard !params.isEmpty else { throw TrainingError("\(url.path): the search space is empty (give at least one key, e.g. `lr: {log-uniform: [1.0e-4, 1.0e-2]}`)") }
        return SearchSpace(parameters: params)
    }

    static func distribution(_ v: Any, at: String) throws -> Distribution {
        if let list = v as? [Any] { return try choice(list, at: at) }
        guard let m = v as? [String: Any], m.count == 1, let (kind, arg) = m.first else {
            throw TrainingError("\(at): give one of {uniform|log-uniform|int|log-int: [low, high]} or {choice: [values]}")
        }
        if Recipe.normaliseKey(kind) == "choice" {
            guard let list = arg as? [Any] else { throw TrainingError("\(at): choice takes a list of values") }
            return try choice(list, at: at)
        }
        guard let pair = arg as? [Any], pair.count == 2 else { throw TrainingError("\(at): \(kind) takes [low, high]") }
        let nums = pair.compactMap { RecipeValue($0)?.number }
        guard nums.count == 2, nums[0] < nums[1] else { throw TrainingError("\(at): \(kind) needs two numbers, low < high") }
        let (lo, hi) = (nums[0], nums[1])
        switch Recipe.normaliseKey(kind) {
        case "uniform": return .uniform(lo, hi)
        case "log-uniform", "loguniform":
            guard lo > 0 else { throw TrainingError("\(at): log-uniform needs low > 0") }
            return .logUniform(lo, hi)
        case "int", "int-uniform":
            guard lo == lo.rounded(), hi == hi.rounded() else { throw TrainingError("\(at): int takes whole numbers") }
            return .int(Int(lo), Int(hi))
        case "log-int":
            guard lo == lo.rounded(), hi == hi.rounded(), lo >= 1 else { throw TrainingError("\(at): log-int takes whole numbers ≥ 1") }
            return .logInt(Int(lo), Int(hi))
        default:
            throw TrainingError("\(at): unknown distribution '\(kind)' (uniform, log-uniform, int, log-int, choice)")
        }
    }

    static func choice(_ list: [Any], at: String) throws -> Distribution {
        let values = try list.map { v -> RecipeValue in
            guard let r = RecipeValue(v) else { throw TrainingError("\(at): a choice value must be a number, string, boolean or list") }
            return r
        }
        guard !values.isEmpty else { throw TrainingError("\(at): choice needs at least one value") }
        return .choice(values)
    }
}

/// A recipe value a sweep assigns: what YAML holds, in a form that can be compared, stored in JSON and written back.
public enum RecipeValue: Codable, Equatable, Hashable, CustomStringConvertible {
    case int(Int), double(Double), string(String), bool(Bool), list([RecipeValue])

    public init?(_ v: Any) {
        switch Recipe.native(v) {
        case let b as Bool: self = .bool(b)
        case let i as Int: self = .int(i)
        case let d as Double: self = .double(d)
        case let s as String: self = .string(s)
        case let a as [Any]:
            let items = a.compactMap(RecipeValue.init)
            guard items.count == a.count else { return nil }
            self = .list(items)
        default: return nil
        }
    }

    /// The plain value for YAML / JSON.
    public var native: Any {
        switch self {
        case .int(let i): return i
        case .double(let d): return d
        case .string(let s): return s
        case .bool(let b): return b
        case .list(let l): return l.map(\.native)
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else { self = .list(try c.decode([RecipeValue].self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .bool(let b): try c.encode(b)
        case .list(let l): try c.encode(l)
        }
    }

    var number: Double? {
        switch self { case .int(let i): return Double(i); case .double(let d): return d; default: return nil }
    }

    public var description: String {
        switch self {
        case .int(let i): return "\(i)"
        case .double(let d): return String(format: "%.4g", d)
        case .string(let s): return s
        case .bool(let b): return "\(b)"
        case .list(let l): return l.map(\.description).joined(separator: ",")
        }
    }
}
