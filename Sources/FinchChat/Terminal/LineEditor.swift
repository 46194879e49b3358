import Foundation

/// Reads one line from a terminal in raw mode with the usual editing keys (see `KeyDecoder`),
/// history on up/down, and a single-row display that scrolls sideways when the line is wider
/// than the terminal.
final class LineEditor {
    private let input: Int32
    private let out: FDWriter
    private let columns: () -> Int
    let history: History
    private var decoder = KeyDecoder()
    /// Keys read past the end of the previous line (a pasted block holds several lines).
    private var queued: [Key] = []

    init(input: Int32, output: FDWriter, history: History, columns: @escaping () -> Int) {
        self.input = input
        self.out = output
        self.history = history
        self.columns = columns
    }

    /// The finished line, or nil for end of input (Ctrl-D on an empty line, or the input closed).
    /// Ctrl-C clears the line being typed and shows a fresh prompt.
    func readLine(prompt: String) -> String? {
        var buffer = LineBuffer()
        var walk = HistoryCursor(entries: history.entries)
        var scroll = 0
        func redraw() { scroll = render(prompt: prompt, buffer: buffer, scroll: scroll) }
        redraw()
        while true {
            guard let key = nextKey() else {
                out.write("\r\n")
                return buffer.isEmpty ? nil : buffer.text
            }
            switch key {
            case .text(let scalar): buffer.insert(scalar)
            case .enter:
                buffer.moveEnd(); redraw()
                out.write("\r\n")
                return buffer.text
            case .backspace: buffer.backspace()
            case .delete: buffer.deleteForward()
            case .left: buffer.moveLeft()
            case .right: buffer.moveRight()
            case .home: buffer.moveHome()
            case .end: buffer.moveEnd()
            case .wordLeft: buffer.moveWordLeft()
            case .wordRight: buffer.moveWordRight()
            case .deleteWordBack: buffer.deleteWordBack()
            case .deleteWordForward: buffer.deleteWordForward()
            case .killToEnd: buffer.killToEnd()
            case .killToStart: buffer.killToStart()
            case .up: if let line = walk.up(current: buffer.text) { buffer = LineBuffer(line) }
            case .down: if let line = walk.down() { buffer = LineBuffer(line) }
            case .interrupt:
                buffer.moveEnd(); redraw()
                out.write("^C\r\n")
                buffer = LineBuffer()
                walk = HistoryCursor(entries: history.entries)
                scroll = 0
            case .endOfFile:
                if buffer.isEmpty { out.write("\r\n"); return nil }
                buffer.deleteForward()
            case .clearScreen: out.write("\u{1B}[H\u{1B}[2J")
            case .ignored: continue
            }
            redraw()
        }
    }

    private func nextKey() -> Key? {
        while queued.isEmpty {
            var bytes = [UInt8](repeating: 0, count: 256)
            let n = bytes.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return nil }
            queued = decoder.feed(Array(bytes[0..<n]))
            if queued.isEmpty, decoder.hasPending, !moreInputSoon() {
                _ = decoder.flushPending()   // a lone ESC: nothing follows it
            }
        }
        return queued.removeFirst()
    }

    /// Waits briefly for the rest of an escape sequence.
    private func moreInputSoon() -> Bool {
        var fds = pollfd(fd: input, events: Int16(POLLIN), revents: 0)
        return poll(&fds, 1, 50) > 0
    }

    /// Draws prompt + the visible part of the line, clears the rest of the row, places the cursor.
    /// Returns the new scroll offset (index of the first visible character).
    private func render(prompt: String, buffer: LineBuffer, scroll: Int) -> Int {
        let promptWidth = displayWidth(prompt)
        let room = max(8, columns() - promptWidth - 1)
        let chars = buffer.chars
        var first = min(scroll, buffer.cursor)
        while first < buffer.cursor, displayWidth(chars[first..<buffer.cursor]) >= room { first += 1 }
        var last = first, width = 0
        while last < chars.count, width + displayWidth(chars[last]) <= room {
            width += displayWidth(chars[last]); last += 1
        }
        let cursorColumn = promptWidth + displayWidth(chars[first..<buffer.cursor])
        var line = "\r" + prompt + String(chars[first..<last]) + "\u{1B}[K\r"
        if cursorColumn > 0 { line += "\u{1B}[\(cursorColumn)C" }
        out.write(line)
        return first
    }
}
