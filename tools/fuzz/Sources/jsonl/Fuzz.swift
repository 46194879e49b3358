// Fuzzes the JSONL record parser (`RecordReader.read`): line splitting, JSON, per-record format detection and
// the instruction / chat / preference / prompt / text record rules. The first byte picks how the file is read:
// detected format (as `finch data`/`sft` do) or one forced with `--format`, and the skip-invalid mode.
import Foundation
import FinchData
import FuzzSupport

let formats: [RecordFormat?] = [nil] + RecordFormat.allCases.map { Optional($0) }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let mode = Int(data[0])
    let url = Fuzz.write(UnsafeRawBufferPointer(start: data + 1, count: size - 1), to: "records.jsonl")
    var options = RecordReader.Options(format: formats[mode % formats.count], skipInvalid: (mode / formats.count) % 2 == 1)
    options.threads = 1
    do {
        let file = try RecordReader.read(url, options: options)
        Fuzz.accepted("\(file.records.count) \(file.format) records, \(file.skipped.count) skipped")
        for r in file.records { _ = "\(r.body)" }
    } catch {
        Fuzz.report(error)
        // A thrown error (naming file and line) is the right answer to a bad record.
    }
    return 0
}

/// The entry point SwiftPM links as `main` (see `Fuzz.runDriver`).
@_cdecl("fuzz_jsonl_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.runDriver(argc, argv, fuzz)
}
