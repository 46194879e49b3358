import Foundation

/// A trainer's configuration: one Codable value per command (`SFTConfig`, `PretrainConfig`, `RewardConfig`,
/// `DPOConfig`, `PPOConfig`, `ClassifyConfig`). `init()` holds the documented defaults and `validate()` every check,
/// so the CLI, a YAML recipe and library callers all get the same values and the same errors.
///
/// Property names are the camelCase forms of the flags and recipe keys (`maxSteps` ↔ `--max-steps` ↔ `max-steps:`).
/// A configuration made of parts (the training loop, the PEFT settings) encodes them flat, at one level, so a recipe
/// never nests.
public protocol TrainingConfig: Codable {
    init()
    /// Checks ranges and required inputs; an error names the option as `--flag`, so the caller can add where its
    /// value came from (`Recipe.annotate`).
    func validate() throws
}

extension TrainingConfig {
    /// The configuration resolved from its defaults, a YAML recipe (`--config FILE.yaml`) and the flags given on the
    /// command line (recipe keys, kebab-case), in that order of precedence; validated. Unknown keys are errors with a
    /// suggestion. The returned recipe records where every value came from and writes `config.yaml` into the run.
    public static func resolve(recipe: URL? = nil, flags: [String: Any] = [:]) throws -> (config: Self, recipe: Recipe) {
        let keys = try ConfigKeys.describe(Self())
        let r = try Recipe(defaults: keys.values, recipe: recipe, flags: flags, knownKeys: keys.all, lists: keys.lists)
        let config = try r.decode(Self.self)
        do { try config.validate() } catch let e as TrainingError { throw TrainingError(r.annotate(e.description)) }
        return (config, r)
    }

    /// The recipe keys of this configuration (kebab-case), every one, including those whose default is unset.
    public static var recipeKeys: Set<String> { (try? ConfigKeys.describe(Self()).all) ?? [] }
}

/// A required option given neither as a flag nor in the recipe (the CLI shows the command's usage with it).
public struct MissingOption: Error, CustomStringConvertible {
    public let description: String
    public init(flag: String, placeholder: String) {
        description = "--\(flag) \(placeholder) is required (or `\(flag):` in the recipe)"
    }
}

/// Throws `MissingOption` when `value` is empty.
public func requireOption(_ value: String?, _ flag: String, _ placeholder: String) throws {
    guard let v = value, !v.isEmpty else { throw MissingOption(flag: flag, placeholder: placeholder) }
}

/// Encodes a configuration into recipe keys: the values that are set (kebab-case keys, plain Swift values), every key
/// including unset optionals (so a recipe may give them), and which keys hold lists (a flag `a,b` splits into them).
public enum ConfigKeys {
    public struct Description {
        public var values: [String: Any] = [:]
        public var all: Set<String> = []
        public var lists: Set<String> = []
    }

    public static func describe<T: Encodable>(_ value: T) throws -> Description {
        let encoder = KeyRecorder()
        try value.encode(to: encoder)
        return encoder.description
    }

    /// Any Encodable value as plain Swift values (through JSON), UInt64 seeds as Int.
    static func native<T: Encodable>(_ value: T) throws -> Any {
        switch value {
        case let b as Bool: return b
        case let s as String: return s
        case let d as Double: return d
        case let i as Int: return i
        case let u as UInt64: return Int(truncatingIfNeeded: u)
        default:
            let data = try JSONEncoder().encode([value])
            let array = try JSONSerialization.jsonObject(with: data) as? [Any]
            return Recipe.native(array?.first ?? NSNull())
        }
    }

    /// An Encoder that records keyed values flat (parts of a configuration encode into the same level).
    final class KeyRecorder: Encoder {
        var description = Description()
        var codingPath: [CodingKey] = []
        var userInfo: [CodingUserInfoKey: Any] = [:]

        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
            KeyedEncodingContainer(Container<Key>(recorder: self))
        }
        func unkeyedContainer() -> UnkeyedEncodingContainer { fatalError("ConfigKeys: a configuration must be a keyed value") }
        func singleValueContainer() -> SingleValueEncodingContainer { fatalError("ConfigKeys: a configuration must be a keyed value") }

        func put<T: Encodable>(_ value: T?, _ key: CodingKey) throws {
            let k = Recipe.kebabCase(key.stringValue)
            description.all.insert(k)
            if T.self is ListMarker.Type { description.lists.insert(k) }
            if let v = value { description.values[k] = try ConfigKeys.native(v) }
        }
    }

    struct Container<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let recorder: KeyRecorder
        var codingPath: [CodingKey] { [] }
        mutating func encodeNil(forKey key: Key) throws { recorder.description.all.insert(Recipe.kebabCase(key.stringValue)) }
        mutating func encode(_ v: Bool, forKey key: Key) throws { try recorder.put(v, key) }
        mutating func encode(_ v: String, forKey key: Key) throws { try recorder.put(v, key) }
        mutating func encode(_ v: Double, forKey key: Key) throws { try recorder.put(v, key) }
        mutating func encode(_ v: Float, forKey key: Key) throws { try recorder.put(Double(v), key) }
        mutating func encode(_ v: Int, forKey key: Key) throws { try recorder.put(v, key) }
        mutating func encode(_ v: Int8, forKey key: Key) throws { try recorder.put(Int(v), key) }
        mutating func encode(_ v: Int16, forKey key: Key) throws { try recorder.put(Int(v), key) }
        mutating func encode(_ v: Int32, forKey key: Key) throws { try recorder.put(Int(v), key) }
        mutating func encode(_ v: Int64, forKey key: Key) throws { try recorder.put(Int(v), key) }
        mutating func encode(_ v: UInt, forKey key: Key) throws { try recorder.put(Int(v), key) }
        mutating func encode(_ v: UInt8, forKey key: Key) throws { try recorder.put(Int(v), key) }
        mutating func encode(_ v: UInt16, forKey key: Key) throws { try recorder.put(Int(v), key) }
        mutating func encode(_ v: UInt32, forKey key: Key) throws { try recorder.put(Int(v), key) }
        mutating func encode(_ v: UInt64, forKey key: Key) throws { try recorder.put(v, key) }
        mutating func encode<T: Encodable>(_ v: T, forKey key: Key) throws { try recorder.put(v, key) }
        // Unset optionals are keys too: a recipe may set them.
        mutating func encodeIfPresent(_ v: Bool?, forKey key: Key) throws { try recorder.put(v, key) }
        mutating func encodeIfPresent(_ v: String?, forKey key: Key) throws { try recorder.put(v, key) }
        mutating func encodeIfPresent(_ v: Double?, forKey key: Key) throws { try recorder.put(v, key) }
        mutating func encodeIfPresent(_ v: Float?, forKey key: Key) throws { try recorder.put(v.map(Double.init), key) }
        mutating func encodeIfPresent(_ v: Int?, forKey key: Key) throws { try recorder.put(v, key) }
        mutating func encodeIfPresent(_ v: UInt64?, forKey key: Key) throws { try recorder.put(v, key) }
        mutating func encodeIfPresent<T: Encodable>(_ v: T?, forKey key: Key) throws { try recorder.put(v, key) }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            fatalError("ConfigKeys: configurations are flat (\(key.stringValue))")
        }
        mutating func nestedUnkeyedContainer(forKey key: Key) -> UnkeyedEncodingContainer {
            fatalError("ConfigKeys: configurations are flat (\(key.stringValue))")
        }
        mutating func superEncoder() -> Encoder { recorder }
        mutating func superEncoder(forKey key: Key) -> Encoder { recorder }
    }
}

/// Marks array types, so an unset optional list is known to be a list.
protocol ListMarker {}
extension Array: ListMarker {}

extension Recipe {
    /// A configuration value as a recipe (every value a default): what a run started from the library records.
    public static func of<C: TrainingConfig>(_ config: C) throws -> Recipe {
        try Recipe(defaults: try ConfigKeys.describe(config).values)
    }
}
