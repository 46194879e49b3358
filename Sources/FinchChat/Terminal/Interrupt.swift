import Foundation

/// Ctrl-C while a reply streams: the terminal is in its normal mode then, so the kernel turns Ctrl-C
/// into SIGINT; the handler only raises a flag that the token callback polls.
public enum Interrupt {
    /// Allocated before the handler is installed, so the handler only does one plain store.
    private static let flag: UnsafeMutablePointer<sig_atomic_t> = {
        let p = UnsafeMutablePointer<sig_atomic_t>.allocate(capacity: 1)
        p.initialize(to: 0)
        return p
    }()

    /// Installs the SIGINT handler (instead of the default "terminate").
    public static func install() {
        _ = flag
        var action = sigaction()
        #if canImport(Glibc)
        action.__sigaction_handler.sa_handler = { _ in Interrupt.raiseFlag() }
        #else
        action.__sigaction_u.__sa_handler = { _ in Interrupt.raiseFlag() }
        #endif
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(SIGINT, &action, nil)
    }

    private static func raiseFlag() { flag.pointee = 1 }

    /// True when SIGINT arrived since the last `clear()`.
    public static var requested: Bool { flag.pointee != 0 }

    public static func clear() { flag.pointee = 0 }
}
