import ArgumentParser
import Foundation
import FinchDistributed

/// The `--out` run folder of a training command: a folder that already holds a run is refused unless the command
/// resumes it (`--resume`) or replaces it (`--overwrite`), so two runs never mix their metrics, curves, checkpoints
/// and packed data.
func prepareRunFolder(_ path: String, resume: Bool, overwrite: Bool) throws {
    guard World.current.isWriter else { return }   // under mpirun rank 0 prepares the folder; the others wait for it
    let fm = FileManager.default
    var isDir: ObjCBool = false
    guard fm.fileExists(atPath: path, isDirectory: &isDir) else { return }
    guard isDir.boolValue else { throw ValidationError("--out \(path) is a file, not a run folder") }
    let contents = try fm.contentsOfDirectory(atPath: path).filter { !$0.hasPrefix(".") }.sorted()
    if contents.isEmpty || resume { return }
    // A run that failed before its first step (bad data, a wrong model) left only its configuration: nothing to lose,
    // so it is replaced without --overwrite.
    let runFiles: Set<String> = ["config.yaml", "config.json", "checkpoints", "data"]
    let checkpoints = (try? fm.contentsOfDirectory(atPath: (path as NSString).appendingPathComponent("checkpoints"))) ?? []
    if Set(contents).isSubset(of: runFiles), checkpoints.filter({ !$0.hasPrefix(".") }).isEmpty {
        FileHandle.standardError.write(Data("note: --out \(path) holds a run that never trained (\(contents.joined(separator: ", "))); replacing it\n".utf8))
        try fm.removeItem(atPath: path)
        return
    }
    guard overwrite else {
        let shown = contents.prefix(4).joined(separator: ", ") + (contents.count > 4 ? ", …" : "")
        throw ValidationError("--out \(path) already holds a run (\(shown)): give --resume to continue it, --overwrite to replace it, or another --out")
    }
    let runMarkers: Set<String> = ["config.yaml", "config.json", "metrics.jsonl", "checkpoints", "summary.json", "final", "best", "data"]
    guard !runMarkers.isDisjoint(with: contents) else {
        throw ValidationError("--out \(path) holds files that are not a Finch run; --overwrite replaces run folders only")
    }
    try fm.removeItem(atPath: path)
}
