"""The HTML report: one self-contained page a compliance officer can open offline.

No scripts, and nothing fetched: the styles are inline, the chart is inline
SVG, and a Content-Security-Policy forbids any other source, so the page
looks the same attached to an audit years later. Every value is escaped.
Each headline number carries ``data-count="<name>"`` (and its raw value in
``data-value``) equal to ``erasure status --json``. The detailed tables stop
at :data:`MAX_ROWS` rows each, with a note pointing to the CSV or XLSX report.

This module is the page, section by section; the pieces they are built of
(the style sheet, escaping, cards, the chart, tables and cells) are
:mod:`erasure.report.markup`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from erasure import partition
from erasure.errors import MEANINGS
from erasure.report.markup import (
    CAME_BACK_WORDS,
    CSP,
    CSS,
    OUTCOMES,
    card,
    chart,
    counted,
    e,
    table,
    timestamp,
)
from erasure.report.words import setting_rows

MAX_ROWS = 2_000  # per table of exceptions (overdue, rejected, in doubt, open requests)
ALL_ROWS_MAX = 100_000  # rows of the full table, by request; past it every row goes to OUT.rows.csv

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
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>Erasure report: {e(job_path.name)}</title><style>{CSS}</style></head>",
        "<body><main>",
        "<h1>Erasure report</h1>",
        f'<p class="meta">Generated <b>{e(timestamp(generated_at))}</b> from the ledger '
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
        f"<p>{counted('requests', acc['requests'])} requests: "
        f"{counted('complete', acc['complete'])} complete (at least one identifier, every one "
        "erased or not found, nothing invalid left), "
        f"{counted('incomplete', acc['incomplete'])} incomplete: "
        + ", ".join(
            f"{counted(f'reason_{r}', n)} {e(partition.WORDS[partition.Reason(r)])}"
            for r, n in acc["incomplete_reasons"].items()
        )
        + ". "
        f"{counted('open_past_deadline', acc['open_past_deadline'])} open and past the deadline; "
        f"{counted('finished_late', acc['finished_late'])} finished late; "
        f"{counted('deadline_unknown', acc.get('deadline_unknown', 0))} with no deadline "
        "(every received date unusable).</p>",
        *(
            [
                f"<p>Sweep deletes, apart from the pairs: {counted('sweep_deletes', sd['deletes'])}"
                f" = {counted('sweep_erased', sd['erased'])} erased + "
                f"{counted('sweep_not_found', sd['not_found'])} not found + "
                f"{counted('sweep_open', sd['open'])} open.</p>"
            ]
            if (sd := counts.get("sweep_deletes") or {}).get("deletes")
            else []
        ),
        f"<p>{counted('total', counts['total'])} (request, identifier) pairs = "
        + " + ".join(f"{counted(n, counts[n])} {e(n.replace('_', ' '))}" for n, _, _ in OUTCOMES)
        + f"; {counted('invalid', counts['invalid'])} unresolved invalid records.</p>",
        '<div class="cards">',
        *(card(name, acc[name], colour) for name, colour in REQUEST_CARDS),
        "</div>",
        '<div class="cards">',
        card("total", counts["total"], "#52606d"),
        *(card(name, counts[name], colour) for name, colour, _ in OUTCOMES),
        card("in_doubt", counts["in_doubt"], "#8e24aa"),
        card("overdue", counts["overdue"], "#b71c1c"),
        "</div>",
        chart(counts),
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
    return [*head, table(shown.columns, shown.iter_rows()), "</section>"]


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
        f"<p>{counted('reappeared', tally.get('profiles', profiles.height))} came back: "
        f"{counted('reappeared_by_profile_id', tally.get('by_profile_id', 0))} by profile id, "
        f"{counted('reappeared_by_identifier', tally.get('by_identifier', 0))} by identifier "
        f"only; {counted('erased_again', tally.get('erased_again', 0))} erased again, "
        f"{counted('delete_open', tally.get('delete_open', 0))} deleted with no final answer "
        f"yet, {counted('waiting', tally.get('waiting', 0))} waiting for a decision.</p>"
    )
    order = pl.col("now").replace_strict(
        {"waiting": 0, "delete_open": 1, "erased_again": 2}, default=3, return_dtype=pl.Int64
    )
    shown = profiles.sort(order, maintain_order=True).with_columns(
        pl.col("now").replace_strict(CAME_BACK_WORDS, default=pl.col("now"))
    )
    shown = shown.head(MAX_ROWS).select(_CAME_BACK_COLUMNS)
    body = [summary, table(_CAME_BACK_COLUMNS, shown.iter_rows())]
    if profiles.height > MAX_ROWS:
        body.append(
            f'<p class="note">Showing the first {MAX_ROWS:,} of {profiles.height:,}. '
            "The full list is on the XLSX report's sheet Reappeared.</p>"
        )
    return [*head, *body, "</section>"]


def _section(anchor: str, frame: pl.DataFrame, columns: Sequence[str]) -> list[str]:
    """A heading, an introduction and a capped table, or 'None'."""
    title, intro = SECTIONS[anchor]
    head = [f'<section id="{e(anchor)}"><h2>{e(title)} ({frame.height:,})</h2>', f"<p>{intro}</p>"]
    if frame.height == 0:
        return [*head, '<p class="none">None.</p></section>']
    shown = frame.head(MAX_ROWS).select(columns)
    head.append(table(columns, shown.iter_rows()))
    if frame.height > MAX_ROWS:
        head.append(
            f'<p class="note">Showing the first {MAX_ROWS:,} of {frame.height:,}. '
            "The full list is in the CSV or XLSX report "
            "(<code>erasure report JOB --out report.xlsx</code>).</p>"
        )
    return [*head, "</section>"]


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
    body = table(columns, rows) if rows else '<p class="none">No run yet.</p>'
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
        f"{table(['setting', 'value'], rows)}</section>"
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
