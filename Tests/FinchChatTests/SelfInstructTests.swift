import Foundation
import XCTest
import FinchChat
import FinchData

final class RougeLTests: XCTestCase {
    /// Worked by hand: tokens are lowercased runs of [a-z0-9]; F = 2PR/(P+R) with P = LCS/|prediction|, R = LCS/|reference|.
    func testHandComputedScores() {
        // the cat {sat|is} on the mat: LCS "the cat on the mat" = 5 of 6 each side.
        XCTAssertEqual(RougeL.score("the cat sat on the mat", "the cat is on the mat").fmeasure, 5.0 / 6, accuracy: 1e-12)
        // write a poem about the sea (6) / write a short poem about the ocean (7): LCS "write a poem about the" = 5,
        // P = 5/6, R = 5/7, F = 50/65.
        let s = RougeL.score("Write a poem about the sea", "Write a short poem about the ocean")
        XCTAssertEqual(s.precision, 5.0 / 6, accuracy: 1e-12)
        XCTAssertEqual(s.recall, 5.0 / 7, accuracy: 1e-12)
        XCTAssertEqual(s.fmeasure, 50.0 / 65, accuracy: 1e-12)
        // Order matters: "b a" against "a b" has LCS 1.
        XCTAssertEqual(RougeL.score("b a", "a b").fmeasure, 0.5, accuracy: 1e-12)
        XCTAssertEqual(RougeL.score("Hello, World!", "hello world").fmeasure, 1)
        XCTAssertEqual(RougeL.score("", "anything").fmeasure, 0)
        XCTAssertEqual(RougeL.score("x y", "z").fmeasure, 0)
        XCTAssertEqual(RougeL.tokens("It's 3.5 km-long"), ["it", "s", "3", "5", "km", "long"])
        XCTAssertEqual(RougeL.lcsLength(["a", "b", "c", "d"], ["b", "d", "a"]), 2)
    }
}

final class SelfInstructTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try temporaryFolder("self-instruct-\(name.filter(\.isLetter))") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    static let candidates = [
        "Write a poem about the sea.",                    // near-duplicate of a seed
        "Name three animals that live in the desert.",
        "Explain how a rainbow forms after rain.",
        "Draw a picture of a house.",                     // needs non-text output
        "Hi",                                              // too short
        "Task 7: Suggest a name for a small bakery.",     // the prefix is removed
        "Name three animals that live in the desert!",    // a duplicate of an earlier candidate
        "Describe the taste of a lemon to a child.",
    ]

    /// A model that, asked for a task, gives candidate `seed % 8`; asked a task, answers it.
    static func engine() -> ScriptEngine {
        ScriptEngine { c, seed in
            let m = c.pendingUserMessage ?? ""
            return m.hasPrefix("Here are some tasks") ? candidates[Int(seed % UInt64(candidates.count))] : "An answer to: \(m)"
        }
    }

    func options(_ n: Int, out: String = "tasks.jsonl") throws -> SelfInstruct.Options {
        let seeds = try writeFile("""
        {"instruction": "Write a poem about the sea.", "input": "", "output": "Waves..."}
        {"instruction": "Give two tips for learning a language.", "input": "", "output": "Read daily..."}
        {"instruction": "What is the boiling point of water?", "output": "100 °C at sea level."}
        """, dir.appendingPathComponent("seeds.jsonl"))
        var o = SelfInstruct.Options(model: "/models/m.gguf", seedTasks: seeds, out: dir.appendingPathComponent(out), n: n)
        o.generation.seed = 3; o.generation.batchSize = 3; o.examples = 2
        return o
    }

    func testParseAndShapeFilters() throws {
        XCTAssertEqual(SelfInstruct.parseTask("  Task 9: Sort the list.\n\nHere is the answer: ..."), "Sort the list.")
        XCTAssertEqual(SelfInstruct.parseTask("**New task:** \"List four fruits.\""), "List four fruits.")
        XCTAssertEqual(SelfInstruct.parseTask("4. Count the vowels in a word."), "Count the vowels in a word.")
        XCTAssertEqual(SelfInstruct.parseTask("I'm ready! Here's a challenge: \"Provide a short explanation of tides.\" It is fun."),
                       "Provide a short explanation of tides.")
        XCTAssertEqual(SelfInstruct.parseTask("Say \"hi\" to me in French."), "Say \"hi\" to me in French.", "a quoted word is not the task")
        let job = try SelfInstruct(try options(1))
        XCTAssertEqual(job.shapeProblem("I'm ready to help with any task you have."), "a reply, not a task (i'm)")
        XCTAssertEqual(job.shapeProblem("Here is a creative task for you:"), "a reply, not a task (here)")
        XCTAssertEqual(job.shapeProblem("Complete the following list of fruits:"), "a reply, not a task (ends with a colon)")
        XCTAssertEqual(job.shapeProblem(""), "empty")
        XCTAssertEqual(job.shapeProblem("Do it"), "too short (2 words)")
        XCTAssertEqual(job.shapeProblem(Array(repeating: "word", count: 151).joined(separator: " ")), "too long (151 words)")
        XCTAssertEqual(job.shapeProblem("Plot the sales by month."), "needs non-text input or output (plot)")
        XCTAssertEqual(job.shapeProblem("- list three colours"), "starts with punctuation")
        XCTAssertEqual(job.shapeProblem("Écris un poème court."), "starts with a non-ASCII character")
        XCTAssertNil(job.shapeProblem("List three colours of the rainbow."))
        XCTAssertTrue(SelfInstruct.taskRequest(["A b c", "D e f"]).contains("1. A b c\n2. D e f"))
    }

    func testGrowsTheSetRejectingNearDuplicatesAndWritesSFTRecords() throws {
        let job = try SelfInstruct(try options(4))
        let s = try job.run(engine: Self.engine())
        XCTAssertEqual(s.accepted, 4)
        let attempts = try jsonLines(job.logURL)
        XCTAssertEqual(attempts.count, s.attempts)
        let accepted = attempts.filter { $0["status"] as? String == "accepted" }.map { $0["instruction"] as! String }
        XCTAssertEqual(accepted.count, 4)
        XCTAssertEqual(Set(accepted).count, 4, "no task accepted twice")
        XCTAssertFalse(accepted.contains("Write a poem about the sea."), "a seed is a near-duplicate of itself")
        for a in accepted {
            XCTAssertTrue(Self.candidates.map { SelfInstruct.parseTask($0) }.contains(a))
            XCTAssertFalse(a.hasPrefix("Task"))
        }
        // Every pair of accepted tasks, and each against the seeds, is below the threshold.
        for (i, a) in accepted.enumerated() {
            for b in accepted[(i + 1)...] + ["Write a poem about the sea.", "Give two tips for learning a language."] {
                XCTAssertLessThan(RougeL.score(a, b).fmeasure, 0.7, "\(a) ~ \(b)")
            }
        }
        let reasons = Set(attempts.compactMap { $0["reason"] as? String }.map { $0.split(separator: "(").first.map(String.init) ?? $0 })
        XCTAssertTrue(reasons.contains("near-duplicate "), "\(reasons)")
        // The output is Alpaca SFT records finch sft reads.
        let file = try RecordReader.read(job.options.out)
        XCTAssertEqual(file.format, .alpaca)
        XCTAssertEqual(file.records.count, 4)
        guard case .chat(let m) = file.records[0].body else { return XCTFail("not instruction records") }
        XCTAssertEqual(m.last?.content, "An answer to: \(accepted[0])")
        let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: job.settingsURL)) as! [String: Any]
        XCTAssertEqual(meta["kind"] as? String, "self-instruct")
        XCTAssertEqual(meta["similarity"] as? Double, 0.7)
    }

    func testResumeDropsACutRoundAndContinuesAsOneRun() throws {
        let whole = try SelfInstruct(try options(4, out: "whole.jsonl"))
        _ = try whole.run(engine: Self.engine())
        // Stopped after the first round, then the log torn inside the second round's lines.
        let o = try options(4, out: "parts.jsonl")
        XCTAssertThrowsError(try SelfInstruct(o).run(engine: Self.engine(), observer: SynthesisObserver(stopRequested: { true })))
        let part = try SelfInstruct(o)
        let oneRound = try String(contentsOf: part.logURL, encoding: .utf8)
        let wholeLog = try String(contentsOf: whole.logURL, encoding: .utf8).split(separator: "\n").map(String.init)
        try (oneRound + wholeLog[3] + "\n" + String(wholeLog[4].prefix(20))).write(to: part.logURL, atomically: true, encoding: .utf8)
        let s = try part.run(engine: Self.engine())
        XCTAssertEqual(s.accepted, 4)
        XCTAssertEqual(try String(contentsOf: part.logURL, encoding: .utf8), try String(contentsOf: whole.logURL, encoding: .utf8))
        XCTAssertEqual(try String(contentsOf: o.out, encoding: .utf8), try String(contentsOf: whole.options.out, encoding: .utf8))
    }

    func testBadInputAndBudget() throws {
        var o = try options(2)
        o.seedTasks = try writeFile("", dir.appendingPathComponent("none.jsonl"))
        XCTAssertThrowsError(try SelfInstruct(o)) { XCTAssertTrue("\($0)".contains("none.jsonl"), "\($0)") }
        o.seedTasks = try writeFile("{\"prompt\": \"ok then go\"}\n[1,\n", dir.appendingPathComponent("bad.jsonl"))
        XCTAssertThrowsError(try SelfInstruct(o)) { XCTAssertTrue("\($0)".contains("bad.jsonl:2"), "\($0)") }
        // A model that only repeats a seed runs out of attempts.
        o = try options(2)
        o.maxAttempts = 5
        let s = try SelfInstruct(o).run(engine: ScriptEngine { _, _ in "Write a poem about the sea." })
        XCTAssertEqual(s.accepted, 0); XCTAssertEqual(s.attempts, 5); XCTAssertEqual(s.reasons, ["near-duplicate": 5])
        o.similarity = 0.9
        XCTAssertThrowsError(try SelfInstruct(o)) { XCTAssertTrue("\($0)".contains("similarity: 0.7 → 0.9"), "\($0)") }
    }
}
