"""The run: plan the work, then send it under a rate ceiling and record every answer.

::

    plan.make(items, finished, doubtful) -> Plan       pending = planned - finished
    Runner(job, plan, ledger, run, token, Options)      feeder -> hopper -> N workers -> writer
      preflight                                         one made-up delete proves the job
      retry.decide(verdict, attempt, Backoff)           finish, wait, or stop: pure
    Summary -> finish_event, exit_code()                what the run did
    execute(job, plan, ledger, run, token, Options)     all of the above, as run and sweep do it

The public face of the package is what this module exports.
"""

from erasure.run.execute import execute
from erasure.run.hopper import Hopper, WorkItem
from erasure.run.options import RECORD_ON_STOP_MAX, Options
from erasure.run.plan import Plan, make_plan
from erasure.run.retry import Backoff, Decision, Finish, GaveUp, Stop, Wait, decide
from erasure.run.runner import Runner
from erasure.run.summary import StopReason, Summary, finish_event
from erasure.run.writer import WRITER_BATCH, Writer

__all__ = [
    "RECORD_ON_STOP_MAX",
    "WRITER_BATCH",
    "Backoff",
    "Decision",
    "Finish",
    "GaveUp",
    "Hopper",
    "Options",
    "Plan",
    "Runner",
    "Stop",
    "StopReason",
    "Summary",
    "Wait",
    "WorkItem",
    "Writer",
    "decide",
    "execute",
    "finish_event",
    "make_plan",
]
