"""Any bytes given to any reader end in success or 65, never 70, a signal or a hang.

Every reader (CSV, XLSX, Parquet, NDJSON, receipts) is given generated files: random bytes,
near-valid files with their bytes flipped or cut, JSON nested and numbered at random, and
workbooks whose cells sit anywhere and whose `<dimension>` lies or is missing. In `make test`
each runs in this process with a modest number of examples (the XLSX cells kept within what
the guard lets through, so a reader bug cannot take the suite down with it); under
ERASURE_TEST_LONG=1 (`make test-long`) many more run, each in a subprocess with a memory and
a CPU-time bound, so that a crash shows as a signal and a hang as a timeout.
"""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from xml.sax.saxutils import escape

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from erasure import cli
from tests.conftest import LONG
from tests.hostile.test_xlsx_bounds import make_xlsx

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
ALLOWED = {0, 1, 65}  # done; done with invalid rows (or a receipt not valid); unusable
EXAMPLES = int(os.environ.get("ERASURE_PROPERTY_EXAMPLES", 300 if LONG else 25))
MEMORY = 4 * 1024**3  # bytes of address space a subprocess may take: a grid at the XLSX
# limit (16M cells) reads in about 630 MB resident, more in address space (threads, arenas)
CPU_S = 60  # seconds of CPU a subprocess may take
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# ---------------------------------------------------------------- strategies


def _flipped(data: bytes) -> st.SearchStrategy[bytes]:
    """``data`` cut short, or with bytes overwritten at random places."""
    cut = st.integers(0, len(data)).map(lambda n: data[:n])
    flips = st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)), max_size=8)

    def flip(changes: list[tuple[int, int]]) -> bytes:
        out = bytearray(data)
        for at, value in changes:
            out[at] = value
        return bytes(out)

    return st.one_of(cut, flips.map(flip))


_CELL = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30
)  # any text, control characters and all
_EMAILISH = st.sampled_from(["user1@example.com", "a@b", "", " x@y.z ", "mailto:q@w.e", "=1+1"])
_VALUE = st.one_of(_CELL, _EMAILISH)


@st.composite
def csv_bytes(draw: st.DrawFn) -> bytes:
    header = draw(st.sampled_from(["email", "Email;ticket", "ticket,email", "phone\temail", "x"]))
    separator = draw(st.sampled_from([",", ";", "\t", "|"]))
    rows = draw(st.lists(st.lists(_VALUE, max_size=4), max_size=12))
    quote = draw(st.booleans())
    lines = [header] + [separator.join((f'"{v}"' if quote else v) for v in row) for row in rows]
    text = draw(st.sampled_from(["\n", "\r\n", "\r"])).join(lines)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1251"]))
    return text.encode(encoding, errors="replace")


_JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**80), max_value=10**80),
        st.floats(allow_nan=False, allow_infinity=False),
        _VALUE,
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["email", "x", "ticket"]), inner, max_size=3),
    ),
    max_leaves=20,
)


@st.composite
def ndjson_bytes(draw: st.DrawFn) -> bytes:
    records = draw(st.lists(_JSON, max_size=8))
    lines = [json.dumps(r) for r in records]
    depth = draw(st.integers(0, 60))
    if depth:  # a line nested deep, around the bound
        lines.append('{"email": "a@b.c", "x": ' + "[" * depth + "]" * depth + "}")
    if draw(st.booleans()):
        lines.append('{"email": ' + "9" * draw(st.integers(1, 200)) + "}")
    return "\n".join(lines).encode()


def _parquet_seed() -> bytes:
    buffer = io.BytesIO()
    pl.DataFrame({"email": ["user1@example.com", "b@c.d"], "n": [1, 2]}).write_parquet(buffer)
    return buffer.getvalue()


_COLUMNS = ["A", "B", "Z", "AA", "AZ", "GR"]
_HUGE = ["XFD1048576", "ZZ200000", "A1048577", "XFE1", "A0", "1A", "A-1", "AAAA1"]


@st.composite
def xlsx_bytes(draw: st.DrawFn, tmp: Path) -> bytes:
    """A workbook built part by part: cells anywhere, a dimension that lies or is missing."""
    wide = LONG  # in-process, cells stay within what the guard lets through
    refs = st.one_of(
        st.tuples(st.sampled_from(_COLUMNS), st.integers(1, 100_000 if wide else 300)).map(
            lambda t: f"{t[0]}{t[1]}"
        ),
        st.sampled_from(_HUGE if wide else ["A1", "B2"]),
    )
    cells = draw(st.lists(st.tuples(refs, _VALUE.map(escape)), max_size=10))
    if draw(st.booleans()):
        cells.insert(0, ("A1", "email"))
    dimension = draw(
        st.one_of(st.none(), st.sampled_from(["A1", "A1:XFD1048576", "A1:B2", "junk"]))
    )
    shared = None
    if draw(st.booleans()):
        shared = [v for _, v in cells]
        cells = [(ref, str(i)) for i, (ref, _) in enumerate(cells)]
    path = make_xlsx(tmp / "built.xlsx", cells, dimension=dimension, shared=shared)
    data = path.read_bytes()
    return draw(st.one_of(st.just(data), _flipped(data)))


def _receipt_seed() -> bytes:
    from erasure.receipts.html import extract_json

    return extract_json((FIXTURES / "receipt-html-1.html").read_bytes())


@st.composite
def receipt_bytes(draw: st.DrawFn) -> bytes:
    seed = _receipt_seed()
    document = json.loads(seed)
    path = draw(st.sampled_from(["request", "identifiers", "ledger", "status", "format", "x"]))
    document["receipt"][path] = draw(_JSON)
    changed = json.dumps(document).encode()
    return draw(st.one_of(st.just(changed), _flipped(seed), st.binary(max_size=300)))


# ---------------------------------------------------------------- the property


def _limits() -> None:  # in the child, before exec
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_S, CPU_S))


def _exit_code(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    if not LONG:
        capsys.readouterr()
        code = cli.main(args)
        return code, capsys.readouterr().err
    result = subprocess.run(
        [sys.executable, "-m", "erasure", *args],
        capture_output=True,
        text=True,
        timeout=4 * CPU_S,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=_limits,
        check=False,
    )
    assert result.returncode >= 0, f"killed by signal {-result.returncode}: {result.stderr[-500:]}"
    return result.returncode, result.stderr


def _validate(job: Path, path: Path, data: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    path.write_bytes(data)
    code, err = _exit_code(["validate", str(job), "--input", str(path)], capsys)
    assert code in ALLOWED, err
    assert "Traceback" not in err


@pytest.fixture
def job(write_job: Callable[..., Path]) -> Path:
    return write_job()  # type: ignore[no-any-return]


@SETTINGS
@given(data=st.one_of(csv_bytes(), st.binary(max_size=500)))
def test_any_csv_is_used_or_65(
    job: Path, tmp_path: Path, data: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    _validate(job, tmp_path / "in.csv", data, capsys)


@SETTINGS
@given(data=st.one_of(ndjson_bytes(), st.binary(max_size=500)))
def test_any_ndjson_is_used_or_65(
    job: Path, tmp_path: Path, data: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    _validate(job, tmp_path / "in.ndjson", data, capsys)


@SETTINGS
@given(data=st.one_of(_flipped(_parquet_seed()), st.binary(max_size=300)))
def test_any_parquet_is_used_or_65(
    job: Path, tmp_path: Path, data: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    _validate(job, tmp_path / "in.parquet", data, capsys)


@SETTINGS
@given(data=st.data())
def test_any_xlsx_is_used_or_65(
    job: Path, tmp_path: Path, data: st.DataObject, capsys: pytest.CaptureFixture[str]
) -> None:
    _validate(job, tmp_path / "in.xlsx", data.draw(xlsx_bytes(tmp_path)), capsys)


@SETTINGS
@given(data=receipt_bytes())
def test_any_receipt_is_valid_not_valid_or_65(
    tmp_path: Path, data: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    for suffix in (".json", ".html"):
        path = tmp_path / f"r{suffix}"
        body = (
            data
            if suffix == ".json"
            else (b'<!doctype html><pre id="receipt">' + data.replace(b"<", b"&lt;") + b"</pre>")
        )
        path.write_bytes(body)
        code, err = _exit_code(
            ["check-receipt", str(path), "--public-key", str(FIXTURES / "fixed.pub")], capsys
        )
        assert code in ALLOWED, err
        assert "Traceback" not in err
