"""The HTML report's markup: its look, and the pieces every section is built of.

The style sheet and the Content-Security-Policy that forbids any other
source (:data:`CSS`, :data:`CSP`), the outcomes' colours and meanings
(:data:`OUTCOMES`), escaping (:func:`e`), headline numbers that carry
``data-count`` (:func:`counted`, :func:`card`), the outcome chart as inline
SVG (:func:`chart`), tables and their cells (:func:`table`, :func:`cell`)
and timestamps for people (:func:`timestamp`). The page itself, section by
section, is :mod:`erasure.report.html`.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

# name, colour, what it means for the person whose data it is
OUTCOMES = (
    ("erased", "#2e7d32", "the service confirmed the profile was deleted"),
    ("not_found", "#5c8fb8", "the service had no such profile: nothing to erase"),
    ("rejected", "#c62828", "the service refused this identifier: a person must look"),
    ("failed", "#ef6c00", "temporary failures used every attempt: the next run retries"),
    ("pending", "#9e9e9e", "not finished yet: the next run sends it"),
)

# where a profile found again stands now (erasure.status.CameBack), for people
CAME_BACK_WORDS = {
    "erased_again": "erased again",
    "delete_open": "deleted again, no final answer yet: the next sweep retries",
    "waiting": "waits for a decision",
}

CSS = """
:root{--ink:#1f2933;--muted:#616e7c;--line:#d9e2ec;--bg:#f5f7fa}
*{box-sizing:border-box}
body{font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:var(--ink);
margin:0;background:var(--bg)}
main{max-width:1120px;margin:0 auto;padding:24px 32px 48px;background:#fff;min-height:100vh}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 8px;
border-bottom:2px solid var(--line);padding-bottom:4px}
.meta{color:var(--muted);margin:0}.meta code{color:var(--ink)}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:16px 0}
.card{flex:1 1 110px;border:1px solid var(--line);border-top:4px solid var(--c,#52606d);
border-radius:6px;padding:8px 12px}
.card .n{font-size:24px;font-weight:600;font-variant-numeric:tabular-nums}
.card .l{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
table{border-collapse:collapse;width:100%;margin:8px 0;font-size:13px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}
td{overflow-wrap:anywhere}
th{background:var(--bg);font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;word-break:break-all}
td.key,td.at{white-space:nowrap;word-break:normal}
.o{display:inline-block;padding:0 8px;border-radius:9px;color:#fff;background:var(--c);
font-size:12px}
.verdict{font-size:16px;padding:10px 14px;border-radius:6px;margin:12px 0}
.verdict.ok{background:#e8f5e9;color:#1b5e20}.verdict.bad{background:#fdecea;color:#8a1c1c}
.none{color:var(--muted)}.ok{color:#2e7d32}.bad{color:#c62828;font-weight:600}
.note{background:#fffbea;border-left:4px solid #f0b429;padding:8px 12px;margin:8px 0}
dl.legend{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:8px 0}
dl.legend dt{font-weight:600}dl.legend dd{margin:0;color:var(--muted)}
@media print{body{background:#fff}main{padding:0}h2{break-after:avoid}tr{break-inside:avoid}}
"""
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_COLOURS = {name: colour for name, colour, _ in OUTCOMES}


def e(value: object) -> str:
    """Escape any value for HTML text or an attribute."""
    return html.escape(str(value), quote=True)


def counted(name: str, value: int) -> str:
    """A headline number in bold, with ``data-count`` and its raw ``data-value``."""
    return f'<b data-count="{e(name)}" data-value="{int(value)}">{int(value):,}</b>'


def card(name: str, value: int, colour: str) -> str:
    """A headline card: the number (as :func:`counted` marks it) over its name."""
    return (
        f'<div class="card" style="--c:{colour}"><div class="n" data-count="{e(name)}" '
        f'data-value="{int(value)}">{int(value):,}</div>'
        f'<div class="l">{e(name.replace("_", " "))}</div></div>'
    )


def chart(counts: dict[str, Any]) -> str:
    """Counts per outcome as horizontal bars, inline SVG."""
    bar_h, gap, label_w, width = 22, 8, 96, 760
    top = max([int(counts[name]) for name, _, _ in OUTCOMES] + [1])
    height = len(OUTCOMES) * (bar_h + gap)
    out = [
        f'<svg role="img" aria-label="identifiers per outcome" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        "<title>Identifiers per outcome</title>",
    ]
    for i, (name, colour, _) in enumerate(OUTCOMES):
        n = int(counts[name])
        y = i * (bar_h + gap)
        w = round((width - label_w - 90) * n / top)
        out += [
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end" font-size="13" '
            f'fill="#1f2933">{e(name)}</text>',
            f'<rect x="{label_w}" y="{y}" width="{max(w, 1)}" height="{bar_h}" rx="3" '
            f'fill="{colour}"/>',
            f'<text x="{label_w + max(w, 1) + 6}" y="{y + 16}" font-size="13" '
            f'fill="#1f2933">{n:,}</text>',
        ]
    return "\n".join([*out, "</svg>"])


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A table of ``columns``, each cell written by :func:`cell`."""
    out = ["<table><thead><tr>", *(f"<th>{e(c)}</th>" for c in columns), "</tr></thead><tbody>"]
    for row in rows:
        out.append(
            "<tr>" + "".join(cell(c, v) for c, v in zip(columns, row, strict=True)) + "</tr>"
        )
    out.append("</tbody></table>")
    return "".join(out)


def cell(column: str, value: Any) -> str:
    """One cell, its look chosen by its column and value (empty, yes/no, number, outcome)."""
    if value is None:
        # an empty received-at: the request has no deadline, which is not an error
        return f'<td class="none">{"no deadline" if column == "deadline" else "–"}</td>'
    if isinstance(value, bool):
        loud = value and column in ("overdue", "reappeared")
        return f'<td class="{"bad" if loud else ""}">{"yes" if value else "no"}</td>'
    if column == "now" and value == CAME_BACK_WORDS["waiting"]:
        return f'<td class="bad">{e(value)}</td>'
    if isinstance(value, int):
        return f'<td class="num">{value:,}</td>' if column != "db_id" else f"<td>{value}</td>"
    if column == "outcome" and value in _COLOURS:
        return f'<td><span class="o" style="--c:{_COLOURS[value]}">{e(value)}</span></td>'
    if column in ("key", "input_sha256"):
        return f'<td class="mono{" key" if column == "key" else ""}">{e(value)}</td>'
    if column.endswith("_at"):
        return f'<td class="at">{e(timestamp(value))}</td>'
    return f"<td>{e(value)}</td>"


def timestamp(value: str | datetime | date) -> str:
    """A timestamp for people: to the second, in UTC when its offset is known."""
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.utcoffset() is None:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
