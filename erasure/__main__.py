"""``python -m erasure``."""

from __future__ import annotations

from erasure.cli import main

raise SystemExit(main())
