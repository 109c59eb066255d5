"""The README's job-file reference, printed from the schema the parser uses.

``python -m erasure.job.reference`` prints it; ``--write README.md`` puts it
between the README's markers. ``tests/test_job_reference.py`` fails when the
README differs, so every key, default and reader is documented as parsed.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from dataclasses import MISSING
from pathlib import Path
from typing import Any

from erasure.job.schema import describe, fields_of, is_internal, is_table, unoptional

BEGIN = "<!-- job-reference: printed by `python -m erasure.job.reference --write README.md` -->"
END = "<!-- end of job-reference -->"


def _default(f: dataclasses.Field[Any]) -> str:
    shown = f.metadata.get("shown")
    if shown is not None:
        return str(shown)
    if f.default is MISSING and f.default_factory is MISSING:
        return "**required**"
    value = f.default
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, frozenset):
        return str(sorted(value))
    return str(value)


def _commands(names: Sequence[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _section(cls: type, name: str, doc: str, commands: Sequence[str]) -> list[str]:
    said = f"{doc[0].upper()}{doc[1:]}. Read by {_commands(commands)}."
    lines = [f"#### `[{name}]`", "", said, ""]
    lines += ["| key | type | default | read by | meaning |", "| --- | --- | --- | --- | --- |"]
    subs: list[str] = []
    for f, tp in fields_of(cls):
        if is_internal(f):
            continue
        readers = f.metadata.get("commands") or commands
        if is_table(f):
            sub = f.metadata
            subs += _section(_table_type(tp), f"{name}.{f.name}", sub["doc"], readers)
            continue
        lines.append(
            f"| `{f.name}` | {_cell(describe(tp))} | {_cell(_default(f))} "
            f"| {_commands(readers)} | {_cell(f.metadata.get('doc', ''))} |"
        )
    return [*lines, "", *subs]


def _table_type(tp: Any) -> type:
    plain: type = unoptional(tp)
    return plain


def render() -> str:
    """The reference, Markdown, one table per section."""
    from erasure.job import Job

    lines = [
        BEGIN,
        "",
        "Every key the parser accepts; any other is refused (78) with its name. Relative "
        "paths resolve against the job file's folder. A section is read only by the "
        "commands named with it.",
        "",
    ]
    for f, tp in fields_of(Job):
        if is_internal(f):
            continue
        lines += _section(_table_type(tp), f.name, f.metadata["doc"], f.metadata["commands"])
    while lines[-1] == "":
        lines.pop()
    return "\n".join([*lines, "", END])


def replace_in(text: str) -> str:
    """``text`` (the README) with its reference replaced by :func:`render`'s."""
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[:start] + render() + text[end:]


def current(text: str) -> str:
    """The reference as it stands in ``text`` (the README)."""
    return text[text.index(BEGIN) : text.index(END) + len(END)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m erasure.job.reference")
    parser.add_argument("--write", type=Path, help="replace the reference in this README")
    args = parser.parse_args(argv)
    if args.write is None:
        sys.stdout.write(render() + "\n")
        return 0
    text = args.write.read_text(encoding="utf-8")
    args.write.write_text(replace_in(text), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
