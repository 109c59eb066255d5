"""Real export shapes (tests/exports_corpus.py) give their expected accounting; the repairs
only turn invalid cells into valid ones, over this corpus and tests/corpus alike."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from erasure import cli, intake
from erasure import job as job_mod
from erasure.errors import ErasureError
from erasure.intake import Intake, repair
from erasure.keys import Keyer
from tests import e2e
from tests.conftest import LEDGER_KEY, _toml
from tests.exports_corpus import BUILDERS, Case, Expected, build
from tests.sandbox_fixture import Sandbox

NAMES = [b.__name__ for b in BUILDERS]
OLD_CORPUS = Path(__file__).parent / "corpus"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Case]]:
    folder = tmp_path_factory.mktemp("exports")
    cases = build(folder)
    return folder, {b.__name__: c for b, c in zip(BUILDERS, cases, strict=True)}


def _job(folder: Path, path: Path, settings: dict[str, Any], **more: object) -> job_mod.Job:
    section: dict[str, object] = {"path": str(path), "db_id": 1, **settings, **more}
    columns = section.pop("columns", None)
    sections: dict[str, dict[str, object]] = {
        "api": {"base_url": "http://127.0.0.1:9"},
        "input": {**section, **({"columns": columns} if columns else {})},
        "ledger": {"path": "ledger.sqlite"},
    }
    job_file = folder / "job.toml"
    job_file.write_text(_toml(sections), encoding="utf-8")
    return job_mod.load(job_file)


def _read(folder: Path, case: Case, **more: object) -> Intake:
    job = _job(folder, folder / case.file, case.input, **more)
    return intake.read(job, Keyer(LEDGER_KEY.encode()))


def _accounting(data: Intake) -> Expected:
    reasons = dict(data.invalid.group_by("reason").len().iter_rows())
    return Expected(
        rows=data.counts.rows,
        valid=data.counts.valid,
        invalid=reasons,
        repairs=data.repair_counts(),
        header_row=data.header_row or 0,
    )


@pytest.mark.parametrize("name", NAMES)
def test_each_export_gives_its_accounting(corpus: tuple[Path, dict[str, Case]], name: str) -> None:
    folder, cases = corpus
    case = cases[name]
    found = _accounting(_read(folder, case))
    assert case.expected == found
    # the identities hold: every cell is valid, invalid or in a skipped row
    data = _read(folder, case)
    counts = data.counts
    assert counts.identifiers == counts.valid + counts.invalid_cells + counts.skipped


@pytest.mark.parametrize(
    "name", [n for n in NAMES if n in ("helpdesk", "excel_names", "three_addresses")]
)
def test_split_addresses_gives_one_identifier_each(
    corpus: tuple[Path, dict[str, Case]], name: str
) -> None:
    folder, cases = corpus
    case = cases[name]
    data = _read(folder, case, split_addresses=True)
    assert case.split == _accounting(data)
    values = set(data.items.get_column("value").to_list())
    for addresses in case.several:
        assert set(addresses) <= values


def test_the_helpdesk_invalid_records_are_the_unusable_cells_only(
    corpus: tuple[Path, dict[str, Case]],
) -> None:
    """Rows as the spreadsheet numbers them (title, blank line, header above); no value."""
    folder, cases = corpus
    data = _read(folder, cases["helpdesk"])
    invalid = data.invalid
    several = invalid.filter(pl.col("reason") == "several_addresses")
    assert [172, 173, 174, 175, 176] == several.get_column("row").to_list()
    assert {"Электронная почта"} == set(several.get_column("column").to_list())
    words = " ".join(invalid.get_column("words").to_list())
    assert "user" not in words and "example.com" not in words  # never a value
    assert "holds 3 different addresses" in words
    logged = data.repairs.filter(pl.col("kind") == "mailto").get_column("row").to_list()
    assert list(range(158, 166)) == logged


def _without_repairs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The earlier release's reading: the strict rules alone, no repair."""

    def strict(raw: pl.Series, found: pl.DataFrame, read: object) -> pl.DataFrame:
        return found.with_columns(
            code=pl.lit(None, pl.String),
            repair=pl.lit(None, pl.String),
            extra=pl.lit(None, pl.List(pl.String)),
        )

    monkeypatch.setattr(repair, "_repaired", strict)


def _old_corpus() -> list[Path]:
    suffixes = {".csv", ".tsv", ".xlsx", ".parquet", ".ndjson", ".jsonl"}
    return sorted(p for p in OLD_CORPUS.iterdir() if p.suffix in suffixes)


def _both(
    read: Callable[[], Intake], monkeypatch: pytest.MonkeyPatch
) -> tuple[Intake | type[ErasureError], Intake | type[ErasureError]]:
    def attempt() -> Intake | type[ErasureError]:
        try:
            return read()
        except ErasureError as exc:
            return type(exc)

    new = attempt()
    with monkeypatch.context() as m:
        _without_repairs(m)
        old = attempt()
    return old, new


def _assert_only_invalid_cells_became_valid(old: Intake, new: Intake) -> None:
    def pairs(d: Intake) -> set[tuple[object, ...]]:
        return set(d.items.select("request_id", "key").iter_rows())

    def cells(d: Intake) -> set[tuple[object, ...]]:
        return set(
            d.invalid.filter(pl.col("column").is_not_null()).select("row", "column").iter_rows()
        )

    assert pairs(old) <= pairs(new), "a key the strict rules computed changed or went"
    gained = pairs(new) - pairs(old)
    firsts = new.items.select("request_id", "key", "row").iter_rows()
    gained_rows = {row for request, key, row in firsts if (request, key) in gained}
    assert gained_rows <= {row for row, _ in cells(old)}, "a new identifier from a valid cell"
    assert cells(new) <= cells(old), "a cell the strict rules took is now refused"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("split", [False, True])
def test_no_key_an_earlier_release_computed_changes(
    corpus: tuple[Path, dict[str, Case]], name: str, split: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, cases = corpus
    old, new = _both(lambda: _read(folder, cases[name], split_addresses=split), monkeypatch)
    assert isinstance(old, Intake) and isinstance(new, Intake)
    _assert_only_invalid_cells_became_valid(old, new)
    assert new.counts.valid > old.counts.valid or not new.repair_counts()


@pytest.mark.parametrize("path", _old_corpus(), ids=lambda p: p.name)
def test_no_key_changes_over_the_older_corpus(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = _both(
        lambda: intake.read(_job(tmp_path, path, {}), Keyer(LEDGER_KEY.encode())), monkeypatch
    )
    if not isinstance(old, Intake):
        assert old == new  # a file the strict reading refused is refused the same way
        return
    assert isinstance(new, Intake)
    _assert_only_invalid_cells_became_valid(old, new)


def test_a_ledger_of_the_earlier_normalisation_is_accepted(
    write_job: Callable[..., Path],
    sandbox: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An n1 ledger is read and extended (not 78); an unknown normalisation still is 78."""
    from erasure.ledger import store

    monkeypatch.setenv("ALTCRAFT_TOKEN", sandbox.token)
    monkeypatch.setenv("ERASURE_LEDGER_KEY", LEDGER_KEY)
    e2e.emails_csv(tmp_path / "in.csv", range(3))
    job = e2e.job(write_job, sandbox.url)
    with monkeypatch.context() as m:
        m.setattr(store, "NORMALISATION_VERSION", "n1")
        assert 0 == e2e.run(job)
    (tmp_path / "in.csv").write_text("ticket,email\nT9,mailto:user9@example.com\n", "utf-8")
    assert 0 == cli.main(["validate", str(job)])
    assert 0 == e2e.run(job)
    assert 0 == cli.main(["verify", str(job)])
    assert 1 == sandbox.deletes()[sandbox.profiles[9].profile_id]
    with monkeypatch.context() as m:
        m.setattr(store, "NORMALISATIONS", ("n2",))
        assert 78 == cli.main(["validate", str(job)])
    assert "normalisation rules 'n1'" in capsys.readouterr().err


def test_split_cells_are_erased_one_identifier_each(
    corpus: tuple[Path, dict[str, Case]],
    write_job: Callable[..., Path],
    sandbox_factory: Callable[..., Sandbox],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The helpdesk export, run with split_addresses = true: each address of a cell deleted once."""
    folder, cases = corpus
    case = cases["helpdesk"]
    sandbox = sandbox_factory(generate_count=250)
    monkeypatch.setenv("ALTCRAFT_TOKEN", sandbox.token)
    monkeypatch.setenv("ERASURE_LEDGER_KEY", LEDGER_KEY)
    settings = {"path": str(folder / case.file), "split_addresses": True, **case.input}
    job = e2e.job(write_job, sandbox.url, input=settings)
    assert 1 == e2e.run(job)  # the garbage cells stay invalid
    by_email = {p.email: p.profile_id for p in sandbox.profiles}
    deletes = sandbox.deletes()
    for addresses in case.several:
        assert [1] * len(addresses) == [deletes.get(by_email[a], 0) for a in addresses]
