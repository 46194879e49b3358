import XCTest
import Foundation
import FinchModel

/// The one JSON value type: exact 64-bit integers, Codable both ways, captured Codable values, native values,
/// typed accessors and the Python-style writer.
final class JSONValueTests: XCTestCase {
    func testIntegersDoublesAndCodableRoundTrip() throws {
        let text = #"{"big": 18446744073709551614, "min": -9223372036854775808, "whole": 10000.0, "lr": 2.9999999999999997e-05, "#
            + #""s": "é\"x", "n": null, "ok": true, "list": [1, -2, 3.5]}"#
        let v = try JSONValue.parse(Data(text.utf8), file: "t")
        XCTAssertEqual(v["big"], .uint(.max - 1))
        XCTAssertEqual(v["min"], .int(Int64.min))
        XCTAssertEqual(v["whole"], .int(10000))                 // integral numbers are integers
        XCTAssertEqual(v["lr"]?.double, Double("2.9999999999999997e-05"))   // parsed exactly (JSONSerialization is 1 ulp off)
        XCTAssertEqual(v["s"]?.string, "é\"x")
        XCTAssertEqual(v["n"]?.isNull, true)
        XCTAssertEqual(v["ok"]?.bool, true)
        XCTAssertEqual(v["list"]?.doubles, [1, -2, 3.5])
        XCTAssertNil(v["list"]?.ints)
        XCTAssertEqual(try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(v)), v)
    }

    func testCapturesAndRebuildsCodableValues() throws {
        struct Cursor: Codable, Equatable { var seed: UInt64; var offset: Int64; var frac: Double; var tags: [String]; var none: Int? }
        let cursor = Cursor(seed: .max - 1, offset: .min, frac: 0.1, tags: ["a"], none: nil)
        let blob = try JSONValue(encoding: cursor)
        XCTAssertEqual(blob["seed"], .uint(.max - 1))
        XCTAssertEqual(try blob.decode(Cursor.self), cursor)
        let native = try XCTUnwrap(blob.nativeValue as? [String: Any])
        XCTAssertEqual(native["seed"] as? UInt64, .max - 1)
        XCTAssertEqual(native["offset"] as? Int, .min)
        XCTAssertEqual(native["frac"] as? Double, 0.1)
        XCTAssertEqual(native["tags"] as? [String], ["a"])
    }

    func testTypedAccessors() {
        let v: JSONValue = .object(["rows": .array([.array([1, 2].map { .int($0) }), .array([.int(3), .double(4)])]),
                                    "t": .array([.array([.double(0.5), .int(1)]), .array([.double(2), .double(-1)])]),
                                    "x": .double(3), "f": .double(0.25), "names": .array([.string("a"), .string("b")])])
        XCTAssertEqual(v["rows"]?.intRows, [[1, 2], [3, 4]])
        XCTAssertEqual(v["t"]?.nestedFloats?.values, [0.5, 1, 2, -1])
        XCTAssertEqual(v["t"]?.nestedFloats?.shape, [2, 2])
        XCTAssertEqual(v["x"]?.nestedFloats?.shape, [])
        XCTAssertNil(v["names"]?.nestedFloats)
        XCTAssertEqual(v["x"]?.int, 3)
        XCTAssertNil(v["f"]?.int)
        XCTAssertEqual(v["names"]?.strings, ["a", "b"])
        XCTAssertNil(v["missing"])
        XCTAssertNil(v["x"]?["deeper"])
    }

    /// `json.dumps(obj, indent=2, sort_keys=True)` as Python writes it.
    func testPythonStyleText() {
        let v: JSONValue = .object(["b": .array([.int(1), .float(1e-5), .double(10000), .uint(.max)]), "a": .string("ü\n"),
                                    "c": .object([:]), "d": .array([]), "e": .null, "f": .bool(false), "g": .number(8)])
        XCTAssertEqual(v.text(), """
        {
          "a": "ü\\n",
          "b": [
            1,
            1e-05,
            10000.0,
            18446744073709551615
          ],
          "c": {},
          "d": [],
          "e": null,
          "f": false,
          "g": 8
        }

        """)
    }
}
