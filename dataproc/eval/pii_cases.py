"""Generated hard cases for the PII scrubber: one labelled class per known failure.

Each class is a shape the scrubber once got wrong (issue 14, and false positives read on the
dev-bench pages): IBANs whose length is a multiple of four followed by a word, invalid
IBANs, US ZIP+4 codes, ISSNs, dates with clock times, years in parentheses, international
mobile numbers without a phone word, long labelled phone numbers, RFC number ranges, decimals,
Wayback timestamps, Chinese registration numbers, street addresses and identifiers.

Every example is built from a seeded :class:`random.Random`, so a suite is the same on every
machine; nothing is read from disk. A record is ``{"class", "full_text", "spans"}`` with spans in
presidio-research's format (``entity_type``, ``start_position``, ``end_position``): the gold
PII of the sentence. A sentence of a negative class holds the protected shape and sometimes
real PII beside it (a phone next to a ZIP+4 code), which is gold like any other.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from dataproc.stages.pii import IBAN_LENGTHS, luhn_valid

Piece = tuple[str, str | None]
"""A piece of a sentence and its entity type (None: not PII)."""

_WORDS_AFTER = ("today", "next", "then", "from", "with", "soon", "please", "before", "und", "para")


def _record(cls: str, pieces: list[Piece]) -> dict[str, Any]:
    text = ""
    spans = []
    for piece, entity in pieces:
        if entity is not None:
            spans.append(
                {
                    "entity_type": entity,
                    "start_position": len(text),
                    "end_position": len(text) + len(piece),
                }
            )
        text += piece
    return {"class": cls, "full_text": text, "spans": spans}


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def make_iban(rng: random.Random, country: str, valid: bool = True) -> str:
    """A compact IBAN of ``country``'s registered length with a digit BBAN."""
    bban = _digits(rng, IBAN_LENGTHS[country] - 4)
    number = int("".join(str(int(ch, 36)) for ch in bban + country + "00"))
    check = 98 - number % 97
    if not valid:
        check = (check + rng.randint(1, 96)) % 97
        check = check or 97  # 00 is never a valid check pair either way; keep two digits
    return f"{country}{check:02d}{bban}"


def _iban_form(rng: random.Random, iban: str) -> str:
    if rng.random() < 0.5:
        iban = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    return iban.lower() if rng.random() < 0.1 else iban


def _iban_sentence(
    rng: random.Random, cls: str, countries: list[str], valid: bool
) -> dict[str, Any]:
    iban = _iban_form(rng, make_iban(rng, rng.choice(countries), valid))
    entity = "IBAN_CODE" if valid else None
    after = rng.choice([" " + rng.choice(_WORDS_AFTER) + ".", ".", ", thanks", "", " (EUR)", "\n"])
    before = rng.choice(["Please transfer the fee to ", "IBAN: ", "Konto ", "Cuenta: ", "to "])
    return _record(cls, [(before, None), (iban, entity), (after, None)])


def _nanp(rng: random.Random) -> str:
    area = str(rng.randint(201, 989))
    return f"{area}-{rng.randint(200, 999)}-{_digits(rng, 4)}"


_STATES = ("CA", "NY", "TX", "WA", "MA", "IL", "OR", "FL", "NJ", "PA", "DC", "VA")
_CITIES = ("Sausalito", "Springfield", "Portland", "Austin", "Boston", "Seattle", "Albany")


def _zip_plus4(rng: random.Random) -> dict[str, Any]:
    zip4 = f"{_digits(rng, 5)}-{_digits(rng, 4)}"
    address = f"{rng.randint(1, 9999)} Main St, {rng.choice(_CITIES)}, {rng.choice(_STATES)} "
    if rng.random() < 0.5:
        return _record(
            "zip_plus4",
            [(f"Contact us: {address}{zip4}. Phone: ", None), (_nanp(rng), "PHONE_NUMBER")],
        )
    return _record("zip_plus4", [(f"Office address: {address}{zip4}, call for hours.", None)])


def _issn(rng: random.Random) -> str:
    while True:
        body = _digits(rng, 7)
        check = (11 - sum(int(d) * w for d, w in zip(body, range(8, 1, -1), strict=True)) % 11) % 11
        if check < 10:
            return f"{body[:4]}-{body[4:]}{check}"


def _issn_sentence(rng: random.Random) -> dict[str, Any]:
    first, second = _issn(rng), _issn(rng)
    return _record(
        "issn",
        [
            (
                rng.choice(
                    [
                        f"Journal office, tel. desk. ISSN: {first} (print), {second} (online).",
                        f"ISSN {first} | eISSN {second} | contact the office",
                        f"Call for papers. Print ISSN {first}; online ISSN: {second}.",
                    ]
                ),
                None,
            )
        ],
    )


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NAMES = ("January", "March", "July", "August", "September", "October", "December")


def _date_time(rng: random.Random) -> dict[str, Any]:
    day, year = rng.randint(1, 28), rng.randint(1995, 2024)
    hour, minute = rng.randint(1, 12), rng.randint(0, 59)
    month = rng.choice(_MONTHS + _MONTH_NAMES)
    ampm = rng.choice(["PM", "AM", "pm", " PM", ""])
    stamp = rng.choice(
        [
            f"{month} {day} {year} {hour:02d}:{minute:02d}{ampm}",
            f"{month} {day}, {year} {hour:02d}:{minute:02d}{ampm}",
            f"{day} {month} {year} {hour:02d}:{minute:02d}",
            f"{month} {day:02d} {year} {hour}:{minute:02d}{ampm}",
        ]
    )
    return _record(
        "date_time", [(f"Message posted {stamp} by the office. Reply to call for help.", None)]
    )


def _count_year(rng: random.Random) -> dict[str, Any]:
    n, year, m = rng.randint(2, 99), rng.randint(1850, 2020), rng.randint(10, 999)
    return _record(
        "count_year",
        [
            (
                rng.choice(
                    [
                        f"{n} years ({year}) {m} cm, contact the clinic.",
                        f"Age at death: {n} years ({year}) {m}",
                        f"served {n} years ({year}) {m} members, phone tree",
                    ]
                ),
                None,
            )
        ],
    )


def _tr_mobile(rng: random.Random) -> dict[str, Any]:
    a, b, c, d = f"5{_digits(rng, 2)}", _digits(rng, 3), _digits(rng, 2), _digits(rng, 2)
    number = rng.choice(
        [
            f"+90 {a} {b} {c} {d}",
            f"+90 {a} {b} {c}{d}",
            f"+90{a}{b}{c}{d}",
            f"+90 ({a}) {b} {c} {d}",
            f"(+90) {a} {b} {c} {d}",
            f"+90-{a}-{b}-{c}-{d}",
            f"0090 {a} {b} {c} {d}",
            f"+90 {a}{b}{c}{d}",
        ]
    )
    before, after = rng.choice(
        [
            ("Bilgi için ", " numarasından Ahmet Bey'e ulaşabilirsiniz."),
            ("Siparişleriniz: ", "."),
            ("Ayşe Yılmaz ", " (WhatsApp değil)"),
            ("Details from Mehmet at ", " until Friday."),
            ("Rezervasyon ", "'dan yapılır."),
        ]
    )
    return _record("intl_mobile_tr", [(before, None), (number, "PHONE_NUMBER"), (after, None)])


def _cn_mobile(rng: random.Random) -> dict[str, Any]:
    a, b, c = (
        f"1{rng.choice('3456789')}{rng.choice('0123456789')}",
        _digits(rng, 4),
        _digits(rng, 4),
    )
    number = rng.choice(
        [
            f"+86 {a} {b} {c}",
            f"+86-{a}-{b}-{c}",
            f"+86{a}{b}{c}",
            f"+86 {a}{b}{c}",
            f"(+86) {a} {b} {c}",
            f"+86 {a}-{b}-{c}",
            f"0086 {a} {b} {c}",
            f"+86.{a}.{b}.{c}",
        ]
    )
    before, after = rng.choice(
        [
            ("王先生", "，欢迎咨询。"),
            ("详情请咨询", "。"),
            ("Ms. Li: ", " (WeChat)"),
            ("Reach Zhang Wei on ", " before noon."),
            ("订购", "转"),
        ]
    )
    return _record("intl_mobile_cn", [(before, None), (number, "PHONE_NUMBER"), (after, None)])


def _long_run(rng: random.Random, luhn: bool | None) -> str:
    """A 13-15 digit phone written without separators; Luhn-valid when ``luhn`` says so."""
    while True:
        number = rng.choice(["0", "00" + rng.choice(["90", "86", "44", "49", "33"])])
        number += _digits(rng, rng.randint(13, 15) - len(number))
        if luhn is None or luhn_valid(number) == luhn:
            return number


def _tel_fax(rng: random.Random) -> dict[str, Any]:
    tel, fax = _long_run(rng, None), _long_run(rng, True)
    label_tel, label_fax = rng.choice(
        [("Tel: ", " Fax: "), ("Tel.: ", " / Fax: "), ("TEL ", "  FAX ")]
    )
    return _record(
        "tel_fax_long",
        [
            ("Head office. " + label_tel, None),
            (tel, "PHONE_NUMBER"),
            (label_fax, None),
            (fax, "PHONE_NUMBER"),
            (".", None),
        ],
    )


def _cjk_labelled(rng: random.Random) -> dict[str, Any]:
    number = rng.choice(
        [
            f"1{rng.choice('3456789')}{_digits(rng, 9)}",
            f"0{rng.randint(10, 99)}-{_digits(rng, 8)}",
            _digits(rng, 8),
        ]
    )
    label = rng.choice(["电话：", "监督电话：", "手机", "联系方式", "传真：", "電話："])
    return _record(
        "cjk_labelled", [("上海总部 ", None), (label, None), (number, "PHONE_NUMBER"), ("。", None)]
    )


def _cjk_ids(rng: random.Random) -> dict[str, Any]:
    text = rng.choice(
        [
            f"联系我们 备案号:沪ICP备{_digits(rng, 8)}号",
            f"联系我们 京ICP证{_digits(rng, 6)}号 京公网安备{_digits(rng, 14)}号",
            f"联系方式 共{_digits(rng, 8)}人 2019年{rng.randint(1, 12)}月",
        ]
    )
    return _record("cjk_ids", [(text, None)])


def _rfc_range(rng: random.Random) -> dict[str, Any]:
    lo = rng.choice([0, 1])
    hi = rng.choice([31, 63, 99, 127, 191, 239, 1023, 8191, 65519])
    return _record(
        "rfc_range",
        [(f"Message Types | RFC {rng.randint(1000, 9999)} {lo}-{hi}: IETF Review.", None)],
    )


def _table_number(rng: random.Random) -> dict[str, Any]:
    date = f"{rng.randint(10, 28)}/{rng.randint(1, 12):02d}/{rng.randint(2005, 2020)}"
    row = f"| Up-to-date | {rng.randint(1, 99)} | {date} | {_digits(rng, rng.randint(7, 10))}\n"
    return _record("table_number", [(row + "Home Office (publisher page) | ", None)])


def _luhn_digits(rng: random.Random, n: int, head: str = "") -> str:
    while True:
        digits = head + _digits(rng, n - len(head))
        if luhn_valid(digits) and digits[0] != "0":
            return digits


def _decimal(rng: random.Random) -> dict[str, Any]:
    values = ",".join(
        f"{rng.randint(1, 40)}.{_luhn_digits(rng, rng.randint(15, 16))}" for _ in range(3)
    )
    return _record("decimal_digits", [(f"scores: {values}", None)])


def _wayback(rng: random.Random) -> dict[str, Any]:
    while True:
        stamp = (
            f"{rng.randint(1996, 2024)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
            f"{rng.randint(0, 23):02d}{rng.randint(0, 59):02d}{rng.randint(0, 59):02d}"
        )
        if luhn_valid(stamp):
            break
    return _record(
        "wayback_timestamp",
        [(f"see http://web.archive.org/web/{stamp}/http://www.example.com/ for the page", None)],
    )


_STREETS = ("Rissik", "Main", "Oak", "Church", "High", "Elm", "Park")
_STREET_TYPES = ("St", "Street", "Ave", "Rd", "Road", "Blvd", "Lane", "Drive")


def _street_address(rng: random.Random) -> dict[str, Any]:
    numbers = f"{_digits(rng, 5)} {_digits(rng, 4)}"
    street = f"{rng.choice(_STREETS)} {rng.choice(_STREET_TYPES)}"
    return _record(
        "street_address",
        [(f"The office is at {numbers} {street} Apt. {rng.randint(1, 99)}, call ahead.", None)],
    )


def _glued_identifier(rng: random.Random) -> dict[str, Any]:
    ident = rng.choice("ABDEFHKLMNPRSUWXY") + _luhn_digits(rng, rng.randint(13, 16))
    return _record(
        "glued_identifier", [(f"My driver's license number is {ident}, card on file.", None)]
    )


_MULT4 = sorted(c for c, n in IBAN_LENGTHS.items() if n % 4 == 0)
_OTHER = sorted(c for c, n in IBAN_LENGTHS.items() if n % 4)

CASE_CLASSES: dict[str, tuple[str, Callable[[random.Random], dict[str, Any]]]] = {
    "iban_len_mult4": (
        "valid IBANs of length 16/20/24/28/32 (ES, AT, PL, BE, SE, CZ...), then a word",
        lambda r: _iban_sentence(r, "iban_len_mult4", _MULT4, True),
    ),
    "iban_other_len": (
        "valid IBANs of the other lengths, then a word",
        lambda r: _iban_sentence(r, "iban_other_len", _OTHER, True),
    ),
    "iban_invalid": (
        "IBAN-shaped, checksum wrong: left whole (no card, no phone)",
        lambda r: _iban_sentence(r, "iban_invalid", sorted(IBAN_LENGTHS), False),
    ),
    "intl_mobile_tr": ("Turkish +90 5xx mobiles, no phone word", _tr_mobile),
    "intl_mobile_cn": ("Chinese +86 1xx mobiles, no phone word", _cn_mobile),
    "tel_fax_long": ("13-15 digit runs after Tel:/Fax: (fax Luhn-valid)", _tel_fax),
    "cjk_labelled": ("numbers glued to a Chinese phone label", _cjk_labelled),
    "zip_plus4": ("US ZIP+4 after a state code, phone words near", _zip_plus4),
    "issn": ("ISSNs with a valid check digit, phone words near", _issn_sentence),
    "date_time": ("a date and a clock time (Jul 19 2001 01:21PM)", _date_time),
    "count_year": ("counts with a year in parentheses (62 years (1935) 120)", _count_year),
    "rfc_range": ("RFC numbers and ranges near 'Message'", _rfc_range),
    "table_number": ("bare numbers in a table, 'Office' in the next cell", _table_number),
    "decimal_digits": ("Luhn-valid decimals of a number (3.6346572438162545)", _decimal),
    "wayback_timestamp": ("Luhn-valid 14-digit Wayback timestamps", _wayback),
    "street_address": ("house and street numbers before a street name", _street_address),
    "glued_identifier": (
        "Luhn-valid digits glued to a letter (U62928788557186)",
        _glued_identifier,
    ),
    "cjk_ids": ("registration numbers glued to Chinese text near 联系", _cjk_ids),
}
"""Class name -> (what it holds, generator of one record)."""


def hard_cases(per_class: int = 50, seed: int = 0) -> list[dict[str, Any]]:
    """``per_class`` generated records of every class in :data:`CASE_CLASSES`."""
    rng = random.Random(seed)
    return [make(rng) for _, make in CASE_CLASSES.values() for _ in range(per_class)]
