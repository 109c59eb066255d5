"""Shared helpers of the benchmark scripts: the sandbox, jobs, measured processes, tables.

- :class:`Sandbox`: ``python -m erasure.sandbox --port 0 ...`` as a subprocess
  pinned to one core (``taskset``), with ``--record-times`` so that each
  measurement reads the arrivals inside its own time window
  (:meth:`Sandbox.arrivals`) and several clients can share one server;
- :func:`write_emails`, :func:`write_job`: request files and job files in a
  temporary folder;
- :func:`measure`: run a command pinned to a core; wall time, CPU time and
  peak RSS of that one child (``os.wait4``), its stdout and stderr;
- :func:`rate`: deletes per second from arrival times;
- :func:`table`, :func:`met`, :func:`shown`: Markdown output.

Everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHON = sys.executable
LEDGER_KEY = "bench-ledger-key-0123456789abcdef"
TOKEN = "sandbox-token"  # the sandbox's default delete token
SANDBOX_CPU = 1  # the sandbox's core
CLIENT_CPU = 0  # erasure's (and every other client's) core
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def pin(cpu: int | None) -> list[str]:
    """``taskset -c CPU`` when the core exists and taskset is installed, else nothing."""
    if cpu is None or shutil.which("taskset") is None or cpu not in os.sched_getaffinity(0):
        return []
    return ["taskset", "-c", str(cpu)]


def bench_env(**extra: str) -> dict[str, str]:
    """The environment of every child: secrets for the sandbox, no proxies."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k.upper() not in {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"}
    }
    env.update(ALTCRAFT_TOKEN=TOKEN, ERASURE_LEDGER_KEY=LEDGER_KEY, PYTHONPATH=str(ROOT))
    env.update(extra)
    return env


def load() -> str:
    """The 1-minute load average (other work on the machine lowers every figure)."""
    return Path("/proc/loadavg").read_text().split()[0]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process so far, seconds (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    """Resident memory of a live process now, MiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# ---------------------------------------------------------------- the sandbox


class Sandbox:
    """The sandbox as a subprocess on its own core, in a ``with`` block.

    ``args`` are extra sandbox switches (``--latency-ms 50``). Arrival times
    are always recorded, so that :meth:`arrivals` can cut one measurement's
    requests out of a server several measurements share.
    """

    def __init__(
        self, *args: str, cpu: int | None = SANDBOX_CPU, generate: int = 1000, record: bool = True
    ) -> None:
        sandbox = [PYTHON, "-m", "erasure.sandbox", "--port", "0", "--generate", str(generate)]
        self.command = [*pin(cpu), *sandbox, *(("--record-times",) if record else ()), *args]
        self.url = ""
        self.process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Sandbox:
        self.process = subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
            env=bench_env(),
        )
        lines: list[str] = []
        stdout = self.process.stdout
        assert stdout is not None
        reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(60)
        first = lines[0].strip() if lines else ""
        if not first.startswith("listening on http://127.0.0.1:"):
            self.__exit__()
            raise SystemExit(f"the sandbox did not start: {first!r} ({shlex.join(self.command)})")
        self.url = first.removeprefix("listening on ")
        return self

    def __exit__(self, *exc: object) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()
        self.process = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stats(self, per_profile: bool = False) -> dict[str, Any]:
        """``GET /__sandbox/stats`` (erasure/sandbox/stats.py describes it)."""
        query = "" if per_profile else "?per_profile=0"
        with _NO_PROXY.open(f"{self.url}/__sandbox/stats{query}", timeout=60) as answer:
            result: dict[str, Any] = json.load(answer)
        return result

    def arrivals(self, since: float, until: float = float("inf")) -> list[float]:
        """Epoch seconds of the delete requests that arrived in ``[since, until]``."""
        times = self.stats().get("request_times", [])
        return sorted(t for t in times if since <= t <= until)

    def cpu_s(self) -> float:
        return cpu_seconds(self.pid)


# ---------------------------------------------------------------- files


def write_emails(path: Path, count: int, *, start: int = 0, header: str = "email") -> Path:
    """A request file of ``count`` emails no sandbox profile has (answered not found).

    ``nobody{i}@example.org`` for i in ``start .. start + count``; written in
    chunks, so that 10,000,000 rows take seconds and little memory.
    """
    step = 200_000
    with path.open("w", encoding="utf-8") as f:
        f.write(header + "\n")
        for lo in range(start, start + count, step):
            hi = min(lo + step, start + count)
            f.write("".join(f"nobody{i}@example.org\n" for i in range(lo, hi)))
    return path


def write_job(
    folder: Path,
    url: str,
    *,
    name: str = "job.toml",
    input_path: str = "in.csv",
    ledger: str = "ledger.sqlite",
    concurrency: int = 64,
    rate_per_s: float = 1_000_000,
    preflight: bool = True,
    timeout_s: float = 10,
) -> Path:
    """A job for the sandbox at ``url``: emails of database 1, secrets from the environment."""
    path = folder / name
    path.write_text(
        f'[api]\nbase_url = "{url}"\ntimeout_s = {timeout_s}\n'
        f'[input]\npath = "{input_path}"\ndb_id = 1\n'
        f"[run]\nconcurrency = {concurrency}\nrate_per_s = {rate_per_s}\n"
        f"max_attempts = 8\npreflight = {'true' if preflight else 'false'}\n"
        f'[ledger]\npath = "{ledger}"\n',
        encoding="utf-8",
    )
    return path


def erasure_run(job: Path, *args: str) -> list[str]:
    """The command line of ``erasure run JOB`` with JSON logs and no bar."""
    return [
        PYTHON,
        "-m",
        "erasure",
        "run",
        str(job),
        "--no-progress",
        "--log-format",
        "json",
        *args,
    ]


# ---------------------------------------------------------------- measured processes


@dataclass(slots=True)
class Measured:
    """One finished child process."""

    command: list[str]
    returncode: int
    started_at: float  # epoch seconds, just before the fork
    wall_s: float  # seconds from the fork to the exit
    cpu_s: float  # user + system seconds of the child (and of its waited-for children)
    maxrss_mib: float  # peak resident memory of the child, MiB (ru_maxrss)
    stdout: str
    stderr: str

    def check(self, *ok: int) -> Measured:
        if self.returncode not in (ok or (0,)):
            tail = "\n".join(self.stderr.strip().splitlines()[-15:])
            raise SystemExit(f"{shlex.join(self.command)} exited {self.returncode}:\n{tail}")
        return self

    def event(self, name: str) -> dict[str, Any] | None:
        """The last JSON log line on stderr with ``event == name``."""
        found = None
        for line in self.stderr.splitlines():
            if line.startswith("{") and f'"{name}"' in line:
                try:
                    found = json.loads(line)
                except ValueError:
                    continue
        return found


def measure(
    command: Sequence[str],
    *,
    cpu: int | None = CLIENT_CPU,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
    timeout_s: float = 600,
    on_start: Any = None,
) -> Measured:
    """Run ``command`` (pinned to ``cpu``) to its end; its own rusage via ``os.wait4``.

    ``on_start(popen)`` is called right after the fork (a watcher may signal
    the child). The child is killed after ``timeout_s`` seconds.
    """
    full = [*pin(cpu), *command]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started_at = time.time()
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            full, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=cwd, env=env or bench_env()
        )
        timer = threading.Timer(timeout_s, proc.kill)
        timer.start()
        try:
            if on_start is not None:
                on_start(proc)
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Measured(
            command=full,
            returncode=proc.returncode,
            started_at=started_at,
            wall_s=wall,
            cpu_s=usage.ru_utime + usage.ru_stime,
            maxrss_mib=usage.ru_maxrss / 1024,
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
        )


# ---------------------------------------------------------------- figures


def rate(arrivals: Sequence[float], count: int | None = None) -> float:
    """Requests per second: ``count`` (default: the arrivals) over first to last arrival."""
    if len(arrivals) < 2:
        return 0.0
    span = arrivals[-1] - arrivals[0]
    return (len(arrivals) if count is None else count) / span if span > 0 else 0.0


def worst_window(arrivals: Sequence[float], window_s: float = 1.0) -> int:
    """The most arrivals in any half-open window ``[t, t + window_s)`` (sliding)."""
    best = lo = 0
    for hi, t in enumerate(arrivals):
        while arrivals[lo] <= t - window_s:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**no**")


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def shown(command: Sequence[str] | str, **names: str) -> str:
    """A command for the table: the interpreter as ``python``, paths by their ``$NAME``."""
    text = command if isinstance(command, str) else shlex.join(command)
    text = text.replace(PYTHON, "python").replace(str(ROOT) + "/", "")
    for name, value in sorted(names.items(), key=lambda kv: -len(kv[1])):
        if value:
            text = text.replace(value, f"${name}")
    return re.sub(r"\s+", " ", text)


def heading(title: str, text: str) -> None:
    print(f"### {title}\n")
    print(text.strip() + "\n")


# ---------------------------------------------------------------- erasure in-process


def loop_options() -> dict[str, Any]:
    """The event loop ``erasure run`` uses (``app.loop_options``: uvloop when installed)."""
    from erasure import app

    return dict(app.loop_options())


def loop_name() -> str:
    return "uvloop" if loop_options().get("use_uvloop") else "asyncio"


class NullLedger:
    """A stand-in for :class:`erasure.ledger.Ledger` whose ``append`` keeps nothing.

    Recording switched off, for the ledger's cost: the runner still builds its
    events and hands each batch to the writer task, which passes it to a
    worker thread as before; only SQLite (the HMAC chain, the inserts, the
    commit with ``synchronous=FULL``) is left out.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, events: Sequence[Any]) -> None:
        return None


def run_in_process(job_path: str, *, record: bool, work_limit: int | None = None) -> dict[str, Any]:
    """``erasure run`` assembled as ``erasure.app.run`` does, in this process.

    ``record=False`` gives the runner a :class:`NullLedger` and a plan made as
    for a fresh ledger (nothing finished, nothing in doubt), which is what
    ``app.run`` computes for the first run of a job. ``work_limit`` keeps
    only the first rows of the plan's work (the whole plan is made first).
    Returns the run's summary, its peak RSS, timings and the run's CPU time.
    """
    import resource

    import anyio

    from erasure import intake, logs
    from erasure import job as job_mod
    from erasure import ledger as ledger_mod
    from erasure import run as runner

    t0 = time.perf_counter()
    logs.configure("json")
    job = job_mod.load(job_path)
    keyer = job.keyer()
    token = job.token()
    data = intake.read(job, keyer)
    t_intake = time.perf_counter()
    info = {
        "path": str(data.path),
        "sha256": data.sha256,
        "rows": data.counts.rows,
        "invalid": data.counts.invalid,
    }
    options = runner.Options(install_signal_handlers=False)

    def trim(plan: Any) -> Any:
        if work_limit is None:
            return plan
        return dataclasses.replace(plan, work=plan.work.head(work_limit))

    if record:
        with ledger_mod.Ledger(job.ledger.path, keyer) as ledger:
            db = ledger.connection
            plan = runner.make_plan(
                data.items, ledger_mod.finished_pairs(db), ledger_mod.doubtful_keys(db)
            )
            t_plan = time.perf_counter()
            run_no = ledger.next_run()
            r = runner.Runner(job, trim(plan), ledger, run_no, token, options, input_info=info)
            c0 = time.process_time()
            summary = anyio.run(r.execute, backend_options=loop_options())
            run_cpu = time.process_time() - c0
            ledger.append([runner.finish_event(run_no, summary, summary.exit_code())])
    else:
        import polars as pl

        empty = pl.DataFrame(
            schema={"request_id": pl.String, "key": pl.String, "outcome": pl.String}
        )
        plan = runner.make_plan(data.items, empty, set())
        t_plan = time.perf_counter()
        null: Any = NullLedger(job.ledger.path)
        r = runner.Runner(job, trim(plan), null, 1, token, options, input_info=info)
        c0 = time.process_time()
        summary = anyio.run(r.execute, backend_options=loop_options())
        run_cpu = time.process_time() - c0
    return {
        **summary.as_dict(),
        "exit_code": int(summary.exit_code()),
        "intake_s": t_intake - t0,
        "plan_s": t_plan - t_intake,
        "total_s": time.perf_counter() - t0,
        "run_cpu_s": run_cpu,  # CPU seconds of the run itself, every thread of the process
        "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def rss_mib_self() -> float:
    """Resident memory of this process now, MiB."""
    return rss_mib(os.getpid())
