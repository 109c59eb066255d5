"""The act as a document people sign (.docx, .html) and the extract as a table (.xlsx, .csv).

Every format says the same things from :class:`erasure.act.content.Content`:
:func:`act_items` (the act's fields in order) and :func:`extract_rows` (the
extract's rows) are the one source; the writers only lay them out.
"""

from __future__ import annotations

import csv
import html
import re
from pathlib import Path

from erasure.act.content import Content, Row, shown
from erasure.act.words import DEFAULT_ARTICLE, WORDS
from erasure.safecells import neutralise

COLUMNS = (
    "col_request_id",
    "col_system",
    "col_categories",
    "col_destroyed_at",
    "col_reason",
    "col_event",
    "col_kind",
)


def _w(content: Content) -> dict[str, str]:
    return WORDS[content.fields.language]


def reason(content: Content) -> str:
    article = content.fields.article or DEFAULT_ARTICLE[content.fields.language]
    return _w(content)["reason_text"].format(article=article)


def _request(content: Content, request_id: str | None) -> str:
    return request_id if request_id is not None else _w(content)["no_request_id"]


def _scope(content: Content) -> str:
    w, s = _w(content), content.scope
    if s.run is not None:
        return w["scope_run"].format(run=s.run)
    assert s.start is not None and s.end is not None
    return w["scope_range"].format(start=s.start.isoformat(), end=s.end.isoformat())


def _dates(content: Content) -> str:
    days = sorted({r.at.date() for r in content.destroyed})
    if not days:
        return "—"
    if days[0] == days[-1]:
        return days[0].isoformat()
    return f"{days[0].isoformat()} — {days[-1].isoformat()}"


Item = tuple[str, str | tuple[str, list[str]]]  # label, and a text or (introduction, a list)


def _natural(text: str) -> list[int | str]:
    """Sorts T2 before T10."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text)]


def act_items(content: Content) -> list[Item]:
    """The act's fields, in order: (label, a text, or an introduction and a list)."""
    w, f = _w(content), content.fields
    subjects = sorted((_request(content, r) for r in content.subjects), key=_natural)
    sweeps = sum(1 for r in content.destroyed if r.kind == "sweep")
    count = f"{len(content.destroyed)}" + (f" ({w['sweep_count']}: {sweeps})" if sweeps else "")
    items: list[Item] = [
        (w["made_at"], shown(content.made_at)),
        (w["scope"], _scope(content)),
        (w["operator"], f.operator),
        (w["processor"], f.processor),
        (w["system"], f.system),
        (w["subjects"], (w["subjects_text"].format(count=len(subjects)), subjects)),
        (w["categories"], ("", list(f.categories))),
        (w["method"], w["method_text"]),
        (w["reason"], reason(content)),
        (w["destroyed_at"], _dates(content)),
        (w["count"], count),
    ]
    if content.nothing_found:
        missing = sorted(
            {_request(content, r.request_id) for r in content.nothing_found}, key=_natural
        )
        items.append((w["nothing_found"], (w["nothing_found_text"], missing)))
    for list_id, n in content.suppressed:  # [suppress]: kept, not destroyed (erasure.after)
        items.append((w["suppressed"], w["suppressed_text"].format(count=n, list=list_id)))
    items.append((w["ledger"], content.head))
    if content.plain_head:
        items.append((w["plain"], content.plain_head))
    return items


def _kind(content: Content, row: Row) -> str:
    return _w(content)[
        {"erased": "kind_erased", "sweep": "kind_sweep"}.get(row.kind, "kind_not_found")
    ]


def extract_rows(content: Content, rows: tuple[Row, ...] | None = None) -> list[list[str]]:
    """The extract: a row per destroyed profile (sweep re-deletes too), then those with nothing
    found to destroy, marked so in the last column (``rows``: only these)."""
    f = content.fields
    categories = "; ".join(f.categories)
    return [
        [
            _request(content, r.request_id),
            f.system,
            categories,
            shown(r.at),
            reason(content),
            str(r.seq),
            _kind(content, r),
        ]
        for r in ((*content.destroyed, *content.nothing_found) if rows is None else rows)
    ]


def header(content: Content) -> list[str]:
    w = _w(content)
    return [w[c] for c in COLUMNS]


# ---------------------------------------------------------------- the act


def write_docx(content: Content, out: Path) -> None:
    """The act as a Word document: its fields, the commission's signature lines."""
    from docx import Document
    from docx.shared import Pt

    w = _w(content)
    doc = Document()
    doc.styles["Normal"].font.size = Pt(11)
    doc.add_heading(w["title"], level=1)
    table = doc.add_table(rows=0, cols=2)
    table.style = "Table Grid"
    for label, value in act_items(content):
        cells = table.add_row().cells
        cells[0].text = label
        if isinstance(value, tuple):
            intro, listed = value
            cells[1].text = "\n".join([intro, *listed] if intro else listed)
        else:
            cells[1].text = value
    doc.add_paragraph(w["attachment"])
    doc.add_heading(w["commission"], level=2)
    for member in content.fields.commission:
        doc.add_paragraph(
            f"{member}    ____________________ ({w['signature']})    ________ ({w['date']})"
        )
    doc.add_paragraph(w["not_advice"]).runs[0].italic = True
    doc.save(str(out))


_CSS = (
    "body{font-family:serif;max-width:50rem;margin:2rem auto;padding:0 1rem;color:#111}"
    "table{border-collapse:collapse;width:100%}th,td{border:1px solid #999;padding:.3rem .5rem;"
    "vertical-align:top;text-align:left}th{width:35%;font-weight:normal;color:#333}"
    "ul{margin:0;padding-left:1.2rem}.sign{margin:1.6rem 0}.line{display:inline-block;"
    "width:12rem;border-bottom:1px solid #111;margin:0 .8rem}.note{color:#555;font-style:italic}"
)


def render_html(content: Content) -> str:
    """The act as one self-contained page (no script, nothing fetched)."""
    e, w = html.escape, _w(content)
    rows = []
    for label, value in act_items(content):
        if isinstance(value, tuple):
            intro, listed = value
            cell = e(intro) + "<ul>" + "".join(f"<li>{e(v)}</li>" for v in listed) + "</ul>"
        else:
            cell = e(value)
        rows.append(f"<tr><th>{e(label)}</th><td>{cell}</td></tr>")
    signs = "".join(
        f'<p class="sign" data-member="{i}">{e(m)}<span class="line"></span>({e(w["signature"])})'
        f'<span class="line"></span>({e(w["date"])})</p>'
        for i, m in enumerate(content.fields.commission)
    )
    lang = content.fields.language
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">"
        f"<title>{e(w['title'])}</title><style>{_CSS}</style></head><body>"
        f"<h1>{e(w['title'])}</h1><table>{''.join(rows)}</table>"
        f"<p>{e(w['attachment'])}</p><h2>{e(w['commission'])}</h2>{signs}"
        f'<p class="note">{e(w["not_advice"])}</p></body></html>\n'
    )


def write_html(content: Content, out: Path) -> None:
    out.write_text(render_html(content), encoding="utf-8")


# ---------------------------------------------------------------- the extract


def write_csv(content: Content, out: Path) -> None:
    """UTF-8 with a BOM (Excel reads it), cells that could be formulas neutralised."""
    with out.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header(content))
        writer.writerows([neutralise(c) for c in row] for row in extract_rows(content))


def write_xlsx(content: Content, out: Path) -> None:
    """The destroyed profiles on the first sheet; those with nothing found to destroy on a
    sheet of their own (never among the destroyed). Every cell written as text."""
    import xlsxwriter

    w = _w(content)
    book = xlsxwriter.Workbook(str(out), {"strings_to_formulas": False, "strings_to_urls": False})
    try:
        bold = book.add_format({"bold": True, "text_wrap": True})
        sheets = [(w["sheet_destroyed"], content.destroyed)]
        if content.nothing_found:
            sheets.append((w["sheet_nothing_found"], content.nothing_found))
        for name, rows in sheets:
            sheet = book.add_worksheet(name)
            for col, title in enumerate(header(content)):
                sheet.write_string(0, col, title, bold)
                sheet.set_column(col, col, 28)
            for i, row in enumerate(extract_rows(content, rows), start=1):
                for col, value in enumerate(row):
                    sheet.write_string(i, col, neutralise(value))
            sheet.freeze_panes(1, 0)
    finally:
        book.close()


WRITERS = {".docx": write_docx, ".html": write_html, ".xlsx": write_xlsx, ".csv": write_csv}
