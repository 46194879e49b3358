import Foundation

/// Switches a terminal between raw mode (for the line editor) and its normal mode (while a reply
/// streams, so Ctrl-C raises SIGINT), and always puts the original settings back.
final class TerminalMode {
    let fd: Int32
    private let original: termios

    /// nil when `fd` is not a terminal.
    init?(fd: Int32) {
        guard isatty(fd) == 1 else { return nil }
        var t = termios()
        guard tcgetattr(fd, &t) == 0 else { return nil }
        self.fd = fd
        self.original = t
    }

    /// Byte-at-a-time input, no echo, no signals from keys (Ctrl-C arrives as byte 3), output processing kept.
    func enterRaw() {
        var t = original
        t.c_iflag &= ~tcflag_t(BRKINT | ICRNL | INPCK | ISTRIP | IXON)
        t.c_lflag &= ~tcflag_t(ECHO | ICANON | IEXTEN | ISIG)
        t.c_cflag |= tcflag_t(CS8)
        withUnsafeMutableBytes(of: &t.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        tcsetattr(fd, TCSANOW, &t)
    }

    /// The original mode without echo: typed keys do not mess up the streaming reply, Ctrl-C raises SIGINT.
    func enterReply() {
        var t = original
        t.c_lflag &= ~tcflag_t(ECHO)
        t.c_lflag |= tcflag_t(ISIG)
        tcsetattr(fd, TCSANOW, &t)
    }

    func restore() {
        var t = original
        tcsetattr(fd, TCSANOW, &t)
    }

    /// Terminal width in columns (80 when unknown).
    func columns() -> Int {
        var size = winsize()
        if ioctl(fd, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        if let env = ProcessInfo.processInfo.environment["COLUMNS"], let n = Int(env), n > 0 { return n }
        return 80
    }
}

/// Unbuffered writes to a file descriptor (each call reaches the terminal at once).
final class FDWriter {
    let fd: Int32
    init(fd: Int32) { self.fd = fd }

    func write(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Foundation.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 { if errno == EINTR { continue }; return }
            offset += n
        }
    }
}
