import Foundation
import XCTest
import FinchTrain

/// The training commands bind flags to their configuration one way: every flag `--help` lists is a configuration key,
/// `--config FILE.yaml` sets any key, a flag wins over the recipe, and `--print-config` shows the resolved result
/// (as RUN/config.yaml records it) without training.
final class ConfigCommandTests: XCTestCase {
    static let commands = ["sft", "pretrain", "reward", "dpo", "kto", "ppo", "grpo", "classify"]
    /// Flags that steer the command, not the run's configuration.
    static let commandFlags: Set<String> = ["help", "config", "print-config", "overwrite", "version"]

    func testEveryTrainingCommandBindsEveryFlagAndPrintsItsConfig() throws {
        guard let bin = PipelineTests.finchBinary() else { throw XCTSkip("no built finch binary next to the tests") }
        let dir = try TrainerFixture.tempDir()
        let recipe = dir.appendingPathComponent("recipe.yaml")
        try "seed: 7\nlr: 0.1\nthreads: 1\n".write(to: recipe, atomically: true, encoding: .utf8)
        for command in Self.commands {
            let printed = try ToolProcess.run(bin.path, [command, "--print-config", "--config", recipe.path, "--lr", "0.5"], in: dir)
            XCTAssertEqual(printed.status, 0, "\(command): \(printed.output)")
            let lines = printed.output.split(separator: "\n").map(String.init)
            XCTAssertTrue(lines.contains("lr: 0.5"), "\(command): the flag wins over the recipe\n\(printed.output)")
            XCTAssertTrue(lines.contains("seed: 7"), "\(command): the recipe wins over the default\n\(printed.output)")
            // Set keys (`lr: 0.5`), and unset ones as comments (`# max-steps:`).
            let keys = Set(lines.compactMap { line -> String? in
                let l = line.hasPrefix("# ") ? String(line.dropFirst(2)) : line
                guard let c = l.firstIndex(of: ":"), !l.hasPrefix(" "), !l.hasPrefix("-") else { return nil }
                return String(l[..<c])
            })
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("o").path), "--print-config trains nothing")

            let help = try ToolProcess.run(bin.path, [command, "--help"], in: dir).output
            // The options column: lines that start with a flag (`  --lora-r <lora-r>`, `  --pack/--no-pack`).
            let flags = Set(help.split(separator: "\n").flatMap { line -> [String] in
                let t = line.drop { $0 == " " }
                guard t.hasPrefix("--"), line.count - t.count <= 4 else { return [] }   // wrapped help text is indented further
                let head = t.prefix { $0 != " " }
                return head.split(separator: "/").map { String($0.dropFirst(2)) }
            })
            XCTAssertGreaterThan(flags.count, 8, "\(command): \(help)")
            for flag in flags.subtracting(Self.commandFlags) {
                let key = keys.contains(flag) || !flag.hasPrefix("no-") ? flag : String(flag.dropFirst(3))   // --[no-]pack
                XCTAssertTrue(keys.contains(key), "\(command): --\(flag) is not a configuration key")
            }
        }
    }

    /// A recipe alone can run a command (no flags), and a bad value in it is reported at its line.
    func testRecipeKeysAreCheckedWhereTheyWereWritten() throws {
        guard let bin = PipelineTests.finchBinary() else { throw XCTSkip("no built finch binary next to the tests") }
        let dir = try TrainerFixture.tempDir()
        let recipe = dir.appendingPathComponent("dpo.yaml")
        try "model: m\ndata: [prefs.jsonl]\nout: run\nbeta: -1\n".write(to: recipe, atomically: true, encoding: .utf8)
        let r = try ToolProcess.run(bin.path, ["dpo", "--config", recipe.path], in: dir)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("--beta must be positive") && r.output.contains("dpo.yaml:4"), r.output)
        let missing = try ToolProcess.run(bin.path, ["reward", "--data", "x.jsonl"], in: dir)
        XCTAssertEqual(missing.status, 64, "a required option left out is a usage error: \(missing.output)")
        XCTAssertTrue(missing.output.contains("--model DIR is required"), missing.output)
    }
}
