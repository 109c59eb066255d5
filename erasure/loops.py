"""The event loop a run uses (``erasure run`` and ``erasure sweep`` alike)."""

from __future__ import annotations

__all__ = ["loop_options"]


def loop_options() -> dict[str, bool]:
    """uvloop where it is installed: the event loop is a third of a request's CPU."""
    try:
        import uvloop  # noqa: F401
    except ImportError:  # pragma: no cover - Windows, or a trimmed install
        return {}
    return {"use_uvloop": True}
