import XCTest
import FinchTrain

final class RecipeTests: XCTestCase {
    /// config.yaml reads back with the same types in a YAML 1.1 reader (PyYAML): `1e-3` would be a string there.
    func testRecordedConfigFloatsAreFloatsToPyYAML() throws {
        let recipe = try Recipe(defaults: ["lr": 1e-3, "beta2": 0.999, "epochs": 1.0, "eps": 1e-8, "big": 3.0e20, "steps": 7, "name": "x"], flags: [:])
        let yaml = try recipe.yaml()
        XCTAssertTrue(yaml.contains("lr: 1.0e-03") || yaml.contains("lr: 0.001"), yaml)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("cfg-\(UUID().uuidString.prefix(6)).yaml")
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        let check = try ToolProcess.run("/usr/bin/env", ["python3", "-c", """
            import sys, yaml
            d = yaml.safe_load(open(sys.argv[1]))
            bad = [k for k in ("lr", "beta2", "epochs", "eps", "big") if not isinstance(d[k], float)]
            assert not bad and isinstance(d["steps"], int) and d["lr"] == 1e-3 and d["eps"] == 1e-8, (bad, d)
            """, file.path], in: FileManager.default.temporaryDirectory)
        XCTAssertEqual(check.status, 0, check.output)
    }

    struct Config: Codable, Equatable {
        var lr: Double = 3e-4
        var epochs: Double = 1
        var maxSteps: Int?
        var batchSize: Int = 8
        var schedule: String = "cosine"
        var targetModules: [String] = []
        var cacheFeatures: Bool = false
        var seed: UInt64 = 0
    }

    func testFlagsWinOverRecipeOverDefaults() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-recipe-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let yaml = dir.appendingPathComponent("recipe.yaml")
        try """
        # SFT recipe
        lr: 1e-4
        batch_size: 4
        max-steps: 200
        target-modules: [q_proj, v_proj]
        cache-features: yes
        schedule: linear
        """.write(to: yaml, atomically: true, encoding: .utf8)
        let keys = try ConfigKeys.describe(Config())
        let defaults = keys.values
        XCTAssertEqual(Set(defaults.keys), ["lr", "epochs", "batch-size", "schedule", "target-modules", "cache-features", "seed"])
        XCTAssertEqual(keys.all, Set(defaults.keys).union(["max-steps"]), "an unset optional is a key too")
        XCTAssertEqual(keys.lists, ["target-modules"])
        let known = keys.all
        let r = try Recipe(defaults: defaults, recipe: yaml, flags: ["batch-size": 16, "seed": 7], knownKeys: known)
        XCTAssertEqual(try r.double("lr"), 1e-4)
        XCTAssertEqual(try r.int("batch-size"), 16)
        XCTAssertEqual(r.sources["batch-size"], .flag)
        XCTAssertEqual(r.sources["lr"], .recipe)
        XCTAssertEqual(r.sources["epochs"], .defaultValue)
        XCTAssertEqual(r.origin(of: "max_steps"), "\(yaml.path):4")
        XCTAssertEqual(try r.strings("target-modules"), ["q_proj", "v_proj"])
        let c = try r.decode(Config.self)
        XCTAssertEqual(c, Config(lr: 1e-4, epochs: 1, maxSteps: 200, batchSize: 16, schedule: "linear",
                                 targetModules: ["q_proj", "v_proj"], cacheFeatures: true, seed: 7))

        // The resolved configuration is recorded in the run folder, and reads back the same.
        let run = try RunFolder(url: dir.appendingPathComponent("run"))
        try r.write(to: run)
        let back = try Recipe(recipe: run.configYAMLURL)
        XCTAssertEqual(try back.decode(Config.self), c)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: run.configJSONURL)) as? [String: Any]
        XCTAssertEqual((json?["batch-size"] as? NSNumber)?.intValue, 16)

        // Errors name the file, line and key.
        try "lr: 1e-4\nlerning-rate: 3\n".write(to: yaml, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Recipe(recipe: yaml, knownKeys: ["lr", "learning-rate"])) { e in
            XCTAssert("\(e)".contains("recipe.yaml:2: unknown key 'lerning-rate' (did you mean 'learning-rate'?)"), "\(e)")
        }
        try "batch-size: many\n".write(to: yaml, atomically: true, encoding: .utf8)
        let bad = try Recipe(defaults: defaults, recipe: yaml)
        XCTAssertThrowsError(try bad.decode(Config.self)) { e in XCTAssert("\(e)".contains("recipe.yaml:1: 'batch-size'"), "\(e)") }
        XCTAssertThrowsError(try bad.int("batch-size")) { e in XCTAssert("\(e)".contains("must be an integer"), "\(e)") }
        try "- a\n- b\n".write(to: yaml, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Recipe(recipe: yaml)) { e in XCTAssert("\(e)".contains("must be a mapping"), "\(e)") }
        XCTAssertThrowsError(try Recipe(flags: ["batch-sise": 1], knownKeys: known)) { e in XCTAssert("\(e)".contains("--batch-sise"), "\(e)") }
    }
}

