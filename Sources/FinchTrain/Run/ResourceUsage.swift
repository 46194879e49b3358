import Foundation

/// Process resource figures for run summaries.
public enum ResourceUsage {
    /// Peak resident memory in bytes (Linux `VmHWM`, else `getrusage`).
    public static func peakResidentBytes() -> Int {
        if let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) {
            for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
                let kb = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
                return kb * 1024
            }
        }
        #if os(Linux)
        return 0
        #else
        var u = rusage()
        getrusage(RUSAGE_SELF, &u)
        return Int(u.ru_maxrss)
        #endif
    }
}
