import XCTest
import Foundation
import FinchModel
import FinchConformance

/// The conformance runner itself: discovery by kind, one checker per case, an error in one case named and
/// the others still run, and the one-line format other tooling reads.
final class ConformanceRunnerTests: XCTestCase {
    func testErrorsFailOnlyTheirCaseAndTheLineFormatHolds() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("finch-conformance-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let files = [
            "a-missing-field": #"{"kind": "selftest", "inputs": {}}"#,
            "b-passes": #"{"kind": "selftest", "inputs": {"x": [1.5, 2]}, "tolerance": {"abs": 0.1, "rel": 0}}"#,
            "c-other-kind": #"{"kind": "other"}"#,
            "d-not-json": "{",
        ]
        for (name, text) in files {
            let dir = root.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try Data(text.utf8).write(to: dir.appendingPathComponent("case.json"))
        }
        let cases = Conformance.cases(kind: "selftest", under: root)
        XCTAssertEqual(cases.map(\.name), ["a-missing-field", "b-passes"])

        var ran: [String] = [], printed: [String] = []
        let checkers = Conformance.check(cases, log: { printed.append($0) }) { c, checker in
            ran.append(c.name)
            let x = try c.inputs.required("x", \.doubles)
            checker.check("x", actual: x.map { $0 + 0.05 }, expected: x)
        }
        XCTAssertEqual(ran, ["a-missing-field", "b-passes"])
        XCTAssertEqual(checkers.map(\.passed), [false, true])
        XCTAssertEqual(checkers[0].failures, ["stopped by an error: case.json: no 'x'"])
        XCTAssertEqual(printed, ["conformance a-missing-field selftest: FAIL (worst element uses 0.0% of its tolerance)",
                                 "    stopped by an error: case.json: no 'x'",
                                 "conformance b-passes selftest: pass (worst element uses 50.0% of its tolerance, at x)"])
    }

    func testRequiredAndOptionalFields() throws {
        let fields: [String: JSONValue] = ["n": .int(3), "s": .string("a"), "z": .null]
        XCTAssertEqual(try fields.required("n", \.int), 3)
        XCTAssertThrowsError(try fields.required("s", \.int)) { XCTAssertEqual("\($0)", "case.json: 's' is not Int") }
        XCTAssertNil(try fields.optional("z", \.double))
        XCTAssertNil(try fields.optional("absent", \.double))
        XCTAssertThrowsError(try fields.optional("s", \.double))
    }
}
