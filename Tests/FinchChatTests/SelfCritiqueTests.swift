import Foundation
import XCTest
import FinchChat
import FinchData

final class SelfCritiqueTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try temporaryFolder("critique-\(name.filter(\.isLetter))") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func principlesFile() throws -> URL {
        try writeFile("""
        {"name": "kind", "critique": "Say how your answer could be kinder.", "revision": "Rewrite it kindly."}

        {"critique": "Say what your answer gets wrong."}
        """, dir.appendingPathComponent("principles.jsonl"))
    }

    func promptsFile(_ n: Int = 5) throws -> URL {
        try writeFile((1...n).map { #"{"prompt": "question \#($0)"}"# }.joined(separator: "\n") + "\n", dir.appendingPathComponent("prompts.jsonl"))
    }

    /// Replies that name the stage (the last user message) and the seed, so a repeated or reordered sample shows.
    static func engine() -> ScriptEngine {
        ScriptEngine { c, seed in "reply to [\(c.pendingUserMessage ?? "")] with seed \(seed % 1000)" }
    }

    func options(_ out: String = "out") throws -> SelfCritique.Options {
        var o = SelfCritique.Options(model: "/models/m.gguf", prompts: try promptsFile(), principles: try principlesFile(),
                                     out: dir.appendingPathComponent(out))
        o.generation.seed = 7; o.generation.batchSize = 2
        return o
    }

    func testPrinciplesFileReadsDefaultsAndRefusesBadLines() throws {
        let p = try Principles.read(try principlesFile())
        XCTAssertEqual(p.map(\.name), ["kind", "principle-3"])
        XCTAssertEqual(p[1].revision, Principle.defaultRevision)
        let cases: [(String, String)] = [
            ("", "no principles"), ("\n  \n", "no principles"),
            ("{\"critique\": \"ok\"}\n{oops}\n", "bad.jsonl:2: not a JSON object"),
            ("{\"name\": \"x\"}\n", "bad.jsonl:1: missing field \"critique\""),
            ("{\"critique\": \"  \"}\n", "field \"critique\" is empty"),
            ("{\"critique\": 3}\n", "must be a string"),
            ("{\"critique\": \"c\", \"revison\": \"r\"}\n", "unknown field \"revison\""),
        ]
        for (text, expected) in cases {
            let bad = try writeFile(text, dir.appendingPathComponent("bad.jsonl"))
            XCTAssertThrowsError(try Principles.read(bad), text) { XCTAssertTrue("\($0)".contains(expected), "\($0)") }
        }
    }

    func testPrincipleDrawIsAFunctionOfSeedAndIndex() {
        let a = (0..<200).map { SelfCritique.draw(seed: 1, index: $0, principles: 6) }
        let b = (0..<200).map { SelfCritique.draw(seed: 1, index: $0, principles: 6) }
        XCTAssertEqual(a.map(\.principle), b.map(\.principle))
        XCTAssertEqual(a.map(\.seeds), b.map(\.seeds))
        XCTAssertEqual(Set(a.map(\.principle)), Set(0..<6), "every principle is drawn")
        let c = (0..<200).map { SelfCritique.draw(seed: 2, index: $0, principles: 6) }
        XCTAssertNotEqual(a.map(\.principle), c.map(\.principle), "another seed draws otherwise")
        XCTAssertEqual(Set(a.flatMap(\.seeds)).count, 600, "every prompt and stage samples with its own seed")
    }

    func testWritesRecordsFinchsReadersAcceptAndAFullTranscript() throws {
        let o = try options()
        let job = try SelfCritique(o)
        let summary = try job.run(engine: Self.engine())
        XCTAssertEqual(summary.prompts, 5); XCTAssertEqual(summary.kept, 5); XCTAssertEqual(summary.skipped, 0)

        let t = try jsonLines(job.transcriptsURL)
        XCTAssertEqual(t.map { $0["index"] as? Int }, [0, 1, 2, 3, 4])
        let first = t[0]
        let principle = first["principle"] as! String
        XCTAssertTrue(["kind", "principle-3"].contains(principle))
        XCTAssertEqual(first["prompt"] as? [[String: String]], [["role": "user", "content": "question 1"]])
        let critiqueRequest = first["critique_request"] as! String, revisionRequest = first["revision_request"] as! String
        // Each stage answered the turn before it: the response the prompt, the critique the critique request, the revision the revision request.
        XCTAssertTrue((first["response"] as! String).hasPrefix("reply to [question 1]"))
        XCTAssertTrue((first["critique"] as! String).hasPrefix("reply to [\(critiqueRequest)]"))
        XCTAssertTrue((first["revision"] as! String).hasPrefix("reply to [\(revisionRequest)]"))
        XCTAssertEqual(first["stops"] as? [String], ["end of turn", "end of turn", "end of turn"])

        // sft.jsonl: chat records ending in the revision, as `finch sft` reads them.
        let sft = try RecordReader.read(job.sftURL)
        XCTAssertEqual(sft.records.count, 5)
        guard case .chat(let m) = sft.records[0].body else { return XCTFail("sft.jsonl is not chat records") }
        XCTAssertEqual(m.map(\.role), [.user, .assistant])
        XCTAssertEqual(m.last?.content, first["revision"] as? String)
        // preferences.jsonl: chosen = revision, rejected = response, as `finch dpo / reward / kto` read them.
        let prefs = try RecordReader.read(job.preferencesURL)
        XCTAssertEqual(prefs.format, .preference)
        guard case .preference(let prompt, let chosen, let rejected) = prefs.records[0].body else { return XCTFail("not preference records") }
        XCTAssertEqual(prompt.map(\.content), ["question 1"])
        XCTAssertEqual(chosen, first["revision"] as? String)
        XCTAssertEqual(rejected, first["response"] as? String)
        // critique.json records the model, inputs and sampling.
        let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: job.settingsURL)) as! [String: Any]
        XCTAssertEqual(meta["model"] as? String, "/models/m.gguf")
        XCTAssertEqual((meta["sampling"] as? [String: Any])?["seed"] as? String, "7")
        XCTAssertEqual((meta["constitution"] as? [Any])?.count, 2)
    }

    func testResumeSkipsDonePromptsToleratesATornLineAndMatchesAnUninterruptedRun() throws {
        var whole = try options("whole")
        whole.generation.batchSize = 3
        _ = try SelfCritique(whole).run(engine: Self.engine())

        var o = try options("parts")
        o.limit = 2
        let first = try SelfCritique(o)
        XCTAssertEqual(try first.run(engine: Self.engine()).kept, 2)
        // A kill in the middle of a line, and an SFT line whose transcript never got written.
        let handle = try FileHandle(forWritingTo: first.transcriptsURL)
        handle.seekToEndOfFile(); handle.write(Data(#"{"index": 2, "line": 3, "prom"#.utf8)); try handle.close()
        let sft = try FileHandle(forWritingTo: first.sftURL)
        sft.seekToEndOfFile(); sft.write(Data("{\"messages\":[{\"role\":\"user\",\"content\":\"orphan\"},{\"role\":\"assistant\",\"content\":\"x\"}]}\n".utf8)); try sft.close()

        o.limit = nil
        let engine = Self.engine()
        let summary = try SelfCritique(o).run(engine: engine)
        XCTAssertEqual(summary.resumed, 2)
        XCTAssertEqual(engine.calls, 3 * 3, "only the 3 prompts left are generated, 3 replies each")
        let t = try jsonLines(first.transcriptsURL)
        XCTAssertEqual(t.map { $0["index"] as? Int }, [0, 1, 2, 3, 4], "no duplicates, nothing missing")
        for file in ["transcripts.jsonl", "sft.jsonl", "preferences.jsonl"] {
            XCTAssertEqual(try String(contentsOf: dir.appendingPathComponent("parts/\(file)"), encoding: .utf8),
                           try String(contentsOf: dir.appendingPathComponent("whole/\(file)"), encoding: .utf8),
                           "\(file): interrupted and resumed equals one run (another batch size)")
        }
        // A finished run has nothing left to do.
        let again = Self.engine()
        XCTAssertEqual(try SelfCritique(o).run(engine: again).resumed, 5)
        XCTAssertEqual(again.calls, 0)
    }

    func testOtherSettingsOnResumeAreRefusedUnlessOverwritten() throws {
        var o = try options()
        o.limit = 1
        _ = try SelfCritique(o).run(engine: Self.engine())
        o.generation.settings.temperature = 0.2
        XCTAssertThrowsError(try SelfCritique(o)) {
            XCTAssertTrue("\($0)".contains("sampling.temperature: 0.7 → 0.2"), "\($0)")
            XCTAssertTrue("\($0)".contains("--overwrite"), "\($0)")
        }
        o.generation.settings.temperature = 0.7; o.generation.seed = 8
        XCTAssertThrowsError(try SelfCritique(o)) { XCTAssertTrue("\($0)".contains("sampling.seed: \"7\" → \"8\""), "\($0)") }
        o.overwrite = true
        let job = try SelfCritique(o)
        XCTAssertFalse(FileManager.default.fileExists(atPath: job.transcriptsURL.path), "--overwrite removed the earlier run")
        XCTAssertEqual(try job.run(engine: Self.engine()).resumed, 0)
        // A changed batch size or prompts path is not a different dataset.
        o.overwrite = false; o.generation.batchSize = 5
        XCTAssertNoThrow(try SelfCritique(o))
    }

    func testBadInputFailsBeforeAnyGeneration() throws {
        var o = try options()
        o.prompts = try writeFile("", dir.appendingPathComponent("empty.jsonl"))
        XCTAssertThrowsError(try SelfCritique(o)) { XCTAssertTrue("\($0)".contains("empty.jsonl"), "\($0)") }
        o.prompts = try writeFile("{\"prompt\": \"a\"}\n{\"prompt\": \n", dir.appendingPathComponent("torn.jsonl"))
        XCTAssertThrowsError(try SelfCritique(o)) { XCTAssertTrue("\($0)".contains("torn.jsonl:2"), "\($0)") }
        o.prompts = try promptsFile()
        o.principles = try writeFile("\n", dir.appendingPathComponent("none.jsonl"))
        XCTAssertThrowsError(try SelfCritique(o)) { XCTAssertTrue("\($0)".contains("none.jsonl: no principles"), "\($0)") }
        XCTAssertFalse(FileManager.default.fileExists(atPath: o.out.appendingPathComponent("critique.json").path))
    }

    func testUnusableRevisionsStayInTheTranscriptOnly() throws {
        // The revision repeats the response word for word: no pair (the readers refuse chosen == rejected).
        let engine = ScriptEngine { c, _ in c.turns.count == 1 ? "same" : c.turns.count == 3 ? "a critique" : "same" }
        let job = try SelfCritique(try options())
        let s = try job.run(engine: engine)
        XCTAssertEqual(s.kept, 0); XCTAssertEqual(s.skipped, 5)
        XCTAssertEqual(try jsonLines(job.transcriptsURL).map { $0["note"] as? String }, Array(repeating: "revision equals the response", count: 5))
        XCTAssertEqual(try String(contentsOf: job.preferencesURL, encoding: .utf8), "")
    }

    func testStopRequestEndsAfterABatchAndTheRunContinues() throws {
        let o = try options()
        var progress: [SynthesisProgress] = []
        let observer = SynthesisObserver(progress: { progress.append($0) }, stopRequested: { true })
        XCTAssertThrowsError(try SelfCritique(o).run(engine: Self.engine(), observer: observer)) {
            XCTAssertEqual(($0 as? SynthesisInterrupted)?.done, 2)
        }
        XCTAssertEqual(progress.map(\.done), [2])
        XCTAssertEqual(progress.first?.total, 5)
        XCTAssertEqual(try SelfCritique(o).run(engine: Self.engine()).resumed, 2)
    }
}
