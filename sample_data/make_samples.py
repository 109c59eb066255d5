"""Writes the sample request files and the sandbox's profiles, deterministically.

    .venv/bin/python sample_data/make_samples.py

- ``profiles.csv``: 160 profiles for ``erasure sandbox --profiles`` (database 1
  and a few in database 2): db_id, profile_id (24 hex), email, phone (E.164),
  resources (ids separated by ``;``), and two custom fields, ``CRM_ID`` and
  the tag field ``tags`` (``"vip, newsletter"``).
- ``requests.*``: the same 120 erasure requests in five formats, as a help
  desk exports them: a ticket id and the date received, emails with stray
  capitals, spaces and zero-width characters, phones in every local format,
  the CRM id, people who asked twice, people the database never had, and a
  handful of rows a person must fix (a broken address, a phone with
  letters, a Cyrillic look-alike letter, a date nobody can read).
  ``requests.csv`` is UTF-8 with commas; ``requests-excel.csv`` is what a
  Russian Excel saves (``;`` and Windows-1251); ``requests.xlsx`` keeps
  CRM ids as numbers and some dates as date cells; ``requests.parquet`` and
  ``requests.ndjson`` keep CRM ids as integers.

Every format reads to the same identifiers: ``erasure validate JOB --input
sample_data/requests.xlsx`` prints the same counts as for requests.csv.
"""

from __future__ import annotations

import csv
import json
import random
from datetime import date, datetime
from pathlib import Path

import polars as pl
import xlsxwriter

HERE = Path(__file__).parent
PROFILES = 160
REQUESTS = 120

FIRST = ["ivan", "petr", "olga", "anna", "sergey", "maria", "dmitry", "elena", "alexey", "natalia"]
LAST = ["ivanov", "petrov", "smirnov", "kuznetsov", "popov", "sokolov", "lebedev", "kozlov"]
FEMALE = {"olga", "anna", "maria", "elena", "natalia"}
RU_FIRST = [
    "Иван",
    "Пётр",
    "Ольга",
    "Анна",
    "Сергей",
    "Мария",
    "Дмитрий",
    "Елена",
    "Алексей",
    "Наталья",
]
RU_LAST = ["Иванов", "Петров", "Смирнов", "Кузнецов", "Попов", "Соколов", "Лебедев", "Козлов"]
DOMAINS = ["example.ru", "mail.example.com", "corp.example.org"]
TAGS = ["vip", "newsletter", "b2b", "promo"]
HEADER = ["ticket", "received_at", "ФИО", "email", "phone", "crm_id", "comment"]


def _profiles(rng: random.Random) -> list[dict[str, object]]:
    out = []
    for i in range(PROFILES):
        first, last = FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
        ending = "a" if first in FEMALE else ""
        ru = f"{RU_FIRST[i % len(RU_FIRST)]} {RU_LAST[(i // len(RU_FIRST)) % len(RU_LAST)]}"
        out.append(
            {
                "db_id": 2 if i % 20 == 19 else 1,
                "profile_id": f"{rng.getrandbits(96):024x}",
                "email": f"{first}.{last}{ending}{i}@{DOMAINS[i % len(DOMAINS)]}",
                "phone": f"+79{rng.randrange(10**9):09d}",
                "resources": ";".join(
                    str(r) for r in sorted(rng.sample([1, 2, 24], rng.randint(0, 2)))
                ),
                "CRM_ID": 100_000 + i,
                "tags": ", ".join(rng.sample(TAGS, rng.randint(0, 2))),
                "ru": ru + ("а" if ending else ""),
            }
        )
    return out


def _messy_email(rng: random.Random, email: str) -> str:
    roll = rng.random()
    if roll < 0.25:
        return email.title()
    if roll < 0.4:
        return f"  {email} "
    if roll < 0.5:
        return email + "\u200b"  # pasted from a web page
    return email


def _local_phone(rng: random.Random, e164: str) -> str:
    d = e164[2:]
    a, b, c, e = d[:3], d[3:6], d[6:8], d[8:]
    return rng.choice(
        [f"8 ({a}) {b}-{c}-{e}", f"+7 {a} {b}-{c}-{e}", f"8{d}", e164, f"7-{a}-{b}-{c}-{e}"]
    )


def _requests(rng: random.Random, profiles: list[dict[str, object]]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    db1 = [p for p in profiles if p["db_id"] == 1]
    for n in range(REQUESTS):
        ticket = f"DSR-{2024_0000 + n + 1}"
        day = date(2024, 5, 1 + n % 28)
        when: object = day.isoformat() if n % 3 else day.strftime("%d.%m.%Y")
        p = db1[rng.randrange(len(db1))]
        row: dict[str, object] = {
            "ticket": ticket,
            "received_at": when,
            "ФИО": p["ru"],
            "email": None,
            "phone": None,
            "crm_id": None,
            "comment": "",
        }
        kind = n % 10
        if kind in (0, 1, 2, 3):
            row["email"] = _messy_email(rng, str(p["email"]))
        elif kind in (4, 5):
            row["phone"] = _local_phone(rng, str(p["phone"]))
        elif kind == 6:
            row["email"] = _messy_email(rng, str(p["email"]))
            row["phone"] = _local_phone(rng, str(p["phone"]))
            row["comment"] = "удалить всё"
        elif kind == 7:
            row["crm_id"] = p["CRM_ID"]
        elif kind == 8:  # someone the database never had: not_found
            row["email"] = f"unknown{n}@example.net"
        else:  # the same person again, under the ticket before
            rows.append({**rows[-1], "comment": "повтор"})
            row["email"] = _messy_email(rng, str(p["email"]))
        rows.append(row)
    # rows a person must fix
    rows[5]["email"] = "ivan.petrov.example.ru"  # no @
    rows[15]["phone"] = "8 916 123-45-67 доб. 3"  # letters
    rows[25]["email"] = "olga.smirnovа2@example.ru"  # a Cyrillic а
    rows[35]["received_at"] = "вчера"  # kept, without a deadline
    rows[45]["email"] = '=HYPERLINK("http://evil.example")'  # neutralised in the rejects file
    rows[55]["phone"] = "12-34"
    return rows


def _texts(rows: list[dict[str, object]]) -> list[list[str]]:
    return [["" if row[h] is None else str(row[h]) for h in HEADER] for row in rows]


def _frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    return pl.DataFrame(
        {h: [row[h] for row in rows] for h in HEADER},
        schema={h: (pl.Int64 if h == "crm_id" else pl.String) for h in HEADER},
    )


def main() -> None:
    rng = random.Random(20240501)
    profiles = _profiles(rng)
    with (HERE / "profiles.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        columns = ["db_id", "profile_id", "email", "phone", "resources", "CRM_ID", "tags"]
        writer.writerow(columns)
        writer.writerows([p[c] for c in columns] for p in profiles)

    rows = _requests(rng, profiles)
    with (HERE / "requests.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        writer.writerows(_texts(rows))
    with (HERE / "requests-excel.csv").open("w", encoding="cp1251", newline="") as f:
        writer = csv.writer(f, delimiter=";")
        writer.writerow(HEADER)
        writer.writerows([[c.replace("\u200b", "") for c in r] for r in _texts(rows)])
    _frame(rows).write_parquet(HERE / "requests.parquet")
    with (HERE / "requests.ndjson").open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(
                json.dumps(
                    {k: v for k, v in row.items() if v not in (None, "")}, ensure_ascii=False
                )
                + "\n"
            )

    book = xlsxwriter.Workbook(HERE / "requests.xlsx")
    book.set_properties({"created": datetime(2024, 5, 1)})  # the same bytes on every run
    sheet = book.add_worksheet("Заявки")
    dates = book.add_format({"num_format": "dd.mm.yyyy"})
    sheet.write_row(0, 0, HEADER)
    for r, row in enumerate(rows, 1):
        for c, name in enumerate(HEADER):
            value = row[name]
            if value in (None, ""):
                continue
            if name == "received_at" and r % 2 and str(value)[:4].isdigit():
                sheet.write_datetime(r, c, datetime.fromisoformat(str(value)), dates)
            elif name == "crm_id":
                sheet.write_number(r, c, int(str(value)))
            else:
                sheet.write_string(r, c, str(value))
    book.close()


if __name__ == "__main__":
    main()
