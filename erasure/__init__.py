"""erasure: bulk, resumable, provable erasure of personal data from Altcraft."""

from __future__ import annotations

__version__ = "0.1.0"
