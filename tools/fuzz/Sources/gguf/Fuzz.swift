// Fuzzes the GGUF reader: `GGUFFile(contentsOf:)` (header, metadata, tensor infos, memory-mapped data),
// dequantising every tensor, and the model import's reading of hyper-parameters and tensor plan
// (`GGUFModelImport.config(of:)`), as `finch` does with a `.gguf` model.
import Foundation
import FinchGGUF
import FinchModel
import FuzzSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let url = Fuzz.write(UnsafeRawBufferPointer(start: data, count: size), to: "model.gguf")
    do {
        let file = try GGUFFile(contentsOf: url)
        for key in file.metadataKeys {
            let v = file[key]
            _ = v?.string; _ = v?.int; _ = v?.double; _ = v?.bool; _ = v?.strings; _ = v?.ints; _ = v?.floats
        }
        Fuzz.accepted("\(file.tensors.count) tensors, \(file.metadata.count) keys; config: \(String(describing: try? GGUFModelImport.config(of: url)))")
        _ = file.architecture
        for t in file.tensors where t.elementCount <= 1 << 20 {
            _ = t.rowCount; _ = t.rowByteCount
            _ = try? file.dequantize(t, threads: 1)
        }
        _ = try? GGUFModelImport.config(of: url)
    } catch {
        Fuzz.report(error)
        // A thrown error is the right answer to a bad file.
    }
    return 0
}

/// The entry point SwiftPM links as `main` (see `Fuzz.runDriver`).
@_cdecl("fuzz_gguf_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.runDriver(argc, argv, fuzz)
}
