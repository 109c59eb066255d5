"""The HTML report: one self-contained page a compliance officer can open offline.

No scripts, and nothing fetched: the styles are inline, the chart is inline
SVG, and a Content-Security-Policy forbids any other source, so the page
looks the same attached to an audit years later. Every value is escaped.
Each headline number carries ``data-count="<name>"`` (and its raw value in
``data-value``) equal to ``erasure status --json``. The detailed tables stop
at :data:`MAX_ROWS` rows each, with a note pointing to the CSV or XLSX report.

Longer than most modules: one self-contained page, mostly its HTML text,
with the small helpers that escape and format its cells.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from erasure import partition
from erasure.errors import MEANINGS
from erasure.report.words import setting_rows

MAX_ROWS = 2_000  # per table of exceptions (overdue, rejected, in doubt, open requests)
ALL_ROWS_MAX = 100_000  # rows of the full table, by request; past it every row goes to OUT.rows.csv

# name, colour, what it means for the person whose data it is
OUTCOMES = (
    ("erased", "#2e7d32", "the service confirmed the profile was deleted"),
    ("not_found", "#5c8fb8", "the service had no such profile: nothing to erase"),
    ("rejected", "#c62828", "the service refused this identifier: a person must look"),
    ("failed", "#ef6c00", "temporary failures used every attempt: the next run retries"),
    ("pending", "#9e9e9e", "not finished yet: the next run sends it"),
)
INVALID_MEANING = "an input row or cell that could not be used: fix the file and run again"
# accounting name, colour: the request cards of the headline
REQUEST_CARDS = (
    ("requests", "#52606d"),
    ("complete", "#2e7d32"),
    ("incomplete", "#c62828"),
    ("open_past_deadline", "#b71c1c"),
    ("finished_late", "#ef6c00"),
    ("unresolved", "#6d4c41"),
)
FLAGS = (
    ("in_doubt", "a request may have reached the service before its answer was lost"),
    ("overdue", "the deadline passed before the erasure was finished"),
)
# id: title, introduction (trusted HTML)
SECTIONS = {
    "overdue": (
        "Overdue identifiers",
        "Identifiers whose deadline passed before they were finished, oldest deadline first.",
    ),
    "rejected": (
        "Rejected identifiers",
        "The service refused these; fix the data or the configured codes, then run again "
        "with <code>--retry-rejected</code>.",
    ),
    "in-doubt": (
        "In doubt",
        "A request for these identifiers may have reached the service before a crash or a lost "
        "answer, so it was sent again. A final <b>not_found</b> after such a request most "
        "likely means the earlier request erased the profile; <b>erased</b> means the repeat "
        "did.",
    ),
    "requests": (
        "Requests not yet fully erased",
        "A request is erased when every identifier of it has a final erased or not_found. "
        "Identifiers without a request id share one row with an empty request id.",
    ),
}
_CSS = """
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
_PAIR = ("request_id", "key", "matching", "outcome")
_OVERDUE_COLUMNS = (*_PAIR, "deadline", "finished_at")
_DOUBT_COLUMNS = (*_PAIR, "attempts", "finished_at")
_ERROR = ("error_code", "http_status", "error_text")
_REJECTED_COLUMNS = (*_PAIR[:2], "db_id", "matching", *_ERROR, "finished_at")
_REQUEST_COLUMNS = (
    "request_id",
    "status",
    "why",
    "identifiers",
    *(name for name, _, _ in OUTCOMES),
    "invalid",
    "in_doubt",
)
_RUN_COLUMNS = ("run", "started_at", "finished_at", "exit_code", "input_sha256", "input_rows")
_COLOURS = {name: colour for name, colour, _ in OUTCOMES}
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def e(value: object) -> str:
    """Escape any value for HTML text or an attribute."""
    return html.escape(str(value), quote=True)


def render(
    *,
    rows: pl.DataFrame,
    requests: pl.DataFrame,
    counts: dict[str, Any],
    runs: list[dict[str, Any]],
    settings: dict[str, Any],
    ledger_path: Path,
    job_path: Path,
    generated_at: datetime,
    spill: Path | None = None,
    rows_max: int = ALL_ROWS_MAX,
    reappeared: pl.DataFrame | None = None,
) -> str:
    """The whole page as a string.

    ``spill`` names the CSV holding every row, when written; the page then
    lists the first ``rows_max`` rows. ``reappeared`` is
    :func:`erasure.status.reappeared_profiles`' table (none: no section rows).
    """
    acc = counts["accounting"]
    has_deadline = rows.get_column("deadline").is_not_null().any()
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>Erasure report: {e(job_path.name)}</title><style>{_CSS}</style></head>",
        "<body><main>",
        "<h1>Erasure report</h1>",
        f'<p class="meta">Generated <b>{e(_ts(generated_at))}</b> from the ledger '
        f"<code>{e(ledger_path)}</code> of the job <code>{e(job_path)}</code>.</p>",
        *(
            [
                f'<p class="verdict bad">This page shows the first {rows_max:,} of '
                f"{rows.height:,} rows; every row is in <code>{e(spill)}</code>.</p>"
            ]
            if spill is not None
            else []
        ),
        *(
            f'<p class="verdict bad" data-open-elsewhere="{e(gone["file"])}">{gone["open"]:,} '
            f"pairs of the earlier input <code>{e(gone['file'])}</code> (sha256 "
            f"<code>{e(gone['sha256'][:12])}</code>) are still open and its file is "
            f"{e(gone['state'])}: put it back at <code>{e(gone['path'])}</code> and run again, "
            "or cancel their requests.</p>"
            for gone in counts.get("open_elsewhere") or []
        ),
        '<section id="summary"><h2>Summary</h2>',
        f'<p class="verdict {"ok" if acc["complete"] == acc["requests"] else "bad"}">'
        f"{e(counts['verdict'])}</p>",
        f"<p>{_count('requests', acc['requests'])} requests: "
        f"{_count('complete', acc['complete'])} complete (at least one identifier, every one "
        "erased or not found, nothing invalid left), "
        f"{_count('incomplete', acc['incomplete'])} incomplete: "
        + ", ".join(
            f"{_count(f'reason_{r}', n)} {e(partition.WORDS[partition.Reason(r)])}"
            for r, n in acc["incomplete_reasons"].items()
        )
        + ". "
        f"{_count('open_past_deadline', acc['open_past_deadline'])} open and past the deadline; "
        f"{_count('finished_late', acc['finished_late'])} finished late; "
        f"{_count('deadline_unknown', acc.get('deadline_unknown', 0))} with no deadline "
        "(every received date unusable).</p>",
        *(
            [
                f"<p>Sweep deletes, apart from the pairs: {_count('sweep_deletes', sd['deletes'])}"
                f" = {_count('sweep_erased', sd['erased'])} erased + "
                f"{_count('sweep_not_found', sd['not_found'])} not found + "
                f"{_count('sweep_open', sd['open'])} open.</p>"
            ]
            if (sd := counts.get("sweep_deletes") or {}).get("deletes")
            else []
        ),
        f"<p>{_count('total', counts['total'])} (request, identifier) pairs = "
        + " + ".join(f"{_count(n, counts[n])} {e(n.replace('_', ' '))}" for n, _, _ in OUTCOMES)
        + f"; {_count('invalid', counts['invalid'])} unresolved invalid records.</p>",
        '<div class="cards">',
        *(_card(name, acc[name], colour) for name, colour in REQUEST_CARDS),
        "</div>",
        '<div class="cards">',
        _card("total", counts["total"], "#52606d"),
        *(_card(name, counts[name], colour) for name, colour, _ in OUTCOMES),
        _card("in_doubt", counts["in_doubt"], "#8e24aa"),
        _card("overdue", counts["overdue"], "#b71c1c"),
        "</div>",
        _chart(counts),
        '<dl class="legend">',
        *(f"<dt>{e(n)}</dt><dd>{e(text)}</dd>" for n, _, text in OUTCOMES),
        f"<dt>invalid</dt><dd>{e(INVALID_MEANING)}</dd>",
        *(f"<dt>{e(n)}</dt><dd>{e(text)}</dd>" for n, text in FLAGS),
        "</dl></section>",
    ]
    open_requests = requests.filter(pl.col("status") != "complete")
    if has_deadline:
        overdue = rows.filter(pl.col("overdue").fill_null(False)).sort("deadline")
        parts += _section("overdue", overdue, _OVERDUE_COLUMNS)
        open_requests = open_requests.sort(
            "open_past_deadline",
            "deadline",
            descending=[True, False],
            nulls_last=True,
            maintain_order=True,
        )
    parts += _section("rejected", rows.filter(pl.col("outcome") == "rejected"), _REJECTED_COLUMNS)
    parts += _section("in-doubt", rows.filter(pl.col("in_doubt")), _DOUBT_COLUMNS)
    deadline = ("deadline", "open_past_deadline", "finished_late") if has_deadline else ()
    parts += _section("requests", open_requests, (*_REQUEST_COLUMNS, *deadline))
    parts += _came_back(reappeared, counts.get("reappeared") or {})
    parts += _every_row(rows, rows_max)
    parts += [
        _runs(runs),
        _settings(settings),
        _integrity(counts, ledger_path, job_path),
        "</main></body></html>",
    ]
    return "\n".join(parts) + "\n"


def _every_row(rows: pl.DataFrame, rows_max: int) -> list[str]:
    """Every row of the report, grouped by request (the rows come so), up to ``rows_max``."""
    shown = rows.head(rows_max)
    head = [
        f'<section id="all"><h2>Every row, by request ({rows.height:,})</h2>',
        "<p>One row per request and identifier, and one per unresolved invalid input row "
        "(outcome <b>invalid</b>, with its row, column and reason; never the value).</p>",
    ]
    if not shown.height:
        return [*head, '<p class="none">None.</p></section>']
    return [*head, _table(shown.columns, shown.iter_rows()), "</section>"]


# where a profile found again stands now (erasure.status.CameBack), for people
CAME_BACK_WORDS = {
    "erased_again": "erased again",
    "delete_open": "deleted again, no final answer yet: the next sweep retries",
    "waiting": "waits for a decision",
}
_CAME_BACK_COLUMNS = (
    "profile_id",
    "db_id",
    "request_id",
    "match",
    "first_erased_at",
    "found_at",
    "erased_again_at",
    "now",
)


def _came_back(profiles: pl.DataFrame | None, tally: dict[str, int]) -> list[str]:
    """What came back after an erasure, when it was first erased and erased again, what waits."""
    profiles = profiles if profiles is not None else pl.DataFrame()
    head = [
        f'<section id="reappeared"><h2>Profiles that came back ({profiles.height:,})</h2>',
        "<p><code>erasure sweep</code> reads an export of the Altcraft database after a "
        "restore or a sync. A profile whose <b>profile id</b> was erased before (a restored "
        "backup) is deleted again at once. A profile that only shares an <b>identifier</b> "
        "with an erased request (a re-import, a person who came back with fresh consent, a "
        "reassigned phone) waits for a person to decide; "
        "<code>erasure sweep JOB --export FILE --include-identifier-matches</code> deletes "
        "it. Such rows carry <b>reappeared = yes</b> in every report.</p>",
    ]
    if not profiles.height:
        return [*head, '<p class="none">No sweep has found a profile that came back.</p></section>']
    summary = (
        f"<p>{_count('reappeared', tally.get('profiles', profiles.height))} came back: "
        f"{_count('reappeared_by_profile_id', tally.get('by_profile_id', 0))} by profile id, "
        f"{_count('reappeared_by_identifier', tally.get('by_identifier', 0))} by identifier "
        f"only; {_count('erased_again', tally.get('erased_again', 0))} erased again, "
        f"{_count('delete_open', tally.get('delete_open', 0))} deleted with no final answer "
        f"yet, {_count('waiting', tally.get('waiting', 0))} waiting for a decision.</p>"
    )
    order = pl.col("now").replace_strict(
        {"waiting": 0, "delete_open": 1, "erased_again": 2}, default=3, return_dtype=pl.Int64
    )
    shown = profiles.sort(order, maintain_order=True).with_columns(
        pl.col("now").replace_strict(CAME_BACK_WORDS, default=pl.col("now"))
    )
    shown = shown.head(MAX_ROWS).select(_CAME_BACK_COLUMNS)
    body = [summary, _table(_CAME_BACK_COLUMNS, shown.iter_rows())]
    if profiles.height > MAX_ROWS:
        body.append(
            f'<p class="note">Showing the first {MAX_ROWS:,} of {profiles.height:,}. '
            "The full list is on the XLSX report's sheet Reappeared.</p>"
        )
    return [*head, *body, "</section>"]


def _many(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _count(name: str, value: int) -> str:
    return f'<b data-count="{e(name)}" data-value="{int(value)}">{int(value):,}</b>'


def _card(name: str, value: int, colour: str) -> str:
    return (
        f'<div class="card" style="--c:{colour}"><div class="n" data-count="{e(name)}" '
        f'data-value="{int(value)}">{int(value):,}</div>'
        f'<div class="l">{e(name.replace("_", " "))}</div></div>'
    )


def _chart(counts: dict[str, Any]) -> str:
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


def _section(anchor: str, frame: pl.DataFrame, columns: Sequence[str]) -> list[str]:
    """A heading, an introduction and a capped table, or 'None'."""
    title, intro = SECTIONS[anchor]
    head = [f'<section id="{e(anchor)}"><h2>{e(title)} ({frame.height:,})</h2>', f"<p>{intro}</p>"]
    if frame.height == 0:
        return [*head, '<p class="none">None.</p></section>']
    shown = frame.head(MAX_ROWS).select(columns)
    head.append(_table(columns, shown.iter_rows()))
    if frame.height > MAX_ROWS:
        head.append(
            f'<p class="note">Showing the first {MAX_ROWS:,} of {frame.height:,}. '
            "The full list is in the CSV or XLSX report "
            "(<code>erasure report JOB --out report.xlsx</code>).</p>"
        )
    return [*head, "</section>"]


def _table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = ["<table><thead><tr>", *(f"<th>{e(c)}</th>" for c in columns), "</tr></thead><tbody>"]
    for row in rows:
        out.append(
            "<tr>" + "".join(_cell(c, v) for c, v in zip(columns, row, strict=True)) + "</tr>"
        )
    out.append("</tbody></table>")
    return "".join(out)


def _cell(column: str, value: Any) -> str:
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
        return f'<td class="at">{e(_ts(value))}</td>'
    return f"<td>{e(value)}</td>"


def _ts(value: str | datetime | date) -> str:
    """A timestamp for people: to the second, in UTC when its offset is known."""
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.utcoffset() is None:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _runs(runs: list[dict[str, Any]]) -> str:
    columns = [*_RUN_COLUMNS, "outcomes"]
    rows = []
    for r in runs:
        code = r["exit_code"]
        meaning = (
            f"{code} ({MEANINGS.get(code, 'unknown')})"
            if code is not None
            else "never finished (killed, or still running)"
        )
        outcomes = ", ".join(f"{k} {v:,}" for k, v in (r["outcomes"] or {}).items())
        if r.get("stop_reason"):
            outcomes += f"; stopped: {r['stop_reason']}"
        row = [r[c] for c in ("run", "started_at", "finished_at")]
        rows.append([*row, meaning, r["input_sha256"], r["input_rows"], outcomes or None])
    body = _table(columns, rows) if rows else '<p class="none">No run yet.</p>'
    return (
        f'<section id="runs"><h2>Run history ({len(runs)})</h2>'
        "<p>Every run of this ledger; the input file's SHA-256 identifies the exact file "
        f"handed over.</p>{body}</section>"
    )


def _settings(settings: dict[str, Any]) -> str:
    rows = setting_rows(settings)
    return (
        '<section id="settings"><h2>Settings</h2><p>The job file\'s settings when this '
        "report was written (secrets are never recorded).</p>"
        f"{_table(['setting', 'value'], rows)}</section>"
    )


def _integrity(counts: dict[str, Any], ledger_path: Path, job_path: Path) -> str:
    head = counts.get("chain_head") or {}
    seq, link = head.get("seq"), head.get("link")
    return (
        '<section id="integrity"><h2>Ledger integrity</h2>'
        "<p>Every ledger event is chained to the one before by a keyed hash, so a change, "
        "removal, insertion or reordering of any event is detectable.</p>"
        f'<p>Chain head when this report was written: event <b data-chain="seq">{e(seq)}</b>, '
        f'link <code data-chain="link">{e(link)}</code>.</p>'
        f"<p>To check it, run <code>erasure verify {e(job_path)}</code> (it needs the ledger "
        "key): it must say <i>ledger intact</i>. If runs happened after this report, its head "
        f'is later; then <code>sqlite3 {e(ledger_path)} "SELECT link FROM events WHERE seq = '
        f'{e(seq)}"</code> must print the link above.</p></section>'
    )
