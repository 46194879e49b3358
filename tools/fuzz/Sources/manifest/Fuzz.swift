// Fuzzes the packed-dataset reader: `manifest.json` (`DatasetManifest.read`), the shard index, and decoding shard
// entries (zstd frame → entry layout) through `DatasetReader`, as training reads a `finch data pack` folder.
//
// Input: `manifest.json`, `shard-00000.idx` and `shard-00000.zst`, separated by "@@FUZZ@@". So that mutations get
// past the checksums (a hostile file can carry matching ones anyway), the harness replaces "@SHARD_SHA@",
// "@INDEX_SHA@" and "@SHARD_BYTES@" in the manifest with the real values of the other two parts.
import Foundation
import FinchData
import FuzzSupport

let separator = Array("@@FUZZ@@".utf8)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let parts = Fuzz.split(Data(bytes: data, count: size), separator: separator)
    var manifest = parts[0]
    let index = parts.count > 1 ? parts[1] : nil
    let shard = parts.count > 2 ? parts[2] : nil
    if var text = String(data: manifest, encoding: .utf8) {
        text = text.replacingOccurrences(of: "@SHARD_SHA@", with: SHA256.hex(shard ?? Data()))
        text = text.replacingOccurrences(of: "@INDEX_SHA@", with: SHA256.hex(index ?? Data()))
        text = text.replacingOccurrences(of: "@SHARD_BYTES@", with: "\((shard ?? Data()).count)")
        manifest = Data(text.utf8)
    }
    Fuzz.write(manifest, to: "manifest.json")
    if let index { Fuzz.write(index, to: "shard-00000.idx") } else { Fuzz.remove("shard-00000.idx") }
    if let shard { Fuzz.write(shard, to: "shard-00000.zst") } else { Fuzz.remove("shard-00000.zst") }
    let mode = size > 0 ? Int(data[size - 1]) : 0
    var options = DatasetReader.Options(seed: UInt64(mode), shuffle: mode & 1 == 0,
                                        split: mode & 2 == 0 ? .all : .train(heldOut: 0.25))
    options.verifyChecksums = true
    do {
        let reader = try DatasetReader(Fuzz.folder, options: options)
        Fuzz.accepted("\(reader.count) entries")
        let n = min(reader.count, 16)
        if n > 0 {
            _ = try reader.next(n)
            _ = try reader.next()
            _ = try reader.entry(containingRecord: 0)
        }
    } catch {
        Fuzz.report(error)
        // A thrown error (naming the file) is the right answer to a bad dataset.
    }
    return 0
}

/// The entry point SwiftPM links as `main` (see `Fuzz.runDriver`).
@_cdecl("fuzz_manifest_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.runDriver(argc, argv, fuzz)
}
