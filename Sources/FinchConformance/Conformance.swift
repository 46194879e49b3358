import Foundation
import XCTest
import FinchKernels
import FinchModel

/// Discovery and checking of the reference cases in `../shared/conformance` (override with `FINCH_CONFORMANCE`).
/// Tests run the cases of a kind through `run(kind:file:line:_:)`; everything about a case — shapes,
/// hyper-parameters, tolerances — is read from its files (`case.json` as a `JSONValue`).
public enum Conformance {
    /// The conformance root: `$FINCH_CONFORMANCE`, else `../shared/conformance` beside the checkout.
    public static var root: URL {
        if let env = ProcessInfo.processInfo.environment["FINCH_CONFORMANCE"], !env.isEmpty {
            return URL(fileURLWithPath: env)
        }
        // Package root = three levels above this source file (Sources/FinchConformance/Conformance.swift).
        let pkg = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return pkg.deletingLastPathComponent().appendingPathComponent("shared/conformance")
    }

    /// Every case folder under `folder` (the conformance root by default) whose `case.json` has the given kind,
    /// sorted by folder name. Folders without a readable `case.json` are passed over.
    public static func cases(kind: String, under folder: URL = Conformance.root) -> [Case] {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: folder.path) else { return [] }
        var out: [Case] = []
        for name in names.sorted() {
            let dir = folder.appendingPathComponent(name)
            let caseURL = dir.appendingPathComponent("case.json")
            guard let data = try? Data(contentsOf: caseURL),
                  let json = try? JSONValue.parse(data, file: caseURL.path),
                  json["kind"]?.string == kind else { continue }
            out.append(Case(folder: dir, json: json))
        }
        return out
    }

    /// The one conformance loop for a test: runs `body` on every case folder of `kind`, each with a fresh `Checker`
    /// (see `check(_:log:_:)`), and fails the test at the caller's `file`/`line` for every case that failed, naming it.
    /// No reference data at all skips the test (`XCTSkip`, saying where it looked); data present but no case of
    /// this kind fails it, as it does in CI (`CI` set) whatever the reason.
    public static func run(kind: String, scaleTolerance: (forward: Double, gradient: Double)? = nil,
                           file: StaticString = #filePath, line: UInt = #line,
                           _ body: (Case, Checker) throws -> Void) throws {
        let found = cases(kind: kind)
        if found.isEmpty {
            let hasRoot = FileManager.default.fileExists(atPath: root.path)
            if hasRoot || ProcessInfo.processInfo.environment["CI"] != nil {
                XCTFail("conformance: no case of kind \(kind) under \(root.path)", file: file, line: line)
                return
            }
            throw XCTSkip("conformance: no reference data at \(root.path) (set FINCH_CONFORMANCE)", file: file, line: line)
        }
        for checker in check(found, scaleTolerance: scaleTolerance, body) where !checker.passed {
            XCTFail("conformance \(checker.c.name) \(checker.c.kind) failed: \(checker.failures.first ?? "")", file: file, line: line)
        }
    }

    /// Runs `body` on each case with a fresh `Checker` and writes the case's line (`line(for:)`) and its first
    /// failures to `log` (standard output by default). An error thrown by `body` becomes a failure of that case
    /// (`stopped by an error: …`) and the other cases still run. Returns the checkers in case order.
    public static func check(_ cases: [Case], scaleTolerance: (forward: Double, gradient: Double)? = nil,
                             log: (String) -> Void = { print($0); fflush(stdout) },
                             _ body: (Case, Checker) throws -> Void) -> [Checker] {
        cases.map { c in
            let checker = Checker(c, scaleTolerance: scaleTolerance)
            do { try body(c, checker) } catch { checker.fail("stopped by an error: \(error)") }
            log(line(for: checker))
            for f in checker.failures.prefix(20) { log("    \(f)") }
            return checker
        }
    }

    /// The one line per case that other tooling reads:
    /// `conformance NAME KIND: pass (worst element uses X% of its tolerance, at TENSOR)` (`FAIL` when it failed;
    /// no `, at …` when nothing was compared).
    public static func line(for checker: Checker) -> String {
        let c = checker.c
        let pct = String(format: "%.1f", checker.worstUse * 100)
        let status = checker.failures.isEmpty ? "pass" : "FAIL"
        var line = "conformance \(c.name) \(c.kind): \(status) (worst element uses \(pct)% of its tolerance"
        if !checker.worstName.isEmpty { line += ", at \(checker.worstName)" }
        return line + ")"
    }
}

/// A case file that lacks a field a test needs, or holds it in another shape.
public struct ConformanceError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One case folder.
public struct Case {
    public let folder: URL
    /// The whole `case.json`.
    public let json: JSONValue
    public var name: String { folder.lastPathComponent }
    public var kind: String { json["kind"]?.string ?? "?" }

    public func file(_ name: String) -> URL { folder.appendingPathComponent(name) }

    public var inputs: [String: JSONValue] { json["inputs"]?.object ?? [:] }
    public var expected: [String: JSONValue] { json["expected"]?.object ?? [:] }
    public var hyperparameters: [String: JSONValue] { json["hyperparameters"]?.object ?? [:] }
    public var expectedTensorNames: [String] { json["expected_tensors"]?.strings ?? [] }

    /// `expected.safetensors` of this case.
    public func expectedTensors() throws -> SafeTensors.File {
        try SafeTensors.File(url: file("expected.safetensors"))
    }

    /// The tolerance (abs, rel) for a tensor or scalar name: an exact override, else the longest
    /// matching `prefix*` override, else the case default.
    public func tolerance(for name: String) -> (abs: Double, rel: Double) {
        let tol = json["tolerance"]?.object ?? [:]
        var abs = tol["abs"]?.double ?? 0, rel = tol["rel"]?.double ?? 0
        if let ov = tol["overrides"]?.object {
            var best: (Int, [String: JSONValue])? = nil
            for (k, v) in ov {
                guard let d = v.object else { continue }
                if k == name { best = (Int.max, d); break }
                if k.hasSuffix("*"), name.hasPrefix(String(k.dropLast())) {
                    if best == nil || k.count > best!.0 { best = (k.count, d) }
                }
            }
            if let b = best?.1 {
                abs = b["abs"]?.double ?? abs
                rel = b["rel"]?.double ?? rel
            }
        }
        return (abs, rel)
    }
}

extension Dictionary where Key == String, Value == JSONValue {
    /// The field `key` read by `get` (`\.double`, `\.intRows`, `\.nestedFloats`, …), or a `ConformanceError`
    /// naming the field: a case that lacks what a test needs fails by name instead of computing with a stand-in.
    public func required<T>(_ key: String, _ get: (JSONValue) -> T?) throws -> T {
        guard let v = self[key] else {
            throw ConformanceError("case.json: no '\(key)'" + (isEmpty ? "" : " (has \(keys.sorted().joined(separator: ", ")))"))
        }
        guard let t = get(v) else { throw ConformanceError("case.json: '\(key)' is not \(T.self)") }
        return t
    }

    /// The field `key` read by `get`, nil when it is absent or null, and a `ConformanceError` when it holds
    /// something else.
    public func optional<T>(_ key: String, _ get: (JSONValue) -> T?) throws -> T? {
        guard let v = self[key], v != .null else { return nil }
        return try required(key, get)
    }
}

extension JSONValue {
    /// `object?.required(key, get)` for a nested object of `case.json`.
    public func required<T>(_ key: String, _ get: (JSONValue) -> T?) throws -> T {
        guard let o = object else { throw ConformanceError("case.json: not an object where '\(key)' is expected") }
        return try o.required(key, get)
    }

    /// `object?.optional(key, get)` for a nested object of `case.json`.
    public func optional<T>(_ key: String, _ get: (JSONValue) -> T?) throws -> T? {
        guard let o = object else { throw ConformanceError("case.json: not an object where '\(key)' is expected") }
        return try o.optional(key, get)
    }
}

/// Accumulates elementwise comparisons against a case's tolerances.
public final class Checker {
    public let c: Case
    public private(set) var worstUse: Double = 0
    public private(set) var worstName = ""
    public private(set) var failures: [String] = []
    public private(set) var compared = 0

    /// Set for runs in reduced precision (bf16 matmuls): each tensor or scalar is then held to a tolerance relative
    /// to its own scale, max|actual − expected| ≤ τ · max|expected| (τ = `gradient` for `grad.*` names, else
    /// `forward`), instead of the case's elementwise fp32 tolerances, which describe fp32 rounding.
    public var scaleTolerance: (forward: Double, gradient: Double)?

    public init(_ c: Case, scaleTolerance: (forward: Double, gradient: Double)? = nil) {
        self.c = c
        self.scaleTolerance = scaleTolerance
    }

    /// Compares `actual` with `expected` elementwise under the tolerance for `name`.
    public func check(_ name: String, actual: [Float], expected: [Float]) {
        check(name, actual: actual.map(Double.init), expected: expected.map(Double.init))
    }

    public func check(_ name: String, actual: [Double], expected: [Double]) {
        guard actual.count == expected.count else {
            failures.append("\(name): \(actual.count) values, expected \(expected.count)")
            return
        }
        var (a, r) = c.tolerance(for: name)
        if let tau = scaleTolerance {
            (a, r) = ((name.hasPrefix("grad.") ? tau.gradient : tau.forward) * (expected.map(Swift.abs).max() ?? 0), 0)
        }
        var localWorst = 0.0, worstIdx = -1
        for i in 0..<actual.count {
            let diff = Swift.abs(actual[i] - expected[i])
            let allowed = a + r * Swift.abs(expected[i])
            let use = allowed > 0 ? diff / allowed : (diff == 0 ? 0 : .infinity)
            if !(use <= localWorst) { localWorst = use; worstIdx = i }   // NaN counts as worst
            if actual[i].isNaN && !expected[i].isNaN { localWorst = .infinity; worstIdx = i }
        }
        compared += actual.count
        if localWorst > worstUse || localWorst.isNaN { worstUse = localWorst; worstName = name }
        if localWorst > 1 || localWorst.isNaN {
            failures.append("\(name)[\(worstIdx)]: got \(actual[worstIdx]), expected \(expected[worstIdx]) (\(String(format: "%.2f", localWorst))× tolerance)")
        }
    }

    /// Compares a tensor with the same-named tensor of `expected.safetensors` (shape included).
    public func check(_ name: String, actual: Tensor, in file: SafeTensors.File) {
        guard let e = try? file.tensor(name) else { failures.append("\(name): missing from expected.safetensors"); return }
        if e.shape != actual.shape && e.count != actual.count {
            failures.append("\(name): shape \(actual.shape), expected \(e.shape)"); return
        }
        check(name, actual: actual.array, expected: e.array)
    }

    /// Exact comparison for ids and counts.
    public func checkExact<T: Equatable>(_ name: String, actual: [T], expected: [T]) {
        compared += expected.count
        if actual != expected { failures.append("\(name): got \(actual), expected \(expected)"); worstUse = max(worstUse, .infinity); worstName = name }
    }

    public func fail(_ message: String) { failures.append(message) }

    public var passed: Bool { failures.isEmpty }
}
