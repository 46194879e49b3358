import XCTest
import FinchChat

final class SamplingSettingsTests: XCTestCase {
    func testSetParsesSeveralAssignmentsAndAliases() throws {
        var s = SamplingSettings()
        let changed = try s.apply(assignments: "temperature=0 top_k=5 top_p=0.5 min_p=0.1 repeat_penalty=1.3 max_new_tokens=7 seed=42")
        XCTAssertEqual(changed, ["temperature", "top_k", "top_p", "min_p", "repetition_penalty", "max_tokens", "seed"])
        XCTAssertEqual(s.temperature, 0); XCTAssertEqual(s.topK, 5); XCTAssertEqual(s.topP, 0.5)
        XCTAssertEqual(s.minP, 0.1); XCTAssertEqual(s.repetitionPenalty, 1.3); XCTAssertEqual(s.maxTokens, 7)
        XCTAssertEqual(s.seed, 42)
        _ = try s.apply(assignments: "seed=random")
        XCTAssertNil(s.seed)
    }

    func testStopStringsWithQuotesAndEscapes() throws {
        var s = SamplingSettings()
        _ = try s.apply(assignments: #"stop="\n\nUser:""#)
        XCTAssertEqual(s.stop, ["\n\nUser:"])
        _ = try s.apply(assignments: "stop+='###'")
        XCTAssertEqual(s.stop, ["\n\nUser:", "###"])
        _ = try s.apply(assignments: "stop=")
        XCTAssertEqual(s.stop, [])
    }

    func testErrorsNameTheKeyAndApplyNothing() {
        var s = SamplingSettings()
        let before = s
        XCTAssertThrowsError(try s.apply(assignments: "temperature=0.2 top_p=1.5")) { error in
            XCTAssertTrue("\(error)".hasPrefix("top_p=1.5:"), "\(error)")
        }
        XCTAssertEqual(s, before, "a failing /set must not change anything")
        XCTAssertThrowsError(try s.apply(assignments: "top_k=many")) { XCTAssertTrue("\($0)".contains("top_k=many")) }
        XCTAssertThrowsError(try s.apply(assignments: "warmth=3")) { XCTAssertTrue("\($0)".contains("'warmth'")) }
        XCTAssertThrowsError(try s.apply(assignments: "temperature")) { XCTAssertTrue("\($0)".contains("key=value")) }
        XCTAssertThrowsError(try s.apply(assignments: "max_tokens=0")) { XCTAssertTrue("\($0)".contains("max_tokens")) }
        XCTAssertThrowsError(try s.apply(assignments: "seed=-1")) { XCTAssertTrue("\($0)".contains("seed")) }
        XCTAssertThrowsError(try s.apply(assignments: "stop=\"abc")) { XCTAssertTrue("\($0)".contains("quote")) }
    }

    func testRetrySeedsDifferButStayReproducible() {
        var s = SamplingSettings()
        s.seed = 7
        XCTAssertEqual(s.forAttempt(0).seed, 7)
        XCTAssertNotEqual(s.forAttempt(1).seed, 7)
        XCTAssertEqual(s.forAttempt(1).seed, s.forAttempt(1).seed)
        XCTAssertNotEqual(s.forAttempt(1).seed, s.forAttempt(2).seed)
        s.seed = nil
        XCTAssertNil(s.forAttempt(3).seed)
    }

    func testModelFolderDefaultsFromGenerationConfig() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-chat-gen-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        XCTAssertEqual(try SamplingSettings.modelDefaults(folder: dir), SamplingSettings())
        let file = dir.appendingPathComponent("generation_config.json")
        try Data(#"{"temperature": 0.6, "top_p": 0.9, "top_k": 20, "max_new_tokens": 64, "eos_token_id": 2}"#.utf8).write(to: file)
        let s = try SamplingSettings.modelDefaults(folder: dir)
        XCTAssertEqual(s.temperature, 0.6); XCTAssertEqual(s.topP, 0.9); XCTAssertEqual(s.topK, 20); XCTAssertEqual(s.maxTokens, 64)
        try Data(#"{"do_sample": false, "top_p": 2}"#.utf8).write(to: file)
        XCTAssertThrowsError(try SamplingSettings.modelDefaults(folder: dir)) { error in
            XCTAssertTrue("\(error)".contains("generation_config.json") && "\(error)".contains("top_p"), "\(error)")
        }
        // The shared conformance folder's file (eos disabled, greedy) must load.
        let shared = URL(fileURLWithPath: "/work/shared/conformance/llama-generate")
        if FileManager.default.fileExists(atPath: shared.path) { XCTAssertNoThrow(try SamplingSettings.modelDefaults(folder: shared)) }
    }
}
