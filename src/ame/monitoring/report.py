"""The drift check as one self-contained HTML file: a table and a small plot per column.

Plots are inline SVG bars (reference vs. traffic share per bin or category), so
the file needs no server, no JavaScript and no plotting library: open it from
disk, attach it to an alert, keep it as a CI artifact.
"""

from __future__ import annotations

import datetime as dt
import html
import os
from pathlib import Path

from ame.monitoring.check import CheckResult
from ame.monitoring.drift import ColumnDrift

_WIDTH, _HEIGHT = 320, 110
_REF, _CUR = "#8aa4c8", "#e07b39"


def _plot(column: ColumnDrift) -> str:
    """Paired bars per bin: reference (blue) and logged traffic (orange)."""
    count = len(column.bins)
    if not count:
        return ""
    top = max([*column.reference, *column.current, 1e-9])
    slot = _WIDTH / count
    bar = max(slot / 2 - 1, 1)
    parts = []
    for i, label in enumerate(column.bins):
        for j, (value, colour) in enumerate(
            ((column.reference[i], _REF), (column.current[i], _CUR))
        ):
            height = (_HEIGHT - 12) * value / top
            x = i * slot + j * bar
            parts.append(
                f'<rect x="{x:.1f}" y="{_HEIGHT - height:.1f}" width="{bar:.1f}" '
                f'height="{height:.1f}" fill="{colour}"><title>{html.escape(label)}: '
                f"{'reference' if j == 0 else 'traffic'} {value:.1%}</title></rect>"
            )
    return (
        f'<svg width="{_WIDTH}" height="{_HEIGHT}" viewBox="0 0 {_WIDTH} {_HEIGHT}" '
        f'role="img" aria-label="{html.escape(column.name)}">{"".join(parts)}</svg>'
    )


def _row(column: ColumnDrift) -> str:
    state = "drift" if column.drifted else "ok"
    return (
        f'<tr class="{state}"><td>{html.escape(column.name)}</td><td>{column.kind}</td>'
        f"<td>{column.psi:.4f}</td><td>{column.test}</td><td>{column.p_value:.4g}</td>"
        f"<td>{column.missing_reference:.1%} / {column.missing_current:.1%}</td>"
        f"<td>{state}</td><td>{_plot(column)}</td></tr>"
    )


def _stamp(seconds: float | None) -> str:
    if seconds is None:
        return "the first logged request"
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def render(result: CheckResult) -> str:
    """The report as an HTML document."""
    title = f"Drift of {result.model} version {result.version}"
    verdict = "drift detected" if result.drifted else "within thresholds"
    sections = []
    for heading, columns in (("Features", result.features), ("Predictions", result.predictions)):
        if not columns:
            continue
        rows = "".join(_row(c) for c in columns)
        sections.append(
            f"<h2>{heading}</h2><table><tr><th>column</th><th>kind</th><th>PSI</th><th>test</th>"
            f"<th>p-value</th><th>missing (ref / traffic)</th><th>state</th><th>distribution</th>"
            f"</tr>{rows}</table>"
        )
    if not result.predictions:
        sections.append("<p>No prediction drift: the reference holds no predictions.</p>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 4px 10px; border-bottom: 1px solid #ddd;
text-align: left; vertical-align: middle; }} tr.drift td {{ background: #fdecea; }}
.legend span {{ display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 12px; }}
</style></head><body>
<h1>{html.escape(title)}: {verdict}</h1>
<p>Traffic from {_stamp(result.since)} to {_stamp(result.until)}: {result.requests} requests,
{result.rows} rows ({result.requests_per_hour:.1f} requests/hour); latency p50
{result.latency_p50_ms or 0:.2f} ms, p95 {result.latency_p95_ms or 0:.2f} ms.</p>
<p>Reference: {html.escape(result.reference)}. Logs: {html.escape(result.logs)}.
Thresholds: PSI &gt; {result.thresholds.psi}, p-value &lt; {result.thresholds.p_value}.</p>
<p class="legend"><span style="background:{_REF}"></span>reference
<span style="background:{_CUR}"></span>traffic</p>
{"".join(sections)}
</body></html>
"""


def write_report(result: CheckResult, path: Path) -> Path:
    """Write the report to ``path`` atomically (never a half-written file)."""
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(render(result), encoding="utf-8")
    os.replace(tmp, path)
    return path
