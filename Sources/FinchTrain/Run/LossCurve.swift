import Foundation
import FinchModel

/// Line charts of training curves as a hand-written SVG (no dependencies): one or more panels stacked
/// vertically, each with its own y axis, "nice" ticks, axis labels, a legend and several series.
///
/// SFT writes one panel (train and eval loss against steps); PPO adds panels for reward and KL, whose
/// scales differ from the losses'.
public enum LossCurve {
    /// One line.
    public struct Series {
        public var name: String
        public var points: [(x: Double, y: Double)]
        /// CSS colour; `nil` picks from a fixed palette.
        public var color: String?
        /// Draw a dot at every point (useful for sparse series such as evaluations).
        public var markers: Bool
        /// Join the points with a line (false: a scatter of markers).
        public var line: Bool

        public init(name: String, points: [(x: Double, y: Double)], color: String? = nil, markers: Bool = false, line: Bool = true) {
            self.name = name; self.points = points; self.color = color; self.markers = markers || !line; self.line = line
        }
    }

    /// One chart with its own axes.
    public struct Panel {
        public var title: String
        public var yLabel: String
        public var series: [Series]
        public var xLabel: String
        /// An x range the axis covers at least (a searched parameter's whole range), beside the points'.
        public var xRange: (Double, Double)?
        public init(title: String, yLabel: String, series: [Series], xLabel: String = "step", xRange: (Double, Double)? = nil) {
            self.title = title; self.yLabel = yLabel; self.series = series; self.xLabel = xLabel; self.xRange = xRange
        }
    }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

    /// The standard panel of a run from its metrics records: `loss` (train, smoothed line) and
    /// `eval_loss` (with markers); plus `reward` and `kl` panels when those keys occur.
    public static func panels(fromMetrics records: [[String: Any]]) -> [Panel] {
        panels(fromSeries: MetricsLog.series(records, keys: MetricsLog.chartKeys))
    }

    /// The same panels from an open log's in-memory points (no file read: cheap to redraw often).
    public static func panels(from log: MetricsLog) -> [Panel] { panels(fromSeries: log.chartSeries) }

    /// Panels from `(step, value)` points keyed by metric name (`loss`, `eval_loss`, `reward`, `kl`, …).
    public static func panels(fromSeries all: [String: [(x: Double, y: Double)]]) -> [Panel] {
        var panels: [Panel] = []
        let loss = all["loss"] ?? [], evalLoss = all["eval_loss"] ?? []
        if !loss.isEmpty || !evalLoss.isEmpty {
            var s: [Series] = []
            if !loss.isEmpty { s.append(Series(name: "train loss", points: loss)) }
            if !evalLoss.isEmpty { s.append(Series(name: "eval loss", points: evalLoss, markers: true)) }
            panels.append(Panel(title: "Loss", yLabel: "loss", series: s))
        }
        for (key, title) in [("reward", "Mean reward"), ("kl", "KL to reference")] {
            let p = all[key] ?? [], e = all["eval_" + key] ?? []
            if p.isEmpty && e.isEmpty { continue }
            var s: [Series] = []
            if !p.isEmpty { s.append(Series(name: key, points: p)) }
            if !e.isEmpty { s.append(Series(name: "eval " + key, points: e, markers: true)) }
            panels.append(Panel(title: title, yLabel: key, series: s))
        }
        return panels
    }

    /// Writes the SVG atomically.
    public static func write(_ panels: [Panel], to url: URL, width: Int = 800, panelHeight: Int = 320) throws {
        try AtomicFile.write(Data(svg(panels, width: width, panelHeight: panelHeight).utf8), to: url)
    }

    /// The SVG document.
    public static func svg(_ panels: [Panel], width: Int = 800, panelHeight: Int = 320) -> String {
        let height = max(1, panels.count) * panelHeight
        var out = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" viewBox="0 0 \(width) \(height)" \
        font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>

        """
        if panels.isEmpty {
            out += "<text x=\"\(width / 2)\" y=\"\(panelHeight / 2)\" text-anchor=\"middle\" fill=\"#666\">no data yet</text>\n"
        }
        for (i, p) in panels.enumerated() {
            out += panel(p, top: Double(i * panelHeight), width: Double(width), height: Double(panelHeight)).svg
        }
        return out + "</svg>\n"
    }

    /// Where a panel's plot area sits in the SVG and the data range its axes span: the mapping from data to SVG
    /// coordinates, which `finch report`'s hover readout inverts.
    public struct Frame: Sendable {
        public let x0, y0, width, height: Double
        public let xLo, xHi, yLo, yHi: Double
        func px(_ x: Double) -> Double { x0 + (x - xLo) / max(xHi - xLo, 1e-300) * width }
        func py(_ y: Double) -> Double { y0 + height - (y - yLo) / max(yHi - yLo, 1e-300) * height }
    }

    /// One panel's SVG elements and its frame (nil when it has no points); without `legend` the page around it shows one.
    static func panel(_ p: Panel, top: Double, width: Double, height: Double, legend: Bool = true) -> (svg: String, frame: Frame?) {
        let left = 70.0, right = 20.0, titleH = 28.0, bottom = 46.0
        let plotW = width - left - right, plotH = height - titleH - bottom
        let x0 = left, y0 = top + titleH
        let series = p.series.map { s in
            Series(name: s.name, points: decimate(s.points.filter { $0.x.isFinite && $0.y.isFinite }, to: Int(plotW) * 2),
                   color: s.color, markers: s.markers, line: s.line)
        }
        let all = series.flatMap(\.points)
        var o = "<g>\n<text x=\"\(fmt(width / 2))\" y=\"\(fmt(top + 18))\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">\(escape(p.title))</text>\n"
        o += "<rect x=\"\(fmt(x0))\" y=\"\(fmt(y0))\" width=\"\(fmt(plotW))\" height=\"\(fmt(plotH))\" fill=\"none\" stroke=\"#444\"/>\n"
        let xs = all.map(\.x) + (all.isEmpty ? [] : p.xRange.map { [$0.0, $0.1] } ?? [])
        guard let xMinD = xs.min(), let xMaxD = xs.max(),
              let yMinD = all.map(\.y).min(), let yMaxD = all.map(\.y).max() else {
            return (o + "<text x=\"\(fmt(x0 + plotW / 2))\" y=\"\(fmt(y0 + plotH / 2))\" text-anchor=\"middle\" fill=\"#666\">no data yet</text>\n</g>\n", nil)
        }
        let xt = niceTicks(xMinD, xMaxD), yt = niceTicks(yMinD, yMaxD)
        let frame = Frame(x0: x0, y0: y0, width: plotW, height: plotH, xLo: xt.first!, xHi: xt.last!, yLo: yt.first!, yHi: yt.last!)
        let px = frame.px, py = frame.py
        for t in xt {
            let x = px(t)
            o += "<line x1=\"\(fmt(x))\" y1=\"\(fmt(y0))\" x2=\"\(fmt(x))\" y2=\"\(fmt(y0 + plotH))\" stroke=\"#e5e5e5\"/>"
            o += "<text x=\"\(fmt(x))\" y=\"\(fmt(y0 + plotH + 16))\" text-anchor=\"middle\">\(tickLabel(t))</text>\n"
        }
        for t in yt {
            let y = py(t)
            o += "<line x1=\"\(fmt(x0))\" y1=\"\(fmt(y))\" x2=\"\(fmt(x0 + plotW))\" y2=\"\(fmt(y))\" stroke=\"#e5e5e5\"/>"
            o += "<text x=\"\(fmt(x0 - 6))\" y=\"\(fmt(y + 4))\" text-anchor=\"end\">\(tickLabel(t))</text>\n"
        }
        o += "<text x=\"\(fmt(x0 + plotW / 2))\" y=\"\(fmt(y0 + plotH + 36))\" text-anchor=\"middle\">\(escape(p.xLabel))</text>\n"
        let yMid = y0 + plotH / 2
        o += "<text x=\"16\" y=\"\(fmt(yMid))\" text-anchor=\"middle\" transform=\"rotate(-90 16 \(fmt(yMid)))\">\(escape(p.yLabel))</text>\n"
        for (k, s) in series.enumerated() where !s.points.isEmpty {
            let color = s.color ?? palette[k % palette.count]
            let pts = s.points.map { "\(fmt(px($0.x))),\(fmt(py($0.y)))" }.joined(separator: " ")
            if s.line { o += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(pts)\"/>\n" }
            if s.markers || s.points.count == 1 {
                for q in s.points { o += "<circle cx=\"\(fmt(px(q.x)))\" cy=\"\(fmt(py(q.y)))\" r=\"3\" fill=\"\(color)\"/>" }
                o += "\n"
            }
            // Legend, top right inside the plot.
            guard legend else { continue }
            let ly = y0 + 14 + Double(k) * 16, lx = x0 + plotW - 150
            o += "<line x1=\"\(fmt(lx))\" y1=\"\(fmt(ly - 4))\" x2=\"\(fmt(lx + 20))\" y2=\"\(fmt(ly - 4))\" stroke=\"\(color)\" stroke-width=\"2\"/>"
            o += "<text x=\"\(fmt(lx + 26))\" y=\"\(fmt(ly))\">\(escape(s.name))</text>\n"
        }
        return (o + "</g>\n", frame)
    }

    /// Tick values at 1, 2 or 5 × 10^k spacing covering [lo, hi] with about `target` intervals;
    /// the first and last ticks bound the axis.
    public static func niceTicks(_ lo: Double, _ hi: Double, target: Int = 5) -> [Double] {
        var lo = lo, hi = hi
        if hi == lo { let pad = lo == 0 ? 1 : abs(lo) * 0.1; lo -= pad; hi += pad }
        let raw = (hi - lo) / Double(max(1, target))
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        let first = floor(lo / step + 1e-9) * step, last = ceil(hi / step - 1e-9) * step
        let n = Int(((last - first) / step).rounded())
        return (0...n).map { first + Double($0) * step }.map { abs($0) < step * 1e-9 ? 0 : $0 }
    }

    /// At most `limit` points: consecutive buckets are replaced by their mean (curves with 100k steps
    /// stay small files).
    static func decimate(_ pts: [(x: Double, y: Double)], to limit: Int) -> [(x: Double, y: Double)] {
        guard pts.count > limit, limit > 1 else { return pts }
        let per = Double(pts.count) / Double(limit)
        return (0..<limit).map { b in
            let lo = Int(Double(b) * per), hi = max(lo + 1, Int(Double(b + 1) * per))
            let slice = pts[lo..<min(hi, pts.count)]
            let n = Double(slice.count)
            return (slice.reduce(0) { $0 + $1.x } / n, slice.reduce(0) { $0 + $1.y } / n)
        }
    }

    static func tickLabel(_ v: Double) -> String {
        if v == 0 { return "0" }
        let a = abs(v)
        if a >= 1e5 || a < 1e-3 { return String(format: "%.1e", v) }
        if v == v.rounded() { return String(Int(v)) }
        return String(format: "%g", (v * 1e6).rounded() / 1e6)
    }

    static func fmt(_ v: Double) -> String { String(format: "%.1f", v) }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
