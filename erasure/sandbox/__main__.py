"""``python -m erasure.sandbox``: the same switches as ``erasure sandbox``."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from erasure.errors import ErasureError, ExitCode
from erasure.sandbox.cli import DESCRIPTION, add_arguments, run


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """A bad command line exits 64 (sysexits), as every erasure command does."""
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(ExitCode.USAGE)


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m erasure.sandbox", description=DESCRIPTION)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except ErasureError as exc:
        print(f"erasure sandbox: {exc}", file=sys.stderr)
        return int(exc.exit_code)


if __name__ == "__main__":
    raise SystemExit(main())
