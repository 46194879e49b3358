import Foundation
import FinchModel

/// Renders a `RunReport` as one self-contained HTML page: styles, charts (inline SVG drawn by `LossCurve`) and the
/// small script for the hover readout are all in the file, so it opens from disk or an e-mail with no network.
///
/// The script marks the page for tests: `data-rendered="ok"` on `<body>` once it has run, and `data-js-error="1"`
/// (with the message shown) if any script error happens. `report.html#chart=N` shows chart N alone, full window.
public enum ReportHTML {
    static let chartWidth = 720, chartHeight = 380
    /// Points per series kept for the hover readout (the drawn line is thinned the same way by `LossCurve`).
    static let hoverPoints = 1000

    public static func render(_ report: RunReport, generated: Date = Date()) -> String {
        let colors = runColors(report.runs.count)
        let names = report.runs.map(\.name).joined(separator: ", ")
        var charts: [[String: Any]] = []
        var body = "<header><h1>Finch runs compared</h1><p class=\"meta\">\(report.runs.count) run\(report.runs.count == 1 ? "" : "s")"
        body += " · generated \(ISO8601DateFormatter().string(from: generated)) by finch report</p>\n"
        body += runsTable(report, colors) + "</header>\n"

        body += "<section id=\"curves\"><h2>Curves</h2>\n"
        let keys = report.metricKeys
        if keys.isEmpty { body += "<p class=\"note\">The runs have logged no metrics yet.</p>\n" }
        body += "<div class=\"charts\">\n"
        for (i, key) in keys.enumerated() {
            let (svg, data) = chart(report, key: key, number: i + 1, colors: colors)
            body += svg
            charts.append(data)
        }
        body += "</div></section>\n"
        body += configSection(report)
        body += resultsSection(report)
        body += sweepSection(report)
        return page(title: "Finch report: \(names)", body: body, data: ["charts": charts])
    }

    /// Writes the page through a temporary name and a rename, so a reader never sees half a page; an existing file is
    /// replaced only when `overwrite` says so.
    public static func write(_ html: String, to url: URL, overwrite: Bool) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) {
            guard !isDir.boolValue else { throw TrainingError("--out \(url.path) is a folder; give the HTML file's name") }
            guard overwrite else { throw TrainingError("--out \(url.path) already exists: give --overwrite to replace it, or another --out") }
        }
        try AtomicFile.write(Data(html.utf8), to: url)
    }

    // MARK: - Charts

    /// One chart per metric key: every run that logged the key is a line in its colour (evaluations with markers).
    static func chart(_ report: RunReport, key: String, number: Int, colors: [String]) -> (html: String, data: [String: Any]) {
        var series: [LossCurve.Series] = []
        for (r, run) in report.runs.enumerated() {
            let pts = report.series(run, key: key)
            if pts.isEmpty { continue }
            series.append(LossCurve.Series(name: run.name, points: pts, color: colors[r],
                                           markers: key.hasPrefix("eval_") || pts.count <= 20))
        }
        let panel = LossCurve.Panel(title: key, yLabel: key, series: series)
        // The legend is HTML above the plot, where no curve runs under it.
        let (svg, frame) = LossCurve.panel(panel, top: 0, width: Double(chartWidth), height: Double(chartHeight), legend: false)
        let legend = series.map { "<span><i style=\"background:\($0.color ?? "#000")\"></i>\(esc($0.name))</span>" }.joined()
        var data: [String: Any] = ["key": key, "series": series.map { s -> [String: Any] in
            ["name": s.name, "color": s.color ?? "#000",
             "points": LossCurve.decimate(s.points, to: hoverPoints).map { [$0.x, $0.y] }]
        }]
        if let f = frame {
            data["frame"] = ["x0": f.x0, "y0": f.y0, "w": f.width, "h": f.height, "xLo": f.xLo, "xHi": f.xHi, "yLo": f.yLo, "yHi": f.yHi]
        }
        // The hover readout's elements are written here so the script only moves them and sets their text.
        var hover = "<g class=\"hover\" visibility=\"hidden\" pointer-events=\"none\"><line stroke=\"#888\" stroke-dasharray=\"3 3\"/>"
        hover += "<rect fill=\"white\" fill-opacity=\"0.93\" stroke=\"#bbb\" rx=\"3\"/>"
        hover += (0...series.count).map { _ in "<text font-size=\"12\"></text>" }.joined() + "</g>\n"
        let html = """
        <figure class="chart" id="chart-\(number)" data-index="\(number - 1)" data-key="\(esc(key))">
        <div class="legend">\(legend)</div>
        <svg viewBox="0 0 \(chartWidth) \(chartHeight)" font-family="sans-serif" font-size="12" role="img" aria-label="\(esc(key)) against step">
        <rect width="100%" height="100%" fill="white"/>
        \(svg)\(hover)</svg>
        <figcaption><a href="#chart=\(number)">chart \(number)</a> · \(esc(key)) · \(series.count) of \(report.runs.count) runs</figcaption>
        </figure>

        """
        return (html, data)
    }

    /// The first eight from `loss.svg`'s palette, then hues a golden angle apart (sweeps can have many trials).
    static func runColors(_ n: Int) -> [String] {
        (0..<n).map { i in
            i < LossCurve.palette.count ? LossCurve.palette[i]
                : "hsl(\(Int((Double(i) * 137.508).truncatingRemainder(dividingBy: 360))), 65%, 42%)"
        }
    }

    // MARK: - Tables

    static func runsTable(_ report: RunReport, _ colors: [String]) -> String {
        var o = "<table class=\"runs\"><thead><tr><th>run</th><th>folder</th><th>last step</th><th>records</th><th>configuration</th><th>result files</th></tr></thead><tbody>\n"
        for (i, r) in report.runs.enumerated() {
            let lastStep = r.records.compactMap { RunReport.number($0["step"]) }.max().map { RunReport.scalarText(NSNumber(value: Int($0))) } ?? "–"
            o += "<tr><td class=\"run\"><span class=\"swatch\" style=\"background:\(colors[i])\"></span>\(esc(r.name))</td>"
            o += "<td class=\"path\">\(esc(r.url.path))</td><td class=\"num\">\(lastStep)</td><td class=\"num\">\(r.records.count)</td>"
            o += "<td>\(esc(r.configFile ?? "none"))</td><td>\(esc(r.results.keys.sorted().joined(separator: ", ")))</td></tr>\n"
        }
        return o + "</tbody></table>\n"
    }

    static func header(_ report: RunReport, first: String) -> String {
        "<thead><tr><th>\(esc(first))</th>" + report.runs.map { "<th>\(esc($0.name))</th>" }.joined() + "</tr></thead>"
    }

    static func cells(_ values: [String?], bold: Int? = nil) -> String {
        values.enumerated().map { i, v in
            guard let v else { return "<td class=\"missing\">–</td>" }
            return i == bold ? "<td class=\"best\">\(esc(v))</td>" : "<td>\(esc(v))</td>"
        }.joined()
    }

    /// The configurations side by side; rows whose values differ carry class `diff` and a "differs" mark, and a
    /// check box hides the rows that agree.
    static func configSection(_ report: RunReport) -> String {
        let rows = report.configRows
        var o = "<section id=\"configuration\"><h2>Configuration</h2>\n"
        guard !rows.isEmpty else { return o + "<p class=\"note\">No run folder has a config.json or config.yaml.</p></section>\n" }
        let differing = rows.filter(\.differs).count
        o += "<p>\(rows.count) keys, <strong>\(differing) differ</strong>. "
        o += "<label><input type=\"checkbox\" id=\"only-diff\"> show only the keys that differ</label></p>\n"
        o += "<div class=\"scroll\"><table id=\"config\">" + header(report, first: "key") + "<tbody>\n"
        for row in rows {
            let mark = row.differs ? " <span class=\"differs\">differs</span>" : ""
            o += "<tr\(row.differs ? " class=\"diff\"" : "")><th scope=\"row\">\(esc(row.key))\(mark)</th>" + cells(row.values) + "</tr>\n"
        }
        return o + "</tbody></table></div></section>\n"
    }

    /// The last value of each metric, then every result file (`summary.json`, `base_before.json`, …) as a table.
    static func resultsSection(_ report: RunReport) -> String {
        var o = "<section id=\"evaluation\"><h2>Evaluation</h2>\n"
        let final = report.finalMetrics
        if !final.isEmpty {
            o += "<h3>Last logged value of each metric</h3><div class=\"scroll\"><table class=\"final\">" + header(report, first: "metric") + "<tbody>\n"
            for row in final {
                // The best run is marked only where "best" means something: losses, evaluation metrics, rewards.
                let judged = (row.key.hasPrefix("eval_") && !row.key.hasSuffix("tokens")) || ["loss", "reward"].contains(row.key)
                let present = row.values.enumerated().compactMap { i, v in v.map { (i, $0) } }
                let lower = RunReport.lowerIsBetter(row.key)
                let best = judged && present.count > 1
                    ? present.min { lower ? $0.1 < $1.1 : $0.1 > $1.1 }?.0 : nil
                o += "<tr><th scope=\"row\">\(esc(row.key))</th>" + cells(row.values.map { $0.map(metricText) }, bold: best) + "</tr>\n"
            }
            o += "</tbody></table></div>\n"
        }
        for table in report.resultTables {
            o += "<h3>\(esc(table.file))</h3><div class=\"scroll\"><table class=\"result\">" + header(report, first: "key") + "<tbody>\n"
            for row in table.rows { o += "<tr><th scope=\"row\">\(esc(row.key))</th>" + cells(row.values.map { $0.map(shortNumber) }) + "</tr>\n" }
            o += "</tbody></table></div>\n"
        }
        if final.isEmpty && report.resultTables.isEmpty { o += "<p class=\"note\">No evaluation results in these folders.</p>\n" }
        return o + "</section>\n"
    }

    /// Each sweep's trials ranked by their metric, best first; the parameters that vary are columns.
    static func sweepSection(_ report: RunReport) -> String {
        guard !report.sweeps.isEmpty else { return "" }
        var o = "<section id=\"sweeps\"><h2>Sweeps</h2>\n"
        for s in report.sweeps {
            let params = Set(s.trials.flatMap(\.params.keys)).sorted()
            let metric = s.metric ?? "value"
            o += "<h3>\(esc(s.name))</h3><p class=\"meta\">\(esc(s.url.path)) · \(s.trials.count) trials ranked by \(esc(metric)), "
            o += "\(s.lowerIsBetter ? "lowest" : "highest") first</p>\n"
            o += "<div class=\"scroll\"><table class=\"trials\"><thead><tr><th>#</th><th>trial</th><th>\(esc(metric))</th><th>status</th><th>rung</th>"
            o += params.map { "<th>\(esc($0))</th>" }.joined() + "</tr></thead><tbody>\n"
            for (i, t) in s.trials.enumerated() {
                o += "<tr\(i == 0 && t.value != nil ? " class=\"best\"" : "")><td class=\"num\">\(i + 1)</td><td>\(esc(t.id))</td>"
                o += "<td class=\"num\">\(t.value.map(metricText) ?? "–")</td><td>\(esc(t.status))</td><td>\(esc(t.rung))</td>"
                o += cells(params.map { t.params[$0] }) + "</tr>\n"
            }
            o += "</tbody></table></div>\n"
        }
        return o + "</section>\n"
    }

    static func metricText(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e12 ? String(Int(v)) : String(format: "%.5g", v)
    }

    /// Results are read, not compared digit by digit: `1.7182254005076638` is shown as `1.7182`; whole numbers and
    /// text stay as they are.
    static func shortNumber(_ text: String) -> String {
        guard text.contains(where: { $0 == "." || $0 == "e" }), let d = Double(text), d.isFinite else { return text }
        return metricText(d)
    }

    /// Text for HTML content and double-quoted attributes.
    static func esc(_ s: String) -> String { LossCurve.escape(s).replacingOccurrences(of: "'", with: "&#39;") }

    // MARK: - The page

    static func page(title: String, body: String, data: [String: Any]) -> String {
        let json = (try? JSONSerialization.data(withJSONObject: MetricsLog.sanitise(data), options: [.sortedKeys]))
            .map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        // "</script" or "<!--" inside a script element would change how it is parsed; in JSON `<` only occurs inside
        // strings, where "\u003c" means the same.
        let safeJSON = json.replacingOccurrences(of: "<", with: "\\u003c").replacingOccurrences(of: "&", with: "\\u0026")
        return """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(esc(title))</title>
        <style>\(style)</style>
        <script>\(errorCatcher)</script>
        </head>
        <body>
        <pre id="finch-js-errors" hidden></pre>
        \(body)<script type="application/json" id="finch-data">\(safeJSON)</script>
        <script>\(script)</script>
        </body>
        </html>

        """
    }

    static let style = """
    body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em auto;max-width:1500px;padding:0 1em;color:#222;background:#fafafa}
    h1{margin:0 0 .2em}h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}h3{margin-bottom:.3em}
    .meta,.note{color:#666}.note{font-style:italic}
    table{border-collapse:collapse;background:#fff;font-size:13px}
    th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
    thead th{background:#f0f0f0;position:sticky;top:0}
    tbody th{font-weight:normal;font-family:ui-monospace,monospace;white-space:nowrap}
    td{font-family:ui-monospace,monospace;max-width:28em;overflow-wrap:anywhere}
    td.num{text-align:right}td.missing{color:#aaa;text-align:center}td.best,tr.best td{font-weight:bold}
    tr.best{background:#eef7ee}
    tr.diff{background:#fff4d6}tr.diff th{font-weight:bold}
    .differs{font-family:system-ui,sans-serif;font-size:11px;background:#e8a317;color:#fff;border-radius:3px;padding:0 4px;margin-left:4px}
    #config.only-diff tr:not(.diff){display:none}
    .scroll{overflow-x:auto;max-width:100%}
    .swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;vertical-align:-1px}
    td.path{color:#666;font-size:12px}
    .charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:14px}
    figure.chart{margin:0;background:#fff;border:1px solid #ddd;border-radius:4px;padding:4px}
    figure.chart svg{width:100%;height:auto;display:block}
    figcaption{font-size:12px;color:#666;padding:2px 6px}
    #finch-js-errors{background:#fdd;color:#900;padding:.5em;white-space:pre-wrap}
    body.solo{margin:0;padding:0;max-width:none;background:#fff}
    body.solo>*:not(#curves),body.solo #curves>h2,body.solo #curves>p,body.solo .chart:not(.solo-target),body.solo figcaption{display:none}
    body.solo .solo-target{position:fixed;inset:0;border:0;border-radius:0;padding:0}
    body.solo .solo-target svg{width:100vw;height:calc(100vh - 30px)}
    .legend{font-size:12px;padding:4px 8px 0;display:flex;flex-wrap:wrap;gap:4px 14px;min-height:22px}
    .legend i{display:inline-block;width:18px;height:3px;margin-right:5px;vertical-align:3px}
    """

    /// Registered before the main script so its errors, even a syntax error, are caught and shown.
    static let errorCatcher = """
    window.onerror=function(msg,src,line){var p=document.getElementById('finch-js-errors');
    if(!p){document.documentElement.setAttribute('data-js-error','1');return;}
    p.hidden=false;p.setAttribute('data-js-error','1');p.textContent+='script error: '+msg+' (line '+line+')\\n';};
    """

    static let script = """
    (function(){
    var data=JSON.parse(document.getElementById('finch-data').textContent);
    function fmt(v){var a=Math.abs(v);if(a!==0&&(a>=1e5||a<1e-3))return v.toExponential(3);return String(Math.round(v*1e4)/1e4);}
    // Index of the point whose step is nearest x (points are in step order).
    function nearest(p,x){if(!p.length)return -1;var lo=0,hi=p.length-1;while(hi-lo>1){var m=(lo+hi)>>1;if(p[m][0]<x)lo=m;else hi=m;}
    return Math.abs(p[lo][0]-x)<=Math.abs(p[hi][0]-x)?lo:hi;}
    var figs=Array.prototype.slice.call(document.querySelectorAll('figure.chart'));
    figs.forEach(function(fig){
      var c=data.charts[+fig.getAttribute('data-index')],f=c.frame,svg=fig.querySelector('svg');
      if(!f)return;
      var g=svg.querySelector('g.hover'),line=g.querySelector('line'),box=g.querySelector('rect'),texts=g.querySelectorAll('text');
      function hide(){g.setAttribute('visibility','hidden');}
      svg.addEventListener('mouseleave',hide);
      svg.addEventListener('mousemove',function(ev){
        var pt=svg.createSVGPoint();pt.x=ev.clientX;pt.y=ev.clientY;var q=pt.matrixTransform(svg.getScreenCTM().inverse());
        if(q.x<f.x0||q.x>f.x0+f.w||q.y<f.y0||q.y>f.y0+f.h){hide();return;}
        var step=f.xLo+(q.x-f.x0)/f.w*(f.xHi-f.xLo),best=null;
        c.series.forEach(function(s){var k=nearest(s.points,step);if(k>=0){var x=s.points[k][0];if(best===null||Math.abs(x-step)<Math.abs(best-step))best=x;}});
        if(best===null){hide();return;}
        var px=f.x0+(best-f.xLo)/(f.xHi-f.xLo)*f.w;
        line.setAttribute('x1',px);line.setAttribute('x2',px);line.setAttribute('y1',f.y0);line.setAttribute('y2',f.y0+f.h);
        texts[0].textContent='step '+fmt(best);texts[0].setAttribute('font-weight','bold');
        c.series.forEach(function(s,j){var k=nearest(s.points,best),t=texts[j+1];
          if(k<0){t.textContent='';return;}
          var at=s.points[k][0]===best?'':' (step '+fmt(s.points[k][0])+')';
          t.textContent=s.name+': '+fmt(s.points[k][1])+at;t.setAttribute('fill',s.color);});
        g.setAttribute('visibility','visible');
        var w=0;for(var i=0;i<texts.length;i++)w=Math.max(w,texts[i].getComputedTextLength());
        var h=16*texts.length+8,bx=px+10+w+16>f.x0+f.w?px-10-w-16:px+10,by=Math.min(Math.max(q.y-h/2,f.y0),f.y0+f.h-h);
        box.setAttribute('x',bx);box.setAttribute('y',by);box.setAttribute('width',w+16);box.setAttribute('height',h);
        for(var i=0;i<texts.length;i++){texts[i].setAttribute('x',bx+8);texts[i].setAttribute('y',by+18+16*i);}
      });
    });
    // report.html#chart=N: chart N alone, full window (for screenshots and for showing one chart large).
    function applyHash(){var m=/chart=(\\d+)/.exec(location.hash);document.body.classList.toggle('solo',!!m);
      figs.forEach(function(fig){fig.classList.toggle('solo-target',!!m&&fig.id==='chart-'+m[1]);});}
    window.addEventListener('hashchange',applyHash);applyHash();
    var only=document.getElementById('only-diff'),table=document.getElementById('config');
    if(only&&table)only.addEventListener('change',function(){table.classList.toggle('only-diff',only.checked);});
    document.body.setAttribute('data-rendered','ok');
    })();
    """
}
