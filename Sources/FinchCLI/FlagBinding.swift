import ArgumentParser
import Foundation
import FinchTrain

/// Binds a command's parsed flags to a training configuration by one rule: a flag's property name is the
/// configuration's property name (`@Option var loraR: Int?` ↔ `PEFTOptions.loraR` ↔ `--lora-r` ↔ `lora-r:`).
/// Only the flags the user typed become values (unset optionals, `false` switches and empty lists are left out), so a
/// flag wins over the recipe, and the recipe over the configuration's defaults, which live in the library only.
public enum FlagBinding {
    /// The typed flags of `command` (and of its option groups) as recipe keys, skipping `ConfigOptions`.
    public static func flags(of command: Any) -> [String: Any] {
        var out: [String: Any] = [:]
        collect(command, into: &out)
        return out
    }

    static func collect(_ value: Any, into out: inout [String: Any]) {
        for child in Mirror(reflecting: value).children {
            guard let label = child.label else { continue }
            if child.value is OptionGroup<ConfigOptions> { continue }
            if let group = child.value as? BoundGroup { collect(group.groupValue, into: &out); continue }
            guard let bound = child.value as? BoundFlag, let v = given(bound.boundValue) else { continue }
            let name = label.hasPrefix("_") ? String(label.dropFirst()) : label
            out[Recipe.kebabCase(name)] = v
        }
    }

    /// The value as a recipe value, or nil when the flag was not given.
    static func given(_ value: Any) -> Any? {
        let m = Mirror(reflecting: value)
        if m.displayStyle == .optional {
            guard let inner = m.children.first?.value else { return nil }
            return plain(inner)
        }
        if let b = value as? Bool { return b ? true : nil }                  // a switch left off was not typed
        if let a = value as? [Any] { return a.isEmpty ? nil : a.map(plain) }  // a repeatable option given no value
        return plain(value)
    }

    static func plain(_ v: Any) -> Any {
        if let u = v as? UInt64 { return Int(truncatingIfNeeded: u) }
        if let r = v as? any RawRepresentable, let raw = r.rawValue as? String { return raw }
        return v
    }
}

protocol BoundFlag { var boundValue: Any { get } }
protocol BoundGroup { var groupValue: Any { get } }
extension Option: BoundFlag { var boundValue: Any { wrappedValue } }
extension Flag: BoundFlag { var boundValue: Any { wrappedValue } }
extension OptionGroup: BoundGroup { var groupValue: Any { wrappedValue } }

/// The options every training command has besides its configuration: the recipe, printing the resolved
/// configuration, and replacing an earlier run.
public struct ConfigOptions: ParsableArguments {
    @Option(name: .customLong("config"), help: "YAML recipe: the same keys as the flags (flags win).") public var recipe: String?
    @Flag(help: "Print the resolved configuration (YAML, as RUN/config.yaml records it) and exit.") public var printConfig = false
    @Flag(help: "Replace what an earlier run left in the run folder.") public var overwrite = false
    public init() {}

    /// The configuration of `command`: its defaults, the recipe, then the typed flags; validated. A required option
    /// left out becomes a usage error. With `--print-config` it prints the YAML and returns nil. `recipeOverride`
    /// replaces `--config` ("" = no recipe).
    public func resolve<C: TrainingConfig>(_ type: C.Type, command: Any, recipeOverride: String? = nil) throws -> (config: C, recipe: Recipe)? {
        let resolved: (config: C, recipe: Recipe)
        let url = (recipeOverride ?? recipe).flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }   // "" = none
        do {
            resolved = try C.resolve(recipe: url, flags: FlagBinding.flags(of: command))
        } catch let missing as MissingOption {
            if printConfig, let keys = try? ConfigKeys.describe(C()),
               let r = try? Recipe(defaults: keys.values, recipe: url, flags: FlagBinding.flags(of: command), knownKeys: keys.all, lists: keys.lists) {
                try Self.print(r, keys: keys.all)   // a recipe being written may lack its inputs yet
                return nil
            }
            throw ValidationError(missing.description)
        }
        if printConfig {
            try Self.print(resolved.recipe, keys: C.recipeKeys)
            return nil
        }
        return resolved
    }

    /// The resolved values as YAML, then every key left unset as a comment (`# max-steps:`), so the output is a
    /// complete recipe to edit.
    static func print(_ recipe: Recipe, keys: Set<String>) throws {
        Swift.print(try recipe.yaml(), terminator: "")
        for k in keys.subtracting(recipe.values.keys).sorted() { Swift.print("# \(k):") }
    }
}
