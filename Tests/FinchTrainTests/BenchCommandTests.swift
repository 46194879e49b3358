import XCTest
import Foundation

/// `finch bench` prints what the README's tables quote: a smoke test of each JSON line's shape (not of speed).
final class BenchCommandTests: XCTestCase {
    func testBenchDecodePresetPrintsOneJSONObject() throws {
        guard let bin = PipelineTests.finchBinary() else { throw XCTSkip("no built finch binary next to the tests") }
        let r = try ToolProcess.run(bin.path, ["bench", "decode", "--preset", "small", "--prefill", "8", "--generate", "4",
                                               "--repetitions", "1", "--threads", "1", "--json"], in: PipelineTests.repoRoot)
        XCTAssertEqual(r.status, 0, r.output)
        let line = try XCTUnwrap(r.output.split(separator: "\n").last { $0.hasPrefix("{") }, r.output)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        for key in ["pp_tokens_per_s", "tg_tokens_per_s", "tg_tokens_per_cpu_s", "peak_rss_mib"] {
            XCTAssertNotNil(obj[key] as? Double ?? (obj[key] as? NSNumber)?.doubleValue, "\(key) missing in \(line)")
        }
    }
}
