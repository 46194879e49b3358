import Foundation

/// Helpers shared by the fuzz targets.
public enum Fuzz {
    /// A per-process scratch folder (under `$TMPDIR`), created once; `tools/fuzz.sh` points TMPDIR at its work folder.
    public static let folder: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("finch-fuzz-\(getpid())", isDirectory: true)
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    /// Writes `bytes` to `folder/name` (the same path every run: parsers that read from a path see a real file).
    @discardableResult
    public static func write(_ bytes: UnsafeRawBufferPointer, to name: String) -> URL {
        let url = folder.appendingPathComponent(name)
        // Data.write truncates and rewrites in place (no atomic rename: one file, reused).
        try? Data(bytes).write(to: url)
        return url
    }

    @discardableResult
    public static func write(_ data: Data, to name: String) -> URL {
        let url = folder.appendingPathComponent(name)
        try? data.write(to: url)
        return url
    }

    public static func remove(_ name: String) {
        _ = unlink(folder.appendingPathComponent(name).path)
    }

    /// Splits `data` at every occurrence of `separator` (a byte string chosen so seeds are readable).
    public static func split(_ data: Data, separator: [UInt8]) -> [Data] {
        var parts: [Data] = []
        var start = data.startIndex
        var i = data.startIndex
        let n = separator.count
        while i + n <= data.endIndex {
            if data[i..<(i + n)].elementsEqual(separator) {
                parts.append(data.subdata(in: start..<i))
                i += n
                start = i
            } else {
                i += 1
            }
        }
        parts.append(data.subdata(in: start..<data.endIndex))
        return parts
    }
}

/// libFuzzer's driver (in libclang_rt.fuzzer, linked by `-sanitize=fuzzer`).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

extension Fuzz {
    /// Runs libFuzzer's driver with `callback`. SwiftPM links an executable target with `main` aliased to
    /// `<module>_main` (so that tests can link it), which hides libFuzzer's own `main`; each target therefore
    /// defines `<module>_main` and calls this.
    public static func runDriver(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>,
                                 _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt {
        var argc = argc
        var argv = argv
        return LLVMFuzzerRunDriver(&argc, &argv, callback)
    }
}

extension Fuzz {
    /// With `FINCH_FUZZ_VERBOSE=1`, prints the error an input was refused with (to check that seeds are read).
    public static let verbose = ProcessInfo.processInfo.environment["FINCH_FUZZ_VERBOSE"] == "1"

    public static func report(_ error: Error) {
        if verbose { FileHandle.standardError.write(Data("refused: \(error)\n".utf8)) }
    }

    public static func accepted(_ what: @autoclosure () -> String) {
        if verbose { FileHandle.standardError.write(Data("accepted: \(what())\n".utf8)) }
    }
}
