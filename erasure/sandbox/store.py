"""The sandbox's profiles: several databases, indexed for the four matching modes.

A profile is found by ``(db_id, mode, value)`` in nested dicts, so an unknown
identifier costs one failed dict lookup and no memory. Deleting a profile
leaves a tombstone in the indexes: a later delete still finds it, is counted
in :attr:`Profile.deletes` and is answered "not found", so that tests can
prove that nothing was sent twice.

Matching rules (decided here, Altcraft does not spell them out):

- emails compare trimmed and lower-cased; phones and profile ids trimmed;
- ``resource_id`` narrows email and phone matching to profiles subscribed to
  that resource: any other profile with that email is "not found";
- a custom field compares its trimmed text (``123`` and ``"123"`` are equal);
- a field is tag-type when any of its values in the profile file holds a
  comma; a ``field_value`` of ``"tag-1, tag-2"`` then matches the profiles
  whose tags contain all of those tags, in any order;
- when several live profiles match, the first in file order is deleted.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from erasure.errors import FileMissing, InputUnusable

FIXED_COLUMNS = ("db_id", "profile_id", "email", "phone", "resources")
_NO_FIELDS: Mapping[str, str] = {}
_NO_RESOURCES: frozenset[int] = frozenset()


@dataclass(slots=True, eq=False)
class Profile:
    """One profile; mutable on purpose: it carries its own tombstone and counter."""

    db_id: int
    profile_id: str  # 24 lowercase hex characters
    email: str = ""  # lower-case; "" when the profile has none
    phone: str = ""
    resources: frozenset[int] = _NO_RESOURCES  # resource ids it is subscribed to
    fields: Mapping[str, str] = field(default_factory=dict)  # custom fields, raw text
    deleted: bool = False
    deletes: int = 0  # delete requests that reached the store and matched it


# An index maps a value to one profile, or to a list of them when shared.
_Slot = Profile | list[Profile]


class Store:
    """Profiles of several databases and the indexes to find them."""

    def __init__(self, profiles: Iterable[Profile] = ()) -> None:
        self.profiles: list[Profile] = []
        self.databases: set[int] = set()
        self.erased = 0  # profiles deleted so far
        self._index: dict[tuple[int, str], dict[str, _Slot]] = {}
        self._tag_fields: set[tuple[int, str]] = set()  # (db_id, field name)
        self.deleted_order: list[Profile] = []  # in the order they were deleted
        self._new_ids = profile_ids("reimport")  # ids of profiles added by reimport()
        for profile in profiles:
            self.add(profile)

    def add(self, profile: Profile) -> None:
        self.profiles.append(profile)
        self.databases.add(profile.db_id)
        db = profile.db_id
        self._put(db, "profile_id", profile.profile_id, profile)
        if profile.email:
            self._put(db, "email", profile.email, profile)
        if profile.phone:
            self._put(db, "phone", profile.phone, profile)
        for name, value in profile.fields.items():
            self._put(db, "custom:" + name, value, profile)
            tags = _tags(value)
            if len(tags) > 1:
                self._tag_fields.add((db, name))
            for tag in tags:
                self._put(db, "tag:" + name, tag, profile)

    def _put(self, db_id: int, mode: str, value: str, profile: Profile) -> None:
        index = self._index.setdefault((db_id, mode), {})
        slot = index.get(value)
        if slot is None:
            index[value] = profile
        elif isinstance(slot, list):
            slot.append(profile)
        else:
            index[value] = [slot, profile]

    @property
    def profiles_left(self) -> int:
        return len(self.profiles) - self.erased

    def find(
        self,
        db_id: int,
        matching: str,
        value: str,
        *,
        field_name: str = "",
        resource_id: int | None = None,
    ) -> list[Profile]:
        """Every profile, live or tombstoned, that the request designates."""
        if matching == "email":
            found = self._get(db_id, "email", value.strip().lower())
        elif matching == "custom":
            found = self._find_custom(db_id, field_name, value.strip())
        else:
            found = self._get(db_id, matching, value.strip())
        if resource_id is not None:
            found = [p for p in found if resource_id in p.resources]
        return found

    def _get(self, db_id: int, mode: str, value: str) -> list[Profile]:
        index = self._index.get((db_id, mode))
        slot = index.get(value) if index is not None else None
        if slot is None:
            return []
        return slot if isinstance(slot, list) else [slot]

    def _find_custom(self, db_id: int, name: str, value: str) -> list[Profile]:
        if (db_id, name) not in self._tag_fields:
            return self._get(db_id, "custom:" + name, value)
        wanted = _tags(value)
        if not wanted:
            return []
        first, *rest = (self._get(db_id, "tag:" + name, tag) for tag in wanted)
        others = [{id(p) for p in group} for group in rest]
        return [p for p in first if all(id(p) in group for group in others)]

    def delete(self, targets: list[Profile]) -> Profile | None:
        """Count the request on every target; delete the first live one, if any."""
        for profile in targets:
            profile.deletes += 1
        for profile in targets:
            if not profile.deleted:
                profile.deleted = True
                self.erased += 1
                self.deleted_order.append(profile)
                return profile
        return None

    def restore(
        self, profile_ids: Iterable[str] = (), *, last: int = 0, db_id: int | None = None
    ) -> list[Profile]:
        """Bring deleted profiles back, as a restored backup does: same ids, same values.

        ``profile_ids`` names them (each must be a deleted profile; in ``db_id``
        when given), or ``last`` takes the N most recently deleted (of ``db_id``
        when given). Their delete counters stay: a later delete adds to them.
        Raises :class:`KeyError` naming an id that is unknown or not deleted.
        """
        chosen: list[Profile] = []
        for profile_id in profile_ids:
            dbs = [db_id] if db_id is not None else sorted(self.databases)
            found = [p for db in dbs for p in self._get(db, "profile_id", profile_id.strip())]
            deleted = [p for p in found if p.deleted and p not in chosen]
            if not deleted:
                raise KeyError(f"no deleted profile has the id {profile_id.strip()!r}")
            chosen.append(deleted[0])
        if last:
            candidates = [
                p
                for p in reversed(self.deleted_order)
                if p.deleted and (db_id is None or p.db_id == db_id) and p not in chosen
            ]
            chosen += candidates[:last]
        for profile in chosen:
            profile.deleted = False
            self.erased -= 1
            self.deleted_order.remove(profile)
        return chosen

    def reimport(
        self,
        db_id: int,
        *,
        email: str = "",
        phone: str = "",
        resources: Iterable[int] = (),
        fields: Mapping[str, str] | None = None,
    ) -> Profile:
        """A new profile (a new id) with these values, as an import adds one."""
        profile_id = next(self._new_ids)
        while any(self._get(db, "profile_id", profile_id) for db in self.databases):
            profile_id = next(self._new_ids)
        profile = Profile(
            db_id,
            profile_id,
            email.strip().lower(),
            phone.strip(),
            frozenset(resources),
            dict(fields or {}),
        )
        self.add(profile)
        return profile

    def live(self, db_id: int) -> Iterator[Profile]:
        """The profiles of ``db_id`` not deleted, in file order."""
        return (p for p in self.profiles if p.db_id == db_id and not p.deleted)

    def field_names(self, db_id: int) -> list[str]:
        """The custom field names any profile of ``db_id`` has, sorted."""
        return sorted({name for p in self.profiles if p.db_id == db_id for name in p.fields})

    def deletes_per_profile(self) -> dict[str, int]:
        """Delete requests per profile id, for the profiles that received any."""
        return {p.profile_id: p.deletes for p in self.profiles if p.deletes}


def _tags(value: str) -> list[str]:
    return [tag for tag in (part.strip() for part in value.split(",")) if tag]


def profile_ids(seed: int | str) -> Iterator[str]:
    """Deterministic 24-hex profile ids (like MongoDB ObjectIds) from a seed."""
    rng = random.Random(f"erasure-sandbox-profiles-{seed}")
    while True:
        yield f"{rng.getrandbits(96):024x}"


def generate(count: int, *, seed: int | str = 0, db_id: int = 1) -> Iterator[Profile]:
    """``count`` profiles: ``user{i}@example.com``, ``+7900{i:07d}``, no resources."""
    for i, profile_id in zip(range(count), profile_ids(seed), strict=False):
        yield Profile(
            db_id, profile_id, f"user{i}@example.com", f"+7900{i:07d}", _NO_RESOURCES, _NO_FIELDS
        )


def load_csv(path: Path, *, seed: int | str = 0) -> Iterator[Profile]:
    """Profiles from the contract's CSV: the fixed columns (any case), then custom fields.

    An empty ``profile_id`` gets a generated one; ``resources`` holds resource
    ids separated by ``;``. Raises :class:`FileMissing` or
    :class:`InputUnusable` naming the row and column.
    """
    ids = profile_ids(seed)
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise FileMissing(f"profiles file {path} does not exist") from None
    except OSError as exc:
        raise InputUnusable(f"profiles file {path} cannot be read: {exc.strerror}") from None
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise InputUnusable(f"profiles file {path} is empty")
        names = [name.strip() for name in header]
        fixed = {name.lower(): i for i, name in enumerate(names) if name.lower() in FIXED_COLUMNS}
        if "db_id" not in fixed:
            raise InputUnusable(f"profiles file {path} has no db_id column")
        custom = [(i, name) for i, name in enumerate(names) if name.lower() not in FIXED_COLUMNS]
        try:
            for row_number, row in enumerate(reader, start=2):
                if not any(cell.strip() for cell in row):
                    continue
                yield _profile(row, row_number, fixed, custom, ids, path)
        except UnicodeDecodeError:
            raise InputUnusable(f"profiles file {path} is not UTF-8") from None


def _profile(
    row: list[str],
    row_number: int,
    fixed: dict[str, int],
    custom: list[tuple[int, str]],
    ids: Iterator[str],
    path: Path,
) -> Profile:
    def cell(index: int | None) -> str:
        return row[index].strip() if index is not None and index < len(row) else ""

    where = f"profiles file {path}, row {row_number}"
    try:
        db_id = int(cell(fixed["db_id"]))
    except ValueError:
        raise InputUnusable(f"{where}, column db_id: not an integer") from None
    try:
        resources = frozenset(
            int(part) for part in cell(fixed.get("resources")).split(";") if part.strip()
        )
    except ValueError:
        raise InputUnusable(f"{where}, column resources: not integers separated by ;") from None
    fields = {name: cell(i) for i, name in custom if cell(i)}
    return Profile(
        db_id=db_id,
        profile_id=cell(fixed.get("profile_id")) or next(ids),
        email=cell(fixed.get("email")).lower(),
        phone=cell(fixed.get("phone")),
        resources=resources,
        fields=fields,
    )
