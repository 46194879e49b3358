import Foundation

/// Writes files through a temporary name in the same folder and a rename.
public enum AtomicFile {
    public static func write(_ data: Data, to url: URL) throws {
        let dir = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        do {
            try data.write(to: tmp)
            guard rename(tmp.path, url.path) == 0 else {
                throw ModelFileError("rename failed (errno \(errno))")
            }
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            throw ModelFileError("cannot write \(url.path): \(reason(error))")
        }
    }

    /// The system's reason for a failed file operation ("File too large", "No space left on device", "Permission
    /// denied"…) rather than Foundation's error dump.
    public static func reason(_ error: Error) -> String {
        if let e = error as? ModelFileError { return "\(e)" }
        let ns = error as NSError
        var e: NSError? = ns
        while let cur = e {
            if cur.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(cur.code))) }
            e = (cur.userInfo[NSUnderlyingErrorKey] as? Error).map { $0 as NSError }
        }
        let text = ns.localizedDescription
        let generic = "The operation could not be completed. "
        return text.hasPrefix(generic) && text.count > generic.count ? String(text.dropFirst(generic.count)) : text
    }
}
