"""After the delete: receipts from the ledger, import screening, the resurrection sweep.

::

    receipt.build(job, request_id) -> SignedReceipt   erasure receipt (chain checked first)
    receipt.write(signed, out, perms) -> Path         .json or .html
    receipt.check_file(path, public_key, job) -> CheckResult   erasure check-receipt
    screen.screen(job, input, out) -> ScreenResult    erasure screen
    sweep.sweep(job, export, ...) -> SweepResult      erasure sweep
    ledger.reappeared.reappeared(db) -> polars frame  for status and reports (no network code)

Modules import polars and the ledger; :mod:`erasure.cli` loads them only
for the commands that need them.
"""
