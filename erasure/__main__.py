"""``python -m erasure``."""

from __future__ import annotations

from erasure.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
