"""``[act]``: the fields of the destruction act (``erasure act``; 152-FZ, RKN Order No. 179).

Declared with the job schema (:mod:`erasure.job.schema`). Every key but
``language`` and ``article`` is required by ``erasure act``, which names the
first one missing (78, :func:`erasure.act.content.fields`); no other command
refuses a job for them.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, Self

from erasure.job.schema import Given, fail, key

ActLanguage = Literal["ru", "en"]
_ACT = ("act",)


def _texts(value: tuple[str, ...]) -> str | None:
    return None if value and all(v.strip() for v in value) else "must list non-empty texts"


@dataclasses.dataclass(frozen=True, slots=True)
class Act:
    """``[act]``: who destroyed what, where, and why, as the act and its extract say."""

    operator: str | None = key(
        None, "the operator: name, tax id, address (required by act)", commands=_ACT
    )
    processor: str | None = key(
        None,
        "the processor acting on the operator's instructions, with its address (required by act)",
        commands=_ACT,
    )
    system: str | None = key(None, "the information system (required by act)", commands=_ACT)
    categories: tuple[str, ...] | None = key(
        None,
        "the categories of data the profiles held (required by act)",
        commands=_ACT,
        check=_texts,
    )
    commission: tuple[str, ...] | None = key(
        None,
        "who destroyed the data, a signature line each: name, role (required by act)",
        commands=_ACT,
        check=_texts,
    )
    language: ActLanguage = key("ru", "the act's language", commands=_ACT)
    article: str | None = key(
        None,
        "the legal ground printed with the reason",
        commands=_ACT,
        shown="152-FZ Art. 14, 20 and 21",
    )

    def finish(self, given: Given) -> Self:
        def strip(value: str | None) -> str | None:
            return value.strip() or None if value is not None else None

        if self.categories is not None and len(set(self.categories)) != len(self.categories):
            raise fail("act.categories lists a category twice")
        return dataclasses.replace(
            self,
            operator=strip(self.operator),
            processor=strip(self.processor),
            system=strip(self.system),
            article=strip(self.article),
            categories=tuple(c.strip() for c in self.categories) if self.categories else None,
            commission=tuple(c.strip() for c in self.commission) if self.commission else None,
        )
