import Foundation
import XCTest
import FinchKernels
import FinchModel

/// Discovery and checking of the reference cases in `../shared/conformance` (override with
/// `FINCH_CONFORMANCE`). Tests ask for the cases of a kind; everything about a case — shapes,
/// hyper-parameters, tolerances — is read from its files.
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

    /// Every case folder whose `case.json` has the given kind, sorted by folder name.
    public static func cases(kind: String) -> [Case] {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: root.path) else { return [] }
        var out: [Case] = []
        for name in names.sorted() {
            let dir = root.appendingPathComponent(name)
            let caseURL = dir.appendingPathComponent("case.json")
            guard let data = try? Data(contentsOf: caseURL),
                  let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let k = json["kind"] as? String, k == kind else { continue }
            out.append(Case(folder: dir, json: json))
        }
        return out
    }

    /// The cases of a kind, or: no reference data at all → the test is skipped (`XCTSkip`, saying where it looked);
    /// data present but no case of this kind → a failure, as it is in CI (`CI` set) whatever the reason.
    public static func requireCases(kind: String) throws -> [Case] {
        let found = cases(kind: kind)
        if !found.isEmpty { return found }
        let hasRoot = FileManager.default.fileExists(atPath: root.path)
        if hasRoot || ProcessInfo.processInfo.environment["CI"] != nil {
            XCTFail("conformance: no case of kind \(kind) under \(root.path)")
            return []
        }
        throw XCTSkip("conformance: no reference data at \(root.path) (set FINCH_CONFORMANCE)")
    }

    /// Prints the one line per case that the issue asks for and returns whether it passed.
    @discardableResult
    public static func report(_ c: Case, _ checker: Checker) -> Bool {
        let pct = String(format: "%.1f", checker.worstUse * 100)
        let status = checker.failures.isEmpty ? "pass" : "FAIL"
        var line = "conformance \(c.name) \(c.kind): \(status) (worst element uses \(pct)% of its tolerance"
        if !checker.worstName.isEmpty { line += ", at \(checker.worstName)" }
        line += ")"
        print(line)
        for f in checker.failures.prefix(20) { print("    \(f)") }
        fflush(stdout)
        return checker.failures.isEmpty
    }
}

/// One case folder.
public struct Case {
    public let folder: URL
    public let json: [String: Any]
    public var name: String { folder.lastPathComponent }
    public var kind: String { json["kind"] as? String ?? "?" }

    public func file(_ name: String) -> URL { folder.appendingPathComponent(name) }

    public var inputs: [String: Any] { json["inputs"] as? [String: Any] ?? [:] }
    public var expected: [String: Any] { json["expected"] as? [String: Any] ?? [:] }
    public var hyperparameters: [String: Any] { json["hyperparameters"] as? [String: Any] ?? [:] }
    public var expectedTensorNames: [String] { json["expected_tensors"] as? [String] ?? [] }

    /// `expected.safetensors` of this case.
    public func expectedTensors() throws -> SafeTensors.File {
        try SafeTensors.File(url: file("expected.safetensors"))
    }

    /// The tolerance (abs, rel) for a tensor or scalar name: an exact override, else the longest
    /// matching `prefix*` override, else the case default.
    public func tolerance(for name: String) -> (abs: Double, rel: Double) {
        let tol = json["tolerance"] as? [String: Any] ?? [:]
        var abs = (tol["abs"] as? Double) ?? 0, rel = (tol["rel"] as? Double) ?? 0
        if let ov = tol["overrides"] as? [String: Any] {
            var best: (Int, [String: Any])? = nil
            for (k, v) in ov {
                guard let d = v as? [String: Any] else { continue }
                if k == name { best = (Int.max, d); break }
                if k.hasSuffix("*"), name.hasPrefix(String(k.dropLast())) {
                    if best == nil || k.count > best!.0 { best = (k.count, d) }
                }
            }
            if let b = best?.1 {
                abs = (b["abs"] as? Double) ?? abs
                rel = (b["rel"] as? Double) ?? rel
            }
        }
        return (abs, rel)
    }
}

/// Accumulates elementwise comparisons against a case's tolerances.
public final class Checker {
    public let c: Case
    public private(set) var worstUse: Double = 0
    public private(set) var worstName = ""
    public private(set) var failures: [String] = []
    public private(set) var compared = 0

    public init(_ c: Case) { self.c = c }

    /// Compares `actual` with `expected` elementwise under the tolerance for `name`.
    public func check(_ name: String, actual: [Float], expected: [Float]) {
        check(name, actual: actual.map(Double.init), expected: expected.map(Double.init))
    }

    public func check(_ name: String, actual: [Double], expected: [Double]) {
        guard actual.count == expected.count else {
            failures.append("\(name): \(actual.count) values, expected \(expected.count)")
            return
        }
        let (a, r) = c.tolerance(for: name)
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

/// JSON helpers for the nested arrays in `case.json`.
public enum JSONValue {
    public static func ints2D(_ v: Any?) -> [[Int]] { (v as? [[Any]] ?? []).map { $0.map { ($0 as? NSNumber)?.intValue ?? 0 } } }
    public static func ints(_ v: Any?) -> [Int] { (v as? [Any] ?? []).map { ($0 as? NSNumber)?.intValue ?? 0 } }
    public static func doubles(_ v: Any?) -> [Double] { (v as? [Any] ?? []).map { ($0 as? NSNumber)?.doubleValue ?? .nan } }
    /// Flattens arbitrarily nested arrays of numbers to Floats (row-major), and returns their shape.
    public static func floatsND(_ v: Any?) -> (values: [Float], shape: [Int]) {
        var out: [Float] = []
        var shape: [Int] = []
        func walk(_ x: Any, depth: Int) {
            if let arr = x as? [Any] {
                if shape.count == depth { shape.append(arr.count) }
                for e in arr { walk(e, depth: depth + 1) }
            } else if let n = x as? NSNumber {
                out.append(Float(n.doubleValue))
            }
        }
        if let v = v { walk(v, depth: 0) }
        return (out, shape)
    }
    public static func double(_ v: Any?) -> Double { (v as? NSNumber)?.doubleValue ?? .nan }
    public static func int(_ v: Any?) -> Int { (v as? NSNumber)?.intValue ?? 0 }
}
