import XCTest
import Foundation
import FinchTrain

/// `finch report`'s page opened in headless Chromium, as a person opens it: its script runs without errors, every
/// chart alone (`#chart=N`) draws its axes and each run's line, and the hover readout answers a mouse move.
/// Beside `RunReportTests` so both use `ReportFixture`'s run folders.
final class ReportBrowserTests: XCTestCase {
    func testThePageRunsItsScriptAndEveryChartDrawsItsRuns() throws {
        let chromium = try Chromium.require()
        let dir = try TrainerFixture.tempDir()
        let report = try RunReport.load(try ReportFixture.pair(in: dir) + [try ReportFixture.sweep(dir.appendingPathComponent("sweep"))])
        let page = dir.appendingPathComponent("report.html")
        try ReportHTML.write(ReportHTML.render(report), to: page, overwrite: false)

        let dom = try Chromium.run(chromium, ["--dump-dom", page.absoluteString], in: dir)
        XCTAssert(dom.stdout.contains("data-rendered=\"ok\""), "the page's script did not finish:\n\(dom.stderr.suffix(2000))")
        XCTAssertFalse(dom.stdout.contains("data-js-error=\"1\""), "script error: \(dom.stdout.components(separatedBy: "finch-js-errors").dropFirst().first ?? "")")
        XCTAssertFalse(dom.stderr.contains("Uncaught"), "console error:\n\(dom.stderr)")

        let solo = try Chromium.run(chromium, ["--dump-dom", page.absoluteString + "#chart=2"], in: dir)
        XCTAssert(solo.stdout.contains("<body class=\"solo\""), "#chart=2 did not switch to one chart")
        XCTAssert(solo.stdout.contains("class=\"chart solo-target\" id=\"chart-2\""))

        var shots: [Data] = []
        for i in 1...report.metricKeys.count {
            let png = dir.appendingPathComponent("chart-\(i).png")
            let shot = try Chromium.run(chromium, ["--screenshot=\(png.path)", "--window-size=900,520", page.absoluteString + "#chart=\(i)"], in: dir)
            XCTAssert(FileManager.default.fileExists(atPath: png.path), "no screenshot of chart \(i):\n\(shot.stderr.suffix(2000))")
            let px = try PNGPixels.count(png)
            XCTAssertEqual([px.width, px.height], [900, 520])
            // Axes, ticks and labels darken thousands of pixels; each run's line (5 runs, 1.9 px wide) colours hundreds.
            XCTAssertGreaterThan(px.dark, 2000, "chart \(i) (\(report.metricKeys[i - 1])): axes and labels missing, \(png.path)")
            XCTAssertGreaterThan(px.coloured, 1500, "chart \(i) (\(report.metricKeys[i - 1])): the runs' lines missing, \(png.path)")
            shots.append(try Data(contentsOf: png))
        }
        XCTAssertEqual(Set(shots).count, shots.count, "two charts gave the same picture")
    }

    func testHoveringAChartReadsOutEachRunsValue() throws {
        let chromium = try Chromium.require()
        let dir = try TrainerFixture.tempDir()
        let html = ReportHTML.render(try RunReport.load(try ReportFixture.pair(in: dir)))
        // A mouse move to the middle of the loss chart, then the readout's lines copied where --dump-dom shows them.
        let probe = """
        <script>var s=document.querySelector('#chart-1 svg'),r=s.getBoundingClientRect();
        s.dispatchEvent(new MouseEvent('mousemove',{clientX:r.left+r.width/2,clientY:r.top+r.height/2,bubbles:true}));
        document.body.setAttribute('data-hover',Array.prototype.map.call(s.querySelectorAll('g.hover text'),function(t){return t.textContent;}).join('|')
          +'|'+s.querySelector('g.hover').getAttribute('visibility'));</script>
        """
        let page = dir.appendingPathComponent("hover.html")
        try ReportHTML.write(html.replacingOccurrences(of: "</body>", with: probe + "</body>"), to: page, overwrite: false)
        let dom = try Chromium.run(chromium, ["--dump-dom", "--window-size=1200,900", page.absoluteString], in: dir)
        let hover = try XCTUnwrap(dom.stdout.components(separatedBy: "data-hover=\"").dropFirst().first?.components(separatedBy: "\"").first,
                                  dom.stderr.suffix(2000).description)
        let parts = hover.components(separatedBy: "|")
        XCTAssertEqual(parts.count, 4, hover)
        XCTAssert(parts[0].hasPrefix("step "), hover)
        XCTAssert(parts[1].hasPrefix("lora-r8: ") && parts[2].hasPrefix("lora-r16: "), hover)
        XCTAssertEqual(parts.last, "visible")
    }

    func testAScriptErrorIsReported() throws {
        // The check the tests above rely on: a failing script marks the page and never reaches "rendered".
        let chromium = try Chromium.require()
        let dir = try TrainerFixture.tempDir()
        let html = ReportHTML.render(try RunReport.load(try ReportFixture.pair(in: dir)))
        let broken = html.replacingOccurrences(of: "document.body.setAttribute('data-rendered','ok');", with: "noSuchFunction();")
        XCTAssertNotEqual(broken, html)
        let page = dir.appendingPathComponent("broken.html")
        try ReportHTML.write(broken, to: page, overwrite: false)
        let dom = try Chromium.run(chromium, ["--dump-dom", page.absoluteString], in: dir)
        XCTAssert(dom.stdout.contains("data-js-error=\"1\""), dom.stdout.suffix(500).description)
        XCTAssert(dom.stdout.contains("noSuchFunction is not defined"))
        XCTAssertFalse(dom.stdout.contains("data-rendered=\"ok\""))
    }
}

/// Headless Chromium (the Debian package `chromium`, installed by tools/setup.sh).
enum Chromium {
    /// Its path ($FINCH_CHROMIUM overrides); a loud skip when it is not installed, as `MPILauncher.require` does.
    static func require() throws -> String {
        if let p = ProcessInfo.processInfo.environment["FINCH_CHROMIUM"] { return p }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            for name in ["chromium", "chromium-browser", "google-chrome"] where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
                return "\(dir)/\(name)"
            }
        }
        FileHandle.standardError.write(Data("ReportBrowserTests: SKIPPED: chromium is not installed (run tools/setup.sh, or apt-get install chromium)\n".utf8))
        throw XCTSkip("chromium is not installed: the report's browser tests SKIPPED (run tools/setup.sh)")
    }

    /// Runs Chromium headless on one page, with a profile of its own (tests run side by side) and its log on stderr,
    /// where page script errors appear as "Uncaught …". Killed after `timeout` seconds.
    static func run(_ chromium: String, _ args: [String], in dir: URL, timeout: Double = 120) throws -> (stdout: String, stderr: String) {
        let profile = dir.appendingPathComponent("chromium-profile-\(UUID().uuidString.prefix(8))")
        let errURL = dir.appendingPathComponent("chromium-\(UUID().uuidString.prefix(8)).log")
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: profile) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: chromium)
        p.arguments = ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                       "--enable-logging=stderr", "--v=0", "--user-data-dir=\(profile.path)"] + args
        p.currentDirectoryURL = dir
        let out = Pipe()
        p.standardOutput = out
        p.standardError = try FileHandle(forWritingTo: errURL)
        try p.run()
        let killer = DispatchWorkItem { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        killer.cancel()
        let stderr = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
        guard p.terminationReason == .exit else { throw TrainingError("chromium was killed after \(Int(timeout)) s:\n\(stderr.suffix(2000))") }
        return (stdout, stderr)
    }
}

/// Counts pixels of a PNG screenshot with python3's zlib (Foundation on Linux has no inflate): dark ones (any channel
/// below 160: text, axes) and coloured ones (channels 80 apart: the runs' lines; grey grid lines are neither).
enum PNGPixels {
    static let script = #"""
    import sys, struct, zlib
    d = open(sys.argv[1], 'rb').read()
    assert d[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
    pos, idat = 8, b''
    while pos < len(d):
        n, kind = struct.unpack('>I4s', d[pos:pos + 8])
        body = d[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b'IHDR': w, h, depth, ctype, _, _, interlace = struct.unpack('>IIBBBBB', body)
        elif kind == b'IDAT': idat += body
    assert depth == 8 and interlace == 0 and ctype in (2, 6), (depth, ctype, interlace)
    bpp = 3 if ctype == 2 else 4
    raw, stride = zlib.decompress(idat), w * bpp
    prev, i, dark, coloured = bytearray(stride), 0, 0, 0
    for y in range(h):
        f = raw[i]; line = bytearray(raw[i + 1:i + 1 + stride]); i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1: line[x] = (line[x] + a) & 255
            elif f == 2: line[x] = (line[x] + b) & 255
            elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        for x in range(0, stride, bpp):
            r, g, bl = line[x], line[x + 1], line[x + 2]
            if min(r, g, bl) < 160: dark += 1
            if max(r, g, bl) - min(r, g, bl) > 80: coloured += 1
        prev = line
    print(w, h, dark, coloured)
    """#

    static func count(_ png: URL) throws -> (width: Int, height: Int, dark: Int, coloured: Int) {
        let r = try ToolProcess.run("/usr/bin/env", ["python3", "-c", script, png.path], in: png.deletingLastPathComponent())
        let n = r.output.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        guard r.status == 0, n.count == 4 else { throw TrainingError("decoding \(png.path) failed: \(r.output)") }
        return (n[0], n[1], n[2], n[3])
    }
}
