// Fuzzes the safetensors reader (`SafeTensors.File`): the 8-byte length, the JSON header, every entry's
// dtype/shape/data_offsets, and decoding each tensor as the model loaders do.
import Foundation
import FinchModel
import FuzzSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let url = Fuzz.write(UnsafeRawBufferPointer(start: data, count: size), to: "model.safetensors")
    do {
        let file = try SafeTensors.File(url: url)
        Fuzz.accepted("\(file.names.count) tensors")
        _ = file.metadata.count
        for name in file.names {
            guard let e = file.entries[name] else { continue }
            _ = try? file.bytes(name)
            // What `HFImport` and the adapter loaders call; skip only what would be slow, not what is odd.
            if e.range.count <= 1 << 22 {
                _ = try? file.tensor(name)
                _ = try? file.ints(name)
            }
        }
    } catch {
        Fuzz.report(error)
        // A thrown error is the right answer to a bad file.
    }
    return 0
}

/// The entry point SwiftPM links as `main` (see `Fuzz.runDriver`).
@_cdecl("fuzz_safetensors_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.runDriver(argc, argv, fuzz)
}
