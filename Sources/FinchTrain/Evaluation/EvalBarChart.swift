import Foundation

/// A dependency-free grouped bar chart written as SVG, for the `finch eval` comparison table
/// (e.g. groups = metrics, series = models).
public enum BarChart {

    /// One coloured series of bars: one value per group (NaN or infinite values draw no bar).
    public struct Series: Sendable {
        public var name: String
        public var values: [Double]
        public init(name: String, values: [Double]) {
            self.name = name
            self.values = values
        }
    }

    static let palette = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7"]

    /// Renders a grouped bar chart. Every series must have one value per group.
    /// The value axis starts at 0 (or at the most negative value) and ends at the largest value.
    public static func svg(title: String, groups: [String], series: [Series],
                           width: Int = 760, height: Int = 380) -> String {
        for s in series {
            precondition(s.values.count == groups.count,
                         "BarChart: series '\(s.name)' has \(s.values.count) values for \(groups.count) groups")
        }
        let finite = series.flatMap(\.values).filter(\.isFinite)
        var top = max(finite.max() ?? 1, 0), bottom = min(finite.min() ?? 0, 0)
        if top == bottom { top = bottom + 1 }
        let left = 60.0, right = 20.0, titleH = 36.0, legendH = 24.0, labelH = 40.0
        let plotW = Double(width) - left - right
        let plotH = Double(height) - titleH - legendH - labelH
        let plotTop = titleH + legendH
        func y(_ v: Double) -> Double { plotTop + plotH * (top - v) / (top - bottom) }

        var out = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(Double(width) / 2)" y="22" text-anchor="middle" font-size="16" font-weight="bold">\(escape(title))</text>

        """
        // Legend.
        var lx = left
        for (i, s) in series.enumerated() {
            out += "<rect x=\(q(lx)) y=\(q(titleH)) width=\"12\" height=\"12\" fill=\"\(palette[i % palette.count])\"/>"
            out += "<text x=\(q(lx + 16)) y=\(q(titleH + 11))>\(escape(s.name))</text>\n"
            lx += 28 + Double(s.name.count) * 7
        }
        // Value axis with five gridlines.
        for k in 0...4 {
            let v = bottom + (top - bottom) * Double(k) / 4
            out += "<line x1=\(q(left)) x2=\(q(left + plotW)) y1=\(q(y(v))) y2=\(q(y(v))) stroke=\"#ddd\"/>"
            out += "<text x=\(q(left - 6)) y=\(q(y(v) + 4)) text-anchor=\"end\">\(format(v))</text>\n"
        }
        out += "<line x1=\(q(left)) x2=\(q(left + plotW)) y1=\(q(y(0))) y2=\(q(y(0))) stroke=\"#333\"/>\n"
        // Bars.
        let groupW = plotW / Double(max(groups.count, 1))
        let barW = groupW * 0.8 / Double(max(series.count, 1))
        for (g, group) in groups.enumerated() {
            let gx = left + groupW * Double(g) + groupW * 0.1
            for (i, s) in series.enumerated() where s.values[g].isFinite {
                let v = s.values[g]
                let y0 = y(max(v, 0)), h = abs(y(v) - y(0))
                out += "<rect x=\(q(gx + barW * Double(i))) y=\(q(y0)) width=\(q(barW)) height=\(q(h)) fill=\"\(palette[i % palette.count])\">"
                out += "<title>\(escape(s.name)) · \(escape(group)): \(format(v))</title></rect>\n"
            }
            out += "<text x=\(q(gx + groupW * 0.4)) y=\(q(plotTop + plotH + 18)) text-anchor=\"middle\">\(escape(group))</text>\n"
        }
        out += "</svg>\n"
        return out
    }

    /// Writes an SVG string atomically (temporary file, then rename).
    public static func write(_ svg: String, to url: URL) throws {
        try Data(svg.utf8).write(to: url, options: .atomic)
    }

    static func q(_ v: Double) -> String { "\"\(String(format: "%.1f", v))\"" }

    static func format(_ v: Double) -> String {
        abs(v) >= 100 || v == v.rounded() ? String(format: "%.0f", v) : String(format: "%.3g", v)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
