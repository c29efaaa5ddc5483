"""The health report as one self-contained HTML page: inline CSS and SVG, no script, no
network; readable at 1280 px and at phone width (the figures scale with their viewBox).
Rendering only: it draws the documents `diagnose` returns."""
from __future__ import annotations

import html
import math

from .thresholds import THRESHOLDS

CSS = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d2530}
main{max-width:1200px;margin:0 auto;padding:16px}
h1{font-size:22px;margin:8px 0}h2{font-size:19px;margin:24px 0 8px}h3{font-size:16px;margin:16px 0 6px}
.file{background:#fff;border:1px solid #dde2e8;border-radius:8px;padding:12px 16px;margin:16px 0}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;color:#fff;font-weight:600}
.healthy{background:#2e7d32}.warnings{background:#e08a00}.errors{background:#c62828}
.sev-error{color:#c62828;font-weight:600}.sev-warning{color:#b26a00;font-weight:600}.sev-info{color:#45607a}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{border-bottom:1px solid #e6e9ee;padding:4px 6px;
text-align:left;vertical-align:top}th{background:#f0f2f5}.scroll{overflow-x:auto}
.cards{display:flex;flex-wrap:wrap;gap:12px}.card{flex:1 1 260px;min-width:220px;max-width:100%;background:#fafbfc;
border:1px solid #e3e7ec;border-radius:6px;padding:8px}.card svg{width:100%;height:auto;display:block}
.muted{color:#6b7785;font-size:12px}code{background:#eef1f4;padding:0 3px;border-radius:3px;word-break:break-all}
@media (max-width:700px){main{padding:8px}table.findings,table.findings tbody,table.findings tr,table.findings td{
display:block;width:auto}table.findings tr.head{display:none}table.findings tr{border:1px solid #e3e7ec;
border-radius:6px;margin:8px 0;padding:6px;background:#fff}table.findings td{border:0;padding:2px 4px}
table.findings td[data-k]::before{content:attr(data-k) ": ";color:#6b7785;font-size:12px}}
"""


def render(docs) -> str:
    """One page for one or several diagnose() documents."""
    e = html.escape
    parts = ["<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
             "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
             f"<title>lstmtool health: {e(', '.join(d['file'] for d in docs))}</title>",
             f"<style>{CSS}</style></head><body><main>", "<h1>lstmtool health</h1>"]
    if len(docs) > 1:
        parts.append(_comparison(docs))
    for doc in docs:
        parts.append(_file(doc))
    parts.append("<p class=\"muted\">Thresholds and their sources: docs/health.md. Weights only: no data was run.</p>")
    parts.append("</main></body></html>")
    return "\n".join(parts)


def _comparison(docs) -> str:
    e = html.escape
    rows = []
    for d in docs:
        sig = max((g["sigma_gamma"] for c in d["cells"] for g in (c.get("spectral") or {}).get("gates", {}).values()),
                  default=float("nan"))
        med = [c["memory"]["percentiles"][50] for c in d["cells"] if c.get("memory") and
               c["memory"]["percentiles"][50] is not None]
        rows.append(f"<tr><td>{e(d['file'])}</td><td><span class=\"badge {d['verdict']}\">{d['verdict']}</span></td>"
                    f"<td>{len(d['cells'])}</td><td>{d['counts']['error']}</td><td>{d['counts']['warning']}</td>"
                    f"<td>{sig:.3g}</td><td>{(sum(med) / len(med)) if med else float('nan'):.3g}</td></tr>")
    return ("<h2>Comparison</h2><div class=\"scroll\"><table><tr><th>file</th><th>verdict</th><th>cells</th>"
            "<th>errors</th><th>warnings</th><th>largest sigma&middot;gamma</th><th>mean median T</th></tr>"
            + "".join(rows) + "</table></div>")


def _file(doc) -> str:
    e = html.escape
    out = [f"<section class=\"file\"><h2>{e(doc['file'])}</h2>",
           f"<p><span class=\"badge {doc['verdict']}\">{doc['verdict']}</span> "
           f"{doc['counts']['error']} errors, {doc['counts']['warning']} warnings, {doc['counts']['info']} notes "
           f"&middot; {e(str(doc['format']))}, Keras {e(str(doc['keras_version']))}, {len(doc['cells'])} cells</p>"]
    if doc["findings"]:
        out.append("<div class=\"scroll\"><table class=\"findings\"><tr class=\"head\"><th>severity</th><th>check</th>"
                   "<th>layer</th><th>gate</th><th>units</th><th>why</th><th>fix</th></tr>")
        for f in doc["findings"]:
            units = f["units"]
            shown = "" if units is None else (", ".join(map(str, units[:12])) + (" ..." if len(units) > 12 else ""))
            out.append(f"<tr><td class=\"sev-{f['severity']}\">{f['severity']}</td><td>{e(f['check'])}</td>"
                       f"<td data-k=\"layer\">{e(f['layer'])}</td><td data-k=\"gate\">{e(str(f['gate'] or ''))}</td>"
                       f"<td data-k=\"units\">{e(shown)}</td><td>{e(f['why'])}</td>"
                       f"<td>{'<code>' + e(f['fix']) + '</code>' if f['fix'] else ''}</td></tr>")
        out.append("</table></div>")
    else:
        out.append("<p>No findings: every check is within its threshold.</p>")
    for c in doc["cells"]:
        out.append(_cell(c))
    out.append("</section>")
    return "\n".join(out)


def _cell(c) -> str:
    e = html.escape
    out = [f"<h3>{e(c['path'])} &middot; {e(c['class'])}, {c['units']} units</h3>"]
    if c.get("skipped"):
        out.append(f"<p class=\"muted\">{e(c['skipped'])}</p>")
    cards = []
    spectral = (c.get("spectral") or {}).get("gates")
    if spectral:
        cards.append(_card("sigma_max(U_g) &middot; gamma per gate",
                           _bars([(g, v["sigma_gamma"]) for g, v in spectral.items()], THRESHOLDS["exploding"]["value"])))
    if c.get("memory"):
        T = [t for t in c["memory"]["T"] if t is not None]
        cards.append(_card(f"memory T = 1/(1-{c['memory']['gate']}) per unit, steps",
                           _histogram([math.log10(max(t, 1.0)) for t in T], THRESHOLDS["short-memory"]["value"],
                                      log_axis=True)))
    for g, pic in (c.get("pictures") or {}).items():
        if pic.get("heat"):
            cards.append(_card(f"|U_{g}| (max over blocks)", _heatmap(pic["heat"])))
        for part, h in pic["hist"].items():
            cards.append(_card(f"{part}_{g} values", _bins(h["counts"], h["edges"])))
    if cards:
        out.append("<div class=\"cards\">" + "".join(cards) + "</div>")
    return "\n".join(out)


def _card(title, svg) -> str:
    return f"<div class=\"card\"><div class=\"muted\">{title}</div>{svg}</div>"


def _bars(items, limit) -> str:
    w, h, pad = 240, 120, 20
    top = max([v for _, v in items] + [limit * 1.2, 1e-9])
    bw = (w - 2 * pad) / max(1, len(items))
    parts = [f"<svg viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"bars\">"]
    for k, (label, v) in enumerate(items):
        bh = (h - 2 * pad) * min(v, top) / top
        color = "#c62828" if v > limit else "#3b78b4"
        x = pad + k * bw
        parts.append(f"<rect x=\"{x + 2:.1f}\" y=\"{h - pad - bh:.1f}\" width=\"{bw - 4:.1f}\" height=\"{bh:.1f}\" "
                     f"fill=\"{color}\"/><text x=\"{x + bw / 2:.1f}\" y=\"{h - 5}\" font-size=\"11\" "
                     f"text-anchor=\"middle\">{html.escape(str(label))}</text>"
                     f"<text x=\"{x + bw / 2:.1f}\" y=\"{h - pad - bh - 3:.1f}\" font-size=\"9\" "
                     f"text-anchor=\"middle\">{v:.3g}</text>")
    ly = h - pad - (h - 2 * pad) * limit / top
    parts.append(f"<line x1=\"{pad}\" x2=\"{w - pad}\" y1=\"{ly:.1f}\" y2=\"{ly:.1f}\" stroke=\"#c62828\" "
                 f"stroke-dasharray=\"4 3\"/></svg>")
    return "".join(parts)


def _histogram(values, limit, log_axis=False) -> str:
    if not values:
        return "<p class=\"muted\">no finite values</p>"
    lo, hi = min(values + [0.0]), max(values + [math.log10(limit) * 1.5 if log_axis else limit])
    n = 20
    width = (hi - lo) / n or 1.0
    counts = [0] * n
    for v in values:
        counts[min(n - 1, int((v - lo) / width))] += 1
    edges = [lo + k * width for k in range(n + 1)]
    mark = math.log10(limit) if log_axis else limit
    return _bins(counts, edges, mark=mark, label=("log10 T" if log_axis else None))


def _bins(counts, edges, mark=None, label=None) -> str:
    w, h, pad = 240, 120, 18
    top = max(counts + [1])
    n = len(counts)
    bw = (w - 2 * pad) / max(1, n)
    parts = [f"<svg viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"histogram\">"]
    for k, cnt in enumerate(counts):
        bh = (h - 2 * pad) * cnt / top
        parts.append(f"<rect x=\"{pad + k * bw:.1f}\" y=\"{h - pad - bh:.1f}\" width=\"{max(bw - 1, 0.5):.1f}\" "
                     f"height=\"{bh:.1f}\" fill=\"#5a8fc4\"/>")
    lo, hi = edges[0], edges[-1]
    parts.append(f"<text x=\"{pad}\" y=\"{h - 4}\" font-size=\"9\">{lo:.3g}</text>"
                 f"<text x=\"{w - pad}\" y=\"{h - 4}\" font-size=\"9\" text-anchor=\"end\">{hi:.3g}</text>")
    if label:
        parts.append(f"<text x=\"{w / 2}\" y=\"{h - 4}\" font-size=\"9\" text-anchor=\"middle\">{label}</text>")
    if mark is not None and hi > lo:
        x = pad + (w - 2 * pad) * (mark - lo) / (hi - lo)
        parts.append(f"<line x1=\"{x:.1f}\" x2=\"{x:.1f}\" y1=\"{pad}\" y2=\"{h - pad}\" stroke=\"#c62828\" "
                     f"stroke-dasharray=\"4 3\"/>")
    parts.append("</svg>")
    return "".join(parts)


def _heatmap(grid) -> str:
    rows, cols = len(grid), len(grid[0]) if grid else 0
    top = max((v for row in grid for v in row), default=0.0) or 1.0
    size = 240
    cw, ch = size / max(1, cols), size / max(1, rows)
    parts = [f"<svg viewBox=\"0 0 {size} {size}\" role=\"img\" aria-label=\"heatmap\">"]
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            t = min(1.0, v / top)
            r, g, b = int(255 - 200 * t), int(255 - 150 * t), int(255 - 60 * t)
            parts.append(f"<rect x=\"{j * cw:.2f}\" y=\"{i * ch:.2f}\" width=\"{cw + 0.05:.2f}\" "
                         f"height=\"{ch + 0.05:.2f}\" fill=\"rgb({r},{g},{b})\"/>")
    parts.append("</svg>")
    return "".join(parts)
