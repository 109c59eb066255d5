"""Every event kind's detail is declared (erasure.ledger.details), and the SQL reads only that.

(a) every ``$.path`` in every SQL string of ``erasure/`` names a declared
field of a kind the query reads; (b) every event of the v1 fixture and of a
ledger made today by real commands decodes by its kind; (c) encode and
decode round-trip; verify names an event whose detail does not fit.
"""

from __future__ import annotations

import ast
import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest

from erasure import cli
from erasure import job as job_mod
from erasure import ledger as L
from erasure.errors import LedgerMismatch
from erasure.keys import Keyer, Role
from erasure.ledger import details as D
from tests import e2e
from tests.sandbox_fixture import Sandbox
from tests.test_notify import SECRET, Receiver

ROOT = Path(__file__).parent.parent / "erasure"
V1 = Path(__file__).parent / "fixtures" / "ledger_v1"

# ---------------------------------------------------------------- (a) the SQL's paths

# json_extract(COLUMN, '$.path'), json_each(COLUMN, '$.path') and state.py's _json("$.path")
_EXTRACT = re.compile(r"json_(?:extract|each)\(\s*([\w.]+)\s*,\s*'(\$[^']*)'\s*\)")
_TRIGGER_JSON = re.compile(r"""_json\(\s*["'](\$[^"']*)["']\s*\)""")
_KINDS = re.compile(r"\bkind\s*(?:=\s*'(\w+)'|IN\s*\(([^)]*)\))", re.IGNORECASE)
# columns of the derived state that hold one kind's detail (erasure.ledger.state)
_COLUMN_KINDS = {
    "started": {L.Kind.RUN_STARTED},
    "finished": {L.Kind.RUN_FINISHED},
}


def _sql_strings() -> Iterator[tuple[str, str]]:
    """(where, source text) of every string literal in erasure/ that holds a ``$.`` path.

    A string is the whole literal as written (implicit concatenation and
    f-strings included), so a query and its WHERE clause are read together.
    """
    for path in sorted(ROOT.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        inside: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                inside.update(id(v) for v in ast.walk(node) if v is not node)
        for node in ast.walk(tree):
            if id(node) in inside:
                continue
            if isinstance(node, ast.JoinedStr) or (
                isinstance(node, ast.Constant) and isinstance(node.value, str)
            ):
                text = ast.get_source_segment(source, node) or ""
                if "$." in text:
                    where = f"{path.relative_to(ROOT.parent)}:{node.lineno}"
                    yield where, text


def _paths(text: str) -> Iterator[tuple[str, str, set[L.Kind]]]:
    """(column, path, kinds the statement reads) of each JSON path, statement by statement."""
    for statement in re.split(r"CREATE TRIGGER", text):
        kinds = set()
        for one, many in _KINDS.findall(statement):
            names = [one] if one else re.findall(r"'(\w+)'", many)
            kinds |= {L.Kind(n) for n in names if n in L.Kind.__members__.values()}
        for column, path in _EXTRACT.findall(statement):
            yield column, path, kinds
        for path in _TRIGGER_JSON.findall(statement):
            yield "NEW.detail", path, kinds


def _walk(tp: Any, parts: list[str], name: str = "") -> bool:
    """Whether the dotted ``parts`` name a field of declared type ``tp`` (and so on down).

    Below a mapping: ``settings`` is the job's own (Job.settings(), so a real
    job's keys); another mapping's keys are not declared (any name).
    """
    if not parts:
        return True
    tp = _unoptional(tp)
    if get_origin(tp) is dict:
        if name == "settings":
            return len(parts) == 1 and parts[0] in _SETTINGS
        return len(parts) == 1 or get_args(tp)[1] is Any
    if not isinstance(tp, type) or not hasattr(tp, "__dataclass_fields__"):
        return False
    fields = D.field_names(tp)
    return parts[0] in fields and _walk(fields[parts[0]], parts[1:], parts[0])


def _unoptional(tp: Any) -> Any:
    args = [a for a in get_args(tp) if a is not type(None)]
    return args[0] if len(args) == 1 and type(None) in get_args(tp) else tp


_SETTINGS: set[str] = set()


def _kinds_for(column: str, kinds: set[L.Kind]) -> set[L.Kind]:
    name = column.split(".")[-1]
    if name in _COLUMN_KINDS:
        return _COLUMN_KINDS[name]
    return kinds


def test_every_json_path_in_the_sql_names_a_declared_field_of_a_kind_it_reads(
    write_job: Callable[..., Path],
) -> None:
    _SETTINGS.update(job_mod.load(write_job()).settings())
    checked = 0
    wrong = []
    for where, text in _sql_strings():
        for column, path, kinds in _paths(text):
            parts = path[2:].split(".")
            candidates = _kinds_for(column, kinds)
            if not candidates:
                wrong.append(
                    f"{where}: {path}: the query names no kind (nor reads a column of one)"
                )
                continue
            types = [D.TYPES[k] for k in candidates if D.TYPES[k] is not None]
            if not any(_walk(t, parts) for t in types):
                names = sorted(k.value for k in candidates)
                wrong.append(f"{where}: {path} is no field of the detail of {names}")
            checked += 1
    assert not wrong, "\n".join(wrong)
    assert checked >= 30  # the scan finds the SQL (a regex that found nothing would pass)


def test_a_renamed_field_is_caught_by_the_scan(write_job: Callable[..., Path]) -> None:
    """The check above can fail: a query reading a name no detail declares is named."""
    _SETTINGS.update(job_mod.load(write_job()).settings())
    renamed = "SELECT json_extract(detail, '$.idempotency') FROM events WHERE kind = 'notice'"
    ((_, path, kinds),) = list(_paths(renamed))
    assert kinds == {L.Kind.NOTICE}
    assert not _walk(D.TYPES[L.Kind.NOTICE], path[2:].split("."))
    # a field of another kind does not count for a query that names its kind
    other = "SELECT json_extract(detail, '$.words') FROM events WHERE kind = 'resolved'"
    ((_, path, kinds),) = list(_paths(other))
    assert not any(_walk(D.TYPES[k], path[2:].split(".")) for k in kinds)
    assert _walk(D.TYPES[L.Kind.INVALID], ["words"])
    # nested: the run's input is declared down to its fields, settings by the job's keys
    assert _walk(D.RunStartedDetail, ["input", "sha256"])
    assert not _walk(D.RunStartedDetail, ["input", "sha"])
    assert _walk(D.RunStartedDetail, ["settings", "deadline_days"])
    assert not _walk(D.RunStartedDetail, ["settings", "deadline_dayz"])


# ---------------------------------------------------------------- (b) real ledgers decode


def _decode_all(path: Path) -> dict[L.Kind, int]:
    """Decode every event of the ledger at ``path`` by its kind; how many of each kind."""
    seen: dict[L.Kind, int] = {}
    with closing(sqlite3.connect(path)) as db:
        for seq, kind, detail in db.execute("SELECT seq, kind, detail FROM events ORDER BY seq"):
            try:
                decoded = D.decode(kind, detail)
            except D.DetailError as exc:
                raise AssertionError(f"{path.name} event {seq} ({kind}): {exc}") from None
            if decoded is not None:
                # what decodes encodes again, and decodes to the same value
                assert D.decode(kind, D.encode(decoded)) == decoded
            seen[L.Kind(kind)] = seen.get(L.Kind(kind), 0) + 1
    return seen


def test_every_event_of_the_v1_fixture_decodes_by_its_kind() -> None:
    seen = _decode_all(V1 / "ledger.sqlite")
    seen_archive = _decode_all(V1 / "archive.sqlite")
    kinds = set(seen) | set(seen_archive)
    assert {L.Kind.CREATED, L.Kind.INVALID, L.Kind.RESOLVED, L.Kind.REAPPEARED} <= kinds
    assert {L.Kind.ARCHIVED, L.Kind.RUN_STARTED, L.Kind.RUN_FINISHED} <= kinds


def test_the_v1_fixtures_details_encode_to_their_own_bytes() -> None:
    """0.1.0's writers and today's encode agree byte for byte where the shape is unchanged."""
    with closing(sqlite3.connect(V1 / "archive.sqlite")) as db:
        rows = db.execute(
            "SELECT kind, detail FROM events WHERE kind IN ('created', 'invalid', 'run_started')"
        ).fetchall()
    assert rows
    for kind, detail in rows:
        assert D.encode(D.decode(kind, detail)) == detail  # type: ignore[arg-type]


def test_a_ledger_made_today_by_every_command_decodes_by_its_kind(
    sandbox_factory: Callable[..., Sandbox],
    write_job: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Runs with invalid records, holds, a cancellation, an extension, suppression,
    notices, a sweep and an archive: every event decodes, and verify holds."""
    monkeypatch.setenv("ERASURE_NOTIFY_SECRET", SECRET)
    receiver = Receiver()
    try:
        sandbox = sandbox_factory(generate_count=20)
        _make_ledger(sandbox, write_job, tmp_path, receiver.url)
    finally:
        receiver.stop()
    seen = _decode_all(tmp_path / "ledger.sqlite")
    archived = _decode_all(tmp_path / "archive.sqlite")
    kinds = set(seen) | set(archived)
    # no fault, no stop, no [approval]: no attempt or withdrawn (they carry no detail), no
    # approval or policy (their writers' tests make them; SAMPLES round-trip them)
    wanted = set(L.Kind) - {L.Kind.ATTEMPT, L.Kind.WITHDRAWN, L.Kind.APPROVAL, L.Kind.POLICY}
    assert wanted <= kinds, sorted(wanted - kinds)
    assert receiver.accepted  # the notices went out, and their events decoded
    job = str(tmp_path / "job.toml")
    assert 0 == cli.main(["verify", job, "--archive", str(tmp_path / "archive.sqlite")])


def _make_ledger(sandbox: Sandbox, write_job: Callable[..., Path], tmp: Path, hook: str) -> None:
    today = datetime.now(UTC).date().isoformat()
    (tmp / "in.csv").write_text(
        "ticket,email,received_at\n"
        + "".join(f"T{i},user{i}@example.com,{today}\n" for i in range(1, 5))
        + f"T7,not-an-email,{today}\nT8,,{today}\n",
        encoding="utf-8",
    )
    job = e2e.job(
        write_job,
        sandbox.url,
        input={"received_at_column": "received_at", "extension_max": "10 days"},
        sweep={"db_id": 1, "profile_id_column": "_id", "columns": {"email": "email"}},
        suppress={"email_list_id": 7},
        notify={"url": hook, "max_attempts": 1},
    )
    assert job == tmp / "job.toml"
    assert 1 == e2e.run(job)  # the invalid rows
    hold = ["hold", str(job), "--email", "user10@example.com", "--reason", "litigation"]
    assert 0 == cli.main([*hold, "--until", (datetime.now(UTC) + timedelta(days=30)).isoformat()])
    assert 0 == cli.main(
        ["cancel", str(job), "--request-id", "T11", "--reason", "dup", "--before-received"]
    )
    (tmp / "in2.csv").write_text(
        "ticket,email,received_at\n"
        f"T7,user7@example.com,{today}\nT10,user10@example.com,{today}\n"
        f"T11,user11@example.com,{today}\n",
        encoding="utf-8",
    )
    assert e2e.run(job, "--input", str(tmp / "in2.csv")) in (0, 1)
    assert 0 == cli.main(
        ["release", str(job), "--email", "user10@example.com", "--reason", "settled"]
    )
    assert 0 == cli.main(["reopen", str(job), "--request-id", "T11", "--reason", "not a dup"])
    told = datetime.now(UTC).isoformat()
    extend = ["extend", str(job), "--request-id", "T1", "--by", "5 days", "--informed-at", told]
    assert 0 == cli.main([*extend, "--reason", "busy"])
    sandbox.restore(last=1)
    sandbox.export(tmp / "export.csv")
    assert cli.main(["sweep", str(job), "--export", str(tmp / "export.csv")]) in (0, 1)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    out = str(tmp / "archive.sqlite")
    assert 0 == cli.main(["archive", str(job), "--before", tomorrow, "--out", out])
    assert e2e.run(job, "--input", str(tmp / "in2.csv")) in (0, 1)  # after the archive


# ---------------------------------------------------------------- (c) round trip


SAMPLES: list[D.Detail] = [
    D.CreatedDetail("1", "n2", "d2", "abcd", canonical="1"),
    D.InvalidDetail("f" * 64, 12, None, "no_identifier", "no identifier in 'é'"),
    D.ResolvedDetail("f" * 64, 2, "email", (3, 4)),
    D.ReappearedDetail("profile_id", "deleted", 32, "k" * 32),
    D.ReappearedDetail("identifier", "listed", 33),
    D.HoldDetail("id1", "litigation", "me@host", "2026-12-04T00:00:00+00:00", "email"),
    D.ReleaseDetail("id2", "over", "erasure", "2026-12-04T00:00:00+00:00", expired=True),
    D.CancelDetail("id3", "dup", "me@host", "2026-12-04T00:00:00+00:00", before_received=True),
    D.ReopenDetail("id4", "no", "me@host", "2026-12-04T00:00:00+00:00"),
    D.DecisionOutcome("held", 3),
    D.DecisionOutcome("open"),
    D.PolicyDetail({"required": True, "needed": 1, "approvers": ["a"], "planner": None}, False),
    D.ApprovalDetail("run", "s" * 64, "2026-12-04", "2026-12-05", ("p",), ("a", "b"), 10, 4),
    D.SuppressionDetail(7, "added", batch={"total_count": 2}),
    D.SuppressionDetail(7, "failed", reason="http_500"),
    D.NoticeDetail("queued", "idem", body='{"a": 1}'),
    D.NoticeDetail("delivered", "idem", attempt=1, reason="ok", queued_seq=9),
    D.ExtendedDetail(
        "2026-12-30", "2026-12-30", "2027-01-04", "5 days", "30 days", "UTC", "x", "busy", "me"
    ),
    D.RunStartedDetail(
        {"deadline_days": 30},
        D.RunInput("/in.csv", "f" * 64, 3, invalid=0, account={"rows": 3}, carried=()),
        D.PlanCounts(3, 3, 0, 0, held=1),
    ),
    D.RunStartedDetail(
        {}, D.RunInput("e.csv", "f" * 64, 1, rejected=0), D.PlanCounts(1, 1, 0, 0), "sweep"
    ),
]


@pytest.mark.parametrize("detail", SAMPLES, ids=lambda d: type(d).__name__)
def test_encode_then_decode_is_the_same_detail(detail: D.Detail) -> None:
    text = D.encode(detail)
    assert D.decode(D.KIND_OF[type(detail)], text) == detail
    assert text == json.dumps(json.loads(text), sort_keys=True, ensure_ascii=False)


def test_fields_left_at_their_default_are_left_out_as_the_writers_always_did() -> None:
    assert "until" not in json.loads(D.encode(SAMPLES[5]))
    assert "delete_key" not in json.loads(D.encode(SAMPLES[4]))
    assert json.loads(D.encode(SAMPLES[10])) == {"decision": "open"}
    # a value that is None but declared always written stays, as null
    assert json.loads(D.encode(SAMPLES[1]))["column"] is None


@pytest.mark.parametrize(
    ("kind", "text", "words"),
    [
        ("invalid", '{"input": "f", "row": "12", "column": null, "reason": "r", "words": "w"}',
         "row must be an integer"),
        ("invalid", '{"input": "f", "row": 12, "column": null, "reason": "r"}', "words is missing"),
        ("run_finished", '{"exit_code": true}', "is missing"),
        ("resolved", '{"input": "f", "row": 1, "column": null, "resolves": [1, "2"]}',
         "resolves[1] must be an integer"),
        ("notice", '{"status": "lost", "idempotency_key": "k"}', "status must be one of"),
        ("reappeared", "[]", "must be an object"),
        ("suppression", "not json", "not JSON"),
        ("planned", "{}", "carries no detail"),
        ("run_started", None, "must carry a detail"),
        ("outcome", '{"decision": "erased"}', "decision must be one of"),
    ],
)  # fmt: skip
def test_a_detail_that_does_not_fit_its_kind_is_named(kind: str, text: str, words: str) -> None:
    with pytest.raises(D.DetailError, match=re.escape(words)):
        D.decode(kind, text)


def test_an_unknown_key_of_an_older_or_newer_ledger_is_ignored_but_a_writer_cannot_make_one() -> (
    None
):
    text = '{"decision": "held", "run": 2, "from_a_later_release": [1]}'
    assert D.decode("outcome", text) == D.DecisionOutcome("held", 2)
    with pytest.raises(D.DetailError, match="from_a_later_release is not a field"):
        D.build(D.DecisionOutcome, json.loads(text))
    with pytest.raises(TypeError):
        D.HoldDetail(id="i", reason="r", who="w", at="a", selektor="x")  # type: ignore[call-arg]
    with pytest.raises(D.DetailError, match="row must be an integer"):
        D.encode(D.InvalidDetail("f", "12", None, "r", "w"))  # type: ignore[arg-type]


def test_every_kind_has_its_detail_declared() -> None:
    assert set(D.TYPES) == set(L.Kind)
    assert all(D.KIND_OF[t] is k for k, t in D.TYPES.items() if t is not None)


# ---------------------------------------------------------------- verify


def test_verify_names_the_first_event_whose_detail_does_not_fit_its_kind(
    write_job: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A detail forged with a valid chain (the writer chains what it is given): verify says 1."""
    job = write_job()
    keyer = job_mod.load(job).keyer(Role.CHAIN, command="test")
    path = tmp_path / "ledger.sqlite"
    good = D.encode(D.InvalidDetail("f" * 64, 3, "email", "email_invalid", "no @"))
    bad = good.replace('"row": 3', '"row": "3"')
    started = D.encode(
        D.RunStartedDetail({}, D.RunInput("in.csv", "f" * 64, 1), D.PlanCounts(0, 0, 0, 0))
    )
    with L.Ledger(path, keyer) as led:
        led.append([L.Event(L.Kind.RUN_STARTED, 1, detail=started)])
        led.append([L.Event(L.Kind.INVALID, 1, request_id="T1", detail=good)])
    assert 0 == cli.main(["verify", str(job)])
    with L.Ledger(path, keyer) as led:
        led.append([L.Event(L.Kind.INVALID, 1, request_id="T2", detail=bad)])
        led.append([L.Event(L.Kind.INVALID, 1, request_id="T3", detail=bad)])
    check = L.verify(path, keyer)
    assert not check.ok
    assert check.problem is not None and "event 4 (invalid, run 1)" in check.problem
    assert "row must be an integer" in check.problem
    capsys.readouterr()
    assert 1 == cli.main(["verify", str(job)])
    assert "ledger BROKEN: event 4 (invalid, run 1)" in capsys.readouterr().out


# ---------------------------------------------------------------- the canonical encoding's version


def test_a_new_ledger_names_its_canonical_encoding_and_an_old_one_is_version_1(
    tmp_path: Path,
) -> None:
    keyer = Keyer(b"k" * 32)
    with L.Ledger(tmp_path / "l.sqlite", keyer) as led:
        meta = L.read_meta(led.connection)
        (created,) = led.connection.execute("SELECT detail FROM events WHERE seq = 1").fetchone()
    assert meta["canonical"] == "1"
    assert D.decode("created", created) == D.CreatedDetail(**meta)
    assert L.canonical_of(meta) is L.canonical_v1
    with closing(sqlite3.connect(V1 / "ledger.sqlite")) as db:
        assert "canonical" not in L.read_meta(db)  # release 0.1.0 wrote none: version 1
        assert L.canonical_of(L.read_meta(db)) is L.canonical_v1
    with pytest.raises(LedgerMismatch, match="written by a newer release"):
        L.canonical_of({"canonical": "2"})


def test_a_ledger_of_an_unknown_canonical_encoding_is_refused_by_run_status_and_verify(
    write_job: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = write_job()
    (tmp_path / "in.csv").write_text("email\nuser1@example.com\n", encoding="utf-8")
    keyer = job_mod.load(job).keyer(Role.CHAIN, command="test")
    with L.Ledger(tmp_path / "ledger.sqlite", keyer):
        pass
    assert 0 == cli.main(["verify", str(job)])
    with closing(sqlite3.connect(tmp_path / "ledger.sqlite")) as db:
        db.execute("DROP TRIGGER meta_no_update")
        db.execute("UPDATE meta SET value = '2' WHERE name = 'canonical'")
        db.commit()
    for command in (["run", str(job), "--no-progress"], ["status", str(job)], ["verify", str(job)]):
        capsys.readouterr()
        assert 78 == cli.main(command), command
        err = capsys.readouterr().err
        assert "written by a newer release" in err and "canonical encoding '2'" in err
        assert len(err.strip().splitlines()) == 1, err


def test_details_of_earlier_writers_decode_with_their_defaults() -> None:
    """An approval of the first weeks named no run; 0.1.0's run end had no suppression counts."""
    approval = {
        "command": "run", "plan_sha256": "s", "made_at": "m", "expires_at": "e",
        "planner": ["p"], "approvers": ["a"], "pairs": 3,
    }  # fmt: skip
    decoded = D.decode("approval", json.dumps(approval))
    assert isinstance(decoded, D.ApprovalDetail) and decoded.run is None
    with closing(sqlite3.connect(V1 / "ledger.sqlite")) as db:
        (text,) = db.execute("SELECT detail FROM events WHERE kind = 'run_finished'").fetchone()
    finished = D.decode("run_finished", text)
    assert isinstance(finished, D.RunFinishedDetail)
    assert (finished.suppressed, finished.held_back, finished.open_elsewhere) == (0, 0, 0)


# Where a detail may still be parsed as plain JSON, and why: verify compares the
# created event's meta and an archive record's members as they were written;
# the decisions queue is a file of events not yet in the ledger (a torn line
# reads as no id); a run's start and end are shown as recorded (read.recorded).
_PLAIN_READERS = {"ledger/verify.py", "ledger/pending.py", "ledger/read.py"}


def test_readers_take_details_apart_by_their_declared_types() -> None:
    """A module that reads the ledger uses details.loads(Type, text), not json.loads(detail):
    by attribute, mypy holds each read to the declaration (a renamed key no longer reads as
    None through .get())."""
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted(ROOT.rglob("*.py"))
        if str(path.relative_to(ROOT)) not in _PLAIN_READERS | {"ledger/details.py"}
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"json\.loads\([^)]*detail", line)
    ]
    assert found == []


def test_a_reader_meeting_a_detail_that_does_not_fit_says_so_in_one_line(
    write_job: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """status reads each extension through its type: one appended without the fields extend
    writes is 78 in one line naming the verify command to paste (the job given), no traceback;
    verify names the event."""
    from erasure import cli
    from erasure import job as job_mod
    from erasure.keys import Role

    job = write_job()
    loaded = job_mod.load(job)
    with L.Ledger(loaded.ledger.path, loaded.keyer(Role.CHAIN)) as led:
        bare = L.Event(L.Kind.EXTENDED, 0, request_id="T1", detail='{"extended_to": "2027-01-01"}')
        led.append([bare])
    capsys.readouterr()
    assert cli.main(["status", str(job)]) == 78
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ExtendedDetail" in err[0] and f"`erasure verify {job}`" in err[0]
    assert cli.main(["verify", str(job)]) == 1
    assert "(extended, run 0) has a detail that does not fit" in capsys.readouterr().out
