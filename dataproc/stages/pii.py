"""PII scrubbing: replace emails, public IP addresses, phone numbers, payment cards and IBANs.

Each kind has a candidate regex (linear time: every repeat is bounded or guarded by a
look-behind, so a match can only start at the beginning of a run) and a validator in Python:

* **email** — ``local@domain.tld``; the last label must be alphabetic (2–24 letters).
* **ip** — IPv4 dotted quads and IPv6 addresses accepted by :mod:`ipaddress` and *public*:
  private (10/8, 172.16/12, 192.168/16, ...), loopback, link-local, multicast, unspecified,
  reserved, shared (100.64/10) and documentation ranges are left alone. **Ambiguous dotted
  quads rule:** a quad is *not* an address when it touches more dotted numbers (``1.2.3.4.5``,
  ``.1.2.3.4``), is glued to a letter (``v1.2.3.4``, ``1.2.3.4a``), or is preceded by a version
  word (``v``, ``ver``, ``ver.``, ``version``, ``release``, ``build``, ``firmware``), or when
  all four parts are single digits (``1.3.3.9``, ``3.2.2.5``: section and version numbers far
  more often than hosts; the few such public hosts are resolvers like 1.1.1.1, not personal).
* **phone** — digit groups with single separators (space, ``.``, ``-``), optional ``+CC``/``00``
  prefix (also in parentheses: ``(+90)``), ``(area)`` / ``(0)`` parts and an ``x123``/``ext.
  123`` extension; 7–15 digits (E.164). A number may touch CJK text (``手机+86 138 0013 8000转``);
  one glued to any other word is not a phone, and one glued to a word in front needs an
  international prefix or a phone label. Accepted outright when the shape is a phone's
  (international prefix, area code in parentheses, NANP ``3-3-4``, national trunk ``0…`` with
  9+ digits, an extension); a number right after a phone label (``Tel:``, ``Fax.``, ``电话：``)
  with any 7–15 digits; any other grouped number only with a phone word nearby (``phone``,
  ``tel``, ``call``, ``fax``, ``mobile``, ``电话``, ...), and a bare 7–12 digit run only with the
  word *before* it or a label in parentheses right after (``9498777106 (fax)``). Never
  phones: dates (``2024-01-15``, ``15.01.2024``, ``Jul 19 2001 01`` before a clock time),
  ISBNs and ISSNs (after the word), US ZIP+4 codes after a state code (``CA 94965-2100``), a
  year in parentheses (``(1935) 120``), RFC numbers and ranges (``RFC 5971 0-63``), numbers
  before a street name (``17031 2202 Rissik St``), SSN-shaped ``3-2-4`` numbers, numbers after
  a currency sign, thousands groupings (``1 234 567``) without context and plain numbers
  without context.
* **card** — 13–19 digits, contiguous or in the usual groups (4-4-4-4[-3], 4-6-5, 4-6-4) with
  spaces or dashes, passing the Luhn check; ISBN-13 prefixes (978/979), repeated digits, the
  decimals of a number (``3.6346572438162545``), digits glued to a Latin letter
  (``U62928788557186``), 14-digit timestamps (``20000229123340``), numbers after ``+`` or a
  phone label (≤ 15 digits: phones) and Chinese site registration numbers (``京公网安备…``) are
  excluded.
* **iban** — country code, check digits and BBAN of the country's registered length, compact or
  in groups of four, with a valid ISO 7064 mod-97 checksum. The candidate run is cut at the
  registered length, so a following word (``ES91 2100 0418 4502 0005 1332 today``) is never
  part of it. **An IBAN-shaped string whose checksum fails is left whole**: no part of it is
  scrubbed as a card or phone number (nor is an IBAN while ``iban`` scrubbing is off).

Detection runs on the original text; overlaps are resolved by priority (email, iban, card, ip,
phone) then position. The stage never drops a document; it counts what it replaced per kind
as ``pii_<kind>`` (``stats.json`` counters of ``pii``).
"""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_left
from dataclasses import dataclass
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from dataproc.configbase import StrictModel
from dataproc.document import Document, Reject
from dataproc.stages.base import Stage

PiiKind = Literal["email", "ip", "phone", "card", "iban"]
PII_KINDS: tuple[PiiKind, ...] = ("email", "iban", "card", "ip", "phone")
"""All kinds, in the priority order used when two detections overlap."""

DEFAULT_PLACEHOLDERS: dict[str, str] = {
    "email": "<EMAIL>",
    "ip": "<IP_ADDRESS>",
    "phone": "<PHONE>",
    "card": "<CARD_NUMBER>",
    "iban": "<IBAN>",
}


class PiiConfig(StrictModel):
    """Which kinds of PII to replace, and with what."""

    enabled: bool = Field(True, description="Scrub PII (the stage never drops documents).")
    email: bool = Field(True, description="Replace email addresses.")
    ip: bool = Field(
        True, description="Replace public IPv4/IPv6 addresses (private ranges are kept)."
    )
    phone: bool = Field(True, description="Replace phone numbers.")
    card: bool = Field(True, description="Replace Luhn-valid payment card numbers (13–19 digits).")
    iban: bool = Field(True, description="Replace IBANs with a valid mod-97 checksum.")
    placeholders: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_PLACEHOLDERS),
        description="Replacement text per kind (keys: email, ip, phone, card, iban); "
        "kinds left out keep their default.",
    )

    @field_validator("placeholders")
    @classmethod
    def _check_placeholders(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(DEFAULT_PLACEHOLDERS))
        if unknown:
            raise ValueError(
                f"unknown PII kind(s) {unknown}; use keys from {sorted(DEFAULT_PLACEHOLDERS)}"
            )
        return {**DEFAULT_PLACEHOLDERS, **v}

    def kinds(self) -> tuple[PiiKind, ...]:
        """The enabled kinds, in priority order."""
        return tuple(k for k in PII_KINDS if getattr(self, k))


@dataclass(frozen=True, slots=True)
class PiiSpan:
    """One detected entity: ``text[start:end]`` is PII of ``kind``."""

    start: int
    end: int
    kind: PiiKind


# ----------------------------------------------------------------------------------------------
# email
# ----------------------------------------------------------------------------------------------

_EMAIL_RE = re.compile(
    r"(?<![\w%+'-])[\w.%+'-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8}"
)


def find_emails(text: str) -> list[PiiSpan]:
    """Email addresses whose last domain label is alphabetic."""
    if "@" not in text:
        return []  # most pages: skip the regex scan (the pattern needs an "@")
    out = []
    pos = 0
    while True:
        m = _EMAIL_RE.search(text, pos)
        if m is None:
            break
        local, _, domain = m.group(0).partition("@")
        start = m.start()
        # A run like "x...john@" matched from its start: trim leading punctuation off the local part.
        stripped = local.lstrip(".'-")
        start += len(local) - len(stripped)
        labels = domain.split(".")
        end = m.end()
        # "mail a@b.com.au." keeps the dot out; drop trailing labels that are not a valid TLD.
        while len(labels) > 1 and not (labels[-1].isalpha() and 2 <= len(labels[-1]) <= 24):
            end -= len(labels[-1]) + 1
            labels.pop()
        # Resume after the kept part: a trimmed tail ("a@b.comx.y@c.org") may start another.
        pos = max(end, m.start() + 1)
        if len(labels) < 2 or not stripped.rstrip("."):
            continue
        if any(not lab or lab.startswith("-") or lab.endswith("-") for lab in labels):
            continue
        out.append(PiiSpan(start, end, "email"))
    return out


# ----------------------------------------------------------------------------------------------
# ip
# ----------------------------------------------------------------------------------------------

_IPV4_RE = re.compile(r"(?<![\w.])\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?!\w|\.\d)")
_IPV6_RE = re.compile(r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
# Necessary conditions of _IPV4_RE / _IPV6_RE, checked first because they scan much faster
# (no look-behind at every position) and fail on most pages.
_IPV4_HINT_RE = re.compile(r"\d\.\d{1,3}\.\d{1,3}\.\d")
_IPV6_HINT_RE = re.compile(r":[0-9A-Fa-f]{0,4}:")
_VERSION_BEFORE_RE = re.compile(
    r"(?:\bv|\bver\.?|\bversion|\brelease|\brel\.|\bbuild|\bfirmware)\s{0,3}[:#]?\s{0,3}$",
    re.IGNORECASE,
)


def is_public_ip(address: str) -> bool:
    """True when ``address`` parses as IPv4/IPv6 and is globally routable (not private etc.)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_unspecified
        # IPv6 "reserved" is simply space IANA has not allocated yet (outside 2000::/3): an
        # address written in text there is still somebody's address, so only IPv4 uses it.
        or (ip.is_reserved and ip.version == 4)
        or not ip.is_global
    )


def find_ips(text: str) -> list[PiiSpan]:
    """Public IPv4 and IPv6 addresses (see the module docstring for the dotted-quad rule)."""
    out: list[PiiSpan] = []
    if _IPV4_HINT_RE.search(text):
        for m in _IPV4_RE.finditer(text):
            if _VERSION_BEFORE_RE.search(text, max(0, m.start() - 16), m.start()):
                continue
            if all(len(octet) == 1 for octet in m.group(0).split(".")):
                continue  # "1.3.3.9", "3.2.2.5": section and version numbers, not addresses
            if is_public_ip(m.group(0)):
                out.append(PiiSpan(m.start(), m.end(), "ip"))
    if ":" in text and _IPV6_HINT_RE.search(text):
        for m in _IPV6_RE.finditer(text):
            s = m.group(0)
            if s.count(":") >= 2 and is_public_ip(s):
                out.append(PiiSpan(m.start(), m.end(), "ip"))
    return out


# ----------------------------------------------------------------------------------------------
# card
# ----------------------------------------------------------------------------------------------

# Wrapped in a look-ahead so every start is tried (overlapping candidates): in "8.8.8.8 4111..."
# the run starting at the last "8" must not hide the card behind it. Each try is bounded (≤ 37
# characters), so the scan stays linear.
_CARD_RE = re.compile(r"(?<![\d-])(?=(\d(?:[ -]?\d){12,18}(?![ -]?\d)))")


_CARD_SEP_RE = re.compile(r"[ -]")
# A necessary condition of both card patterns, without their per-position look-arounds.
_CARD_HINT_RE = re.compile(r"\d(?:[ -]?\d){12}")
# The usual printed form 4-4-4-4, found even inside a longer run of number groups (a table of
# cards separated by single spaces), where _CARD_RE only sees the run's last 19 digits.
_CARD_GROUPED_RE = re.compile(r"(?<![\d-])\d{4}([ -])\d{4}\1\d{4}\1\d{4}(?!\d)")
# Chinese site registration numbers ("沪ICP备12345678号", "京公网安备11010502030143号").
_REGISTRATION_BEFORE_RE = re.compile(r"(?:ICP|公网安|公網安)[备備证證]\s?$|备案号[:：]?\s?$")
_IBAN_HEAD_BEFORE_RE = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2} ?$")


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check used by payment card numbers."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_groups_ok(groups: list[int]) -> bool:
    if len(groups) == 1:
        return True
    if groups in ([4, 6, 5], [4, 6, 4]):
        return True
    return all(g == 4 for g in groups[:-1]) and 1 <= groups[-1] <= 4 and len(groups) >= 4


def find_cards(text: str) -> list[PiiSpan]:
    """Luhn-valid 13–19 digit card numbers, contiguous or in the usual groups."""
    out: list[PiiSpan] = []
    if _CARD_HINT_RE.search(text) is None:
        return out  # no run of 13 digits (with single separators): no candidate either
    candidates = [(m.start(), m.group(1)) for m in _CARD_RE.finditer(text)]
    candidates += [(m.start(), m.group(0)) for m in _CARD_GROUPED_RE.finditer(text)]
    candidates.sort(key=lambda c: (c[0], -len(c[1])))
    for start, s in candidates:
        if out and start < out[-1].end:
            continue
        groups = [len(g) for g in _CARD_SEP_RE.split(s)]
        digits = s.replace(" ", "").replace("-", "")
        if not 13 <= len(digits) <= 19 or not _card_groups_ok(groups):
            continue
        if len(digits) == 13 and digits.startswith(("978", "979")):
            continue  # ISBN-13
        if len(set(digits)) == 1 or not luhn_valid(digits):
            continue
        if _IBAN_HEAD_BEFORE_RE.search(text, max(0, start - 6), start):
            continue  # the body of an IBAN-like "DE89 3704 ..." of the wrong length
        if start and text[start - 1].isascii() and text[start - 1].isalpha():
            continue  # "U62928788557186": the digits of an identifier glued to a letter
        if start and text[start - 1] == "+":
            continue  # "+902125551234567": an international phone number
        if start >= 2 and text[start - 1] == "." and text[start - 2].isdigit():
            continue  # "3.6346572438162545": the decimals of a number
        if len(digits) == 14 and _timestamp_like(digits):
            continue  # "web.archive.org/web/20000229123340/": YYYYMMDDhhmmss
        if _REGISTRATION_BEFORE_RE.search(text, max(0, start - 8), start):
            continue  # "京公网安备11010502030143号": a Chinese site registration number
        if len(digits) <= 15 and _phone_labelled(text, start):
            continue  # "Fax: 00902125551235": the phone finder takes it
        out.append(PiiSpan(start, start + len(s), "card"))
    return out


def _timestamp_like(digits: str) -> bool:
    """``YYYYMMDDhhmmss`` with a year 1990-2039 and a valid month, day and time."""
    year, month, day = int(digits[:4]), int(digits[4:6]), int(digits[6:8])
    hour, minute, second = int(digits[8:10]), int(digits[10:12]), int(digits[12:14])
    return (
        1990 <= year <= 2039
        and 1 <= month <= 12
        and 1 <= day <= 31
        and hour <= 23
        and minute <= 59
        and second <= 59
    )


# ----------------------------------------------------------------------------------------------
# iban
# ----------------------------------------------------------------------------------------------

# Registered IBAN lengths per country (SWIFT IBAN registry).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip

# Candidates: a country code and check digits at a word start, then up to 30 letters/digits,
# each optionally after one space. The run may swallow the word after the IBAN ("... 1332
# today"); ``_iban_end`` cuts it at the country's registered length, so no backtracking over
# group counts is needed. Each try reads at most ~64 characters, so the scan stays linear.
_IBAN_CANDIDATE_RE = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){11,30}")
_ALNUM_RE = re.compile(r"[A-Za-z0-9]")


def _iban_end(text: str, start: int, candidate: str) -> int | None:
    """End of the IBAN-shaped string at ``start``, or None when there is none.

    IBAN-shaped: a registered country code, two digits and exactly the country's registered
    number of characters, compact (``ES9121000418450200051332``) or in groups of four separated
    by single spaces with a shorter last group (``DE89 3704 0044 0532 0130 00``), followed by
    a character that is not a letter or digit. The checksum is not looked at here.
    """
    length = IBAN_LENGTHS.get(candidate[:2].upper())
    if length is None:
        return None
    tokens = candidate.split(" ")
    if len(tokens[0]) == length:  # compact
        end = start + length
    elif len(tokens[0]) == 4:  # grouped: 4 + 4 + ... + last (1-4)
        rest = length - 4
        n_groups = (rest + 3) // 4
        if len(tokens) <= n_groups:
            return None
        groups = tokens[1 : n_groups + 1]
        if any(len(g) != 4 for g in groups[:-1]) or len(groups[-1]) != rest - 4 * (n_groups - 1):
            return None
        end = start + 4 + sum(len(g) + 1 for g in groups)
    else:
        return None
    if end < len(text) and _ALNUM_RE.match(text, end):
        return None  # the run goes on: "DE89 3704 0044 0532 0130 0012" is no German IBAN
    return end


def iban_shapes(text: str) -> list[tuple[int, int, bool]]:
    """``(start, end, checksum_ok)`` of every IBAN-shaped string in ``text`` (see ``_iban_end``)."""
    out: list[tuple[int, int, bool]] = []
    pos = 0
    while True:
        m = _IBAN_CANDIDATE_RE.search(text, pos)
        if m is None:
            return out
        end = _iban_end(text, m.start(), m.group(0))
        if end is None:
            pos = m.start() + 1  # a later word of the run may start an IBAN of its own
            continue
        out.append((m.start(), end, iban_valid(text[m.start() : end])))
        pos = end


def iban_valid(iban: str) -> bool:
    """Registered length for the country and ISO 7064 mod-97 checksum equal to 1."""
    s = iban.replace(" ", "").upper()
    if IBAN_LENGTHS.get(s[:2]) != len(s) or not s.isalnum() or not s.isascii():
        return False
    rearranged = s[4:] + s[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def find_ibans(text: str) -> list[PiiSpan]:
    """IBANs (valid checksum), compact or printed in groups of four, upper or lower case."""
    return [PiiSpan(s, e, "iban") for s, e, ok in iban_shapes(text) if ok]


# ----------------------------------------------------------------------------------------------
# phone
# ----------------------------------------------------------------------------------------------

# Letters of scripts written without spaces (CJK, kana, Hangul): a number glued to them still
# starts or ends there ("手机13800138000", "8000转123"); one glued to a Latin letter or a digit
# does not ("A4-1234567", "12345678th").
_CJK = "\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff"
_WORD_NOT_CJK = rf"[^\W{_CJK}]"

_PHONE_RE = re.compile(
    # Every match starts with a digit, "+" or "(": saying so first lets the engine skip all
    # other positions at once instead of trying the look-behinds there (4x faster scan).
    r"(?=[\d+(])"
    # A start: not glued to a (non-CJK) word character, a "+" or "x-"/"x."; or a "+" glued to
    # CJK text or to a label's "." or ":" ("手机+86 ...", "Tel.+90 ...").
    rf"(?:(?<!{_WORD_NOT_CJK})(?<!\+)(?<!\w[-.])|(?<=[{_CJK}])(?=\+)|(?<=[^\W\d_][.:])(?=\+))"
    r"(?P<intl>(?:(?:\+|00)[1-9]\d{0,2}|\((?:\+|00)[1-9]\d{0,2}\))[ .-]?)?"
    r"(?P<trunk>\(0\)[ .-]?)?"
    r"(?P<area>\(\d{1,5}\)[ .-]?)?"
    r"(?P<body>\d{1,15}(?:[ .-]\d{1,8}){0,6})"
    r"(?P<ext> ?(?:x|ext\.?|extension) ?\d{1,6})?"
    rf"(?!{_WORD_NOT_CJK}|[.-]\d)",
    re.IGNORECASE,
)
# Words of scripts without spaces have no \b around them ("监督电话：", "联系电话13800138000").
_CJK_PHONE_WORDS = (
    r"电话|電話|手机|手機|传真|傳真|联系方式|联系|聯繫|热线|熱線|携帯|전화|휴대폰|팩스|연락처"
)
_PHONE_CONTEXT_RE = re.compile(
    r"\b(?:phone|phones|telephone|tel|tlf|call|called|calling|mobile|mob|cell|cellphone|fax|"
    r"desk|office|contact|whatsapp|sms|text|dial|hotline|helpline|reach|answering|messages?|"
    r"ring|ph|landline|gsm|cep|handy|telefon|telefono|teléfono|téléphone|tél|телефон|тел)\b|"
    + _CJK_PHONE_WORDS,
    re.IGNORECASE,
)
# A label right before the number ("Tel:", "Fax.", "Phone no.", "电话："): whatever its shape,
# a 7-15 digit number there is a phone (E.164 allows 15 digits), not a card.
_PHONE_LABEL_BEFORE_RE = re.compile(
    r"(?:\b(?:phone|telephone|tel|tlf|ph|fax|mobile|mob|cell|cellphone|gsm|cep|handy|telefon|"
    r"telefono|teléfono|téléphone|tél|whatsapp|телефон|тел)\.?|" + _CJK_PHONE_WORDS + r")"
    r"\s{0,2}(?:\(\w{1,10}\)\s{0,2})?(?:no\.?|nr\.?|number|#)?\s{0,2}[:：.]?\s{0,3}$",
    re.IGNORECASE,
)
# Identifier words that make a weakly shaped number something other than a phone.
_NOT_PHONE_CONTEXT_RE = re.compile(
    r"\b(?:licen[cs]e|passport|account|acct|invoice|order|tracking|reference|ref|routing|"
    r"ssn|social security|card|serial|isbn|id|tin|tax|vat|ein|patient|policy)\b",
    re.IGNORECASE,
)
_CURRENCY = "$€£¥₹₽₩¢"
_DATE_SEPARATORS = frozenset("-./")
_US_STATE_BEFORE_RE = re.compile(
    r"\b(?:A[KLRSZ]|C[AOT]|D[CE]|FL|G[AU]|HI|I[ADLN]|K[SY]|LA|M[ADEINOPST]|N[CDEHJMVY]|O[HKR]|"
    r"P[AR]|RI|S[CD]|T[NX]|UT|V[AIT]|W[AIVY])\.?,?\s{1,2}$"
)
_MONTH_BEFORE_RE = re.compile(
    r"\b(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?,?\s{1,2}$",
    re.IGNORECASE,
)
_PHONE_LABEL_AFTER_RE = re.compile(
    r" ?\((?:tel|phone|fax|mobile|mob|cell|office|home|work|voice|whatsapp)\b[^()\n]{0,12}\)",
    re.IGNORECASE,
)
# "17031 2202 Rissik St": house and street numbers before a street name.
_STREET_AFTER_RE = re.compile(
    r"\s{1,2}(?:[A-Z][\w'-]{1,20}\s){1,2}(?:St|Street|Ave|Avenue|Rd|Road|Blvd|Boulevard|Ln|Lane|"
    r"Dr|Drive|Way|Ct|Court|Pl|Place|Hwy|Highway)\b"
)
_CLOCK_AFTER_RE = re.compile(r":[0-5]\d(?!\d)")
_ISSN_WORD_RE = re.compile(r"issn", re.IGNORECASE)
_RFC_BEFORE_RE = re.compile(r"\brfc\s?$", re.IGNORECASE)


def _plausible_date(groups: list[str]) -> bool:
    if len(groups) != 3:
        return False
    a, b, c = (int(g) for g in groups)
    la, lc = len(groups[0]), len(groups[2])
    if la == 4 and len(groups[1]) <= 2 and lc <= 2:
        return 1000 <= a <= 2999 and 1 <= b <= 12 and 1 <= c <= 31
    if lc == 4 and la <= 2 and len(groups[1]) <= 2:
        return 1000 <= c <= 2999 and (
            (1 <= a <= 31 and 1 <= b <= 12) or (1 <= a <= 12 and 1 <= b <= 31)
        )
    return False


def _year_like(group: str) -> bool:
    return len(group) == 4 and 1800 <= int(group) <= 2099


def issn_valid(digits: str) -> bool:
    """The ISSN check digit (mod 11, weights 8..2) of an 8-digit ISSN without an ``X``."""
    if len(digits) != 8 or not digits.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(digits[:7], range(8, 1, -1), strict=True))
    return (11 - total % 11) % 11 == int(digits[7])


class _ContextIndex:
    """Positions of phone words in a text, found once (lazily) and queried by window."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._starts: list[int] | None = None
        self._ends: list[int] = []

    def _index(self) -> tuple[list[int], list[int]]:
        if self._starts is None:
            matches = list(_PHONE_CONTEXT_RE.finditer(self.text))
            self._starts = [m.start() for m in matches]
            self._ends = [m.end() for m in matches]
        return self._starts, self._ends

    def before(self, start: int) -> bool:
        """Is there a phone word ending in the 40 characters before ``start``?"""
        _, ends = self._index()
        i = bisect_left(ends, start - 40)
        return i < len(ends) and ends[i] <= start

    def near(self, start: int, end: int) -> bool:
        """Is there a phone word ending in the 40 chars before, or starting in the 25 after?"""
        if self.before(start):
            return True
        starts, _ = self._index()
        j = bisect_left(starts, end)
        return j < len(starts) and starts[j] < end + 25


_PHONE_SEP_RE = re.compile(r"[ .-]")
_NON_DIGIT_RE = re.compile(r"\D")
_ISBN_BEFORE_RE = re.compile(r"is[bs]n[\s:-]{0,3}$", re.IGNORECASE)


def _phone_labelled(text: str, start: int) -> bool:
    """Is the number at ``start`` right after a phone label ("Tel:", "Fax no.", "电话：")?"""
    return _PHONE_LABEL_BEFORE_RE.search(text, max(0, start - 32), start) is not None


def _not_phone_by_neighbours(
    text: str, m: re.Match[str], groups: list[str], seps: set[str]
) -> bool:
    """Shapes that are something else because of what surrounds them (dates, ZIP+4, ISSNs...)."""
    start = m.start()
    lens = [len(g) for g in groups]
    if _ISBN_BEFORE_RE.search(text, max(0, start - 8), start):
        return True
    zip4 = lens == [5, 4] and seps == {"-"}
    if zip4 and _US_STATE_BEFORE_RE.search(text, max(0, start - 6), start):
        return True  # "Sausalito, CA 94965-2100": a US ZIP+4 code
    issn = lens == [4, 4] and seps <= {"-", " "} and issn_valid("".join(groups))
    if issn and _ISSN_WORD_RE.search(text, max(0, start - 60), start):
        return True  # "ISSN: 0003-6439" and the ISSNs listed after it
    year_hour = len(groups) >= 2 and len(groups[-1]) <= 2 and _year_like(groups[-2])
    if year_hour and _CLOCK_AFTER_RE.match(text, m.end()):
        return True  # "19 2001 01:21PM": a day, a year and an hour
    day_first = len(groups) >= 2 and len(groups[0]) <= 2 and 1 <= int(groups[0]) <= 31
    if day_first and _MONTH_BEFORE_RE.search(text, max(0, start - 12), start):
        return True  # "Jul 19 2001 ...": a date
    if _STREET_AFTER_RE.match(text, m.end()):
        return True  # "17031 2202 Rissik St": an address
    return _RFC_BEFORE_RE.search(text, max(0, start - 5), start) is not None


def _is_phone(text: str, m: re.Match[str], context: _ContextIndex) -> bool:
    if m.end() - m.start() < 7:
        return False  # fewer than 7 characters cannot hold 7 digits
    body = m.group("body")
    intl = m.group("intl")
    area = m.group("area")
    body_seps = _PHONE_SEP_RE.findall(body)
    groups = _PHONE_SEP_RE.split(body)
    seps = set(body_seps)
    area_digits = area.strip("() .-") if area else ""
    if area_digits:
        groups = [area_digits, *groups]
    digits = "".join(groups)
    n_intl = len(_NON_DIGIT_RE.sub("", intl or "").removeprefix("00"))
    n = len(digits) + n_intl
    if not 7 <= n <= 15:
        return False
    glued = m.start() > 0 and text[m.start() - 1].isalpha()
    if glued and not intl and not _phone_labelled(text, m.start()):
        return False  # "沪ICP备12345678号", "共12345678人": glued to a word that is no label
    before = text[max(0, m.start() - 2) : m.start()].strip()
    if before and before[-1] in _CURRENCY:
        return False
    after = text[m.end() : m.end() + 2].lstrip()
    if after[:1] in ("%", ",") and after[1:2].isdigit():
        return False  # "1 234,56" / "12 345%": a formatted number, not a phone
    if intl:
        # "00" as an international prefix only counts when the number is grouped ("0044 20 ...")
        # or labelled ("Tel: 00442079460958"): a bare run of digits starting with 00 is just a
        # number.
        grouped = len(groups) > 1 or intl[-1] in " .-" or intl.startswith("(")
        return len(digits) >= 6 and ("+" in intl or grouped or _phone_labelled(text, m.start()))
    if (
        not area
        and len(groups) >= 3
        and _plausible_date(groups[:3])
        and set(body_seps[:2]) <= _DATE_SEPARATORS
    ):
        return False  # a date, possibly followed by a time
    # The neighbour checks only ever reject, and cost a few look-ups: ask them last.
    return _national_phone(text, m, context, groups, seps) and not _not_phone_by_neighbours(
        text, m, groups, seps
    )


def _national_phone(
    text: str, m: re.Match[str], context: _ContextIndex, groups: list[str], seps: set[str]
) -> bool:
    """The shape rules for a number without an international prefix (area code first)."""
    area_digits = groups[0] if m.group("area") else ""
    digits = "".join(groups)
    ext = m.group("ext")
    lens = [len(g) for g in groups]
    if lens == [3, 2, 4] and seps == {"-"}:
        return False  # US social security number shape
    hyphen_isbn = len(digits) in (10, 13) and seps == {"-"} and len(groups) in (4, 5)
    if hyphen_isbn and (digits.startswith(("978", "979")) or (len(groups) == 4 and lens[-1] == 1)):
        return False  # ISBN-13 / ISBN-10 with hyphens
    if area_digits and _year_like(area_digits):
        return False  # "62 years (1935) 120": a year in parentheses, not an area code
    if area_digits and len(groups) >= 2:
        return True
    has_context = context.near(m.start(), m.end())
    if not has_context and _NOT_PHONE_CONTEXT_RE.search(text, max(0, m.start() - 30), m.start()):
        return False  # "my ssn is 078-051121", "licence number 2270-66-1551"
    if groups[0].strip("0") == "":
        return False  # an all-zero leading group is padding, not an area code
    if ext and len(groups) >= 3:
        return True
    nanp = lens in ([3, 3, 4], [1, 3, 3, 4]) and (lens[0] == 3 or groups[0] == "1")
    if len(seps) <= 1 and nanp and groups[-3][0] in "23456789":
        return True  # NANP: area code starts 2-9
    trunk_shape = len(seps) <= 1 and groups[0].startswith("0") and len(groups[0]) >= 2
    if trunk_shape and len(groups) >= 2 and 9 <= len(digits) <= 12 and max(lens) <= 8:
        return True  # national number with trunk prefix 0
    # Weaker shapes need a phone word nearby.
    if not has_context:
        return False
    if len(groups) == 1:
        # A bare run of digits needs the word before it ("Fax: 9498777106") or a label in
        # parentheses right after it ("9498777106 (fax)"): a word further after is often the
        # next table cell's ("| 481702879 | Home Office").
        if _phone_labelled(text, m.start()):
            return 7 <= len(digits) <= 15
        label_after = _PHONE_LABEL_AFTER_RE.match(text, m.end()) is not None
        return 7 <= len(digits) <= 12 and (label_after or context.before(m.start()))
    if seps == {"."} and len(groups) < 3:
        return False  # a decimal number
    if seps == {" ", "-"}:
        # "RFC 5971 0-63", "4443 0-127": a number and a range; phone groups have 2+ digits
        return all(len(g) >= 2 for g in groups[1:])
    return len(seps) <= 1


def find_phones(text: str) -> list[PiiSpan]:
    """Phone numbers (see the module docstring for the accepted shapes)."""
    context = _ContextIndex(text)
    return [
        PiiSpan(m.start(), m.end(), "phone")
        for m in _PHONE_RE.finditer(text)
        if _is_phone(text, m, context)
    ]


# ----------------------------------------------------------------------------------------------
# scrubbing
# ----------------------------------------------------------------------------------------------

_MAX_PASSES = 16

_FINDERS = {
    "email": find_emails,
    "iban": find_ibans,
    "card": find_cards,
    "ip": find_ips,
    "phone": find_phones,
}


def find_pii(text: str, kinds: tuple[PiiKind, ...] = PII_KINDS) -> list[PiiSpan]:
    """Non-overlapping PII spans in ``text`` sorted by position; earlier kinds win overlaps.

    An IBAN-shaped string whose checksum fails (or any IBAN while ``iban`` is off) is left
    whole: it blocks the later kinds, so its digits never turn into a card or a phone number.
    """
    taken_starts: list[int] = []
    taken: list[tuple[int, int, PiiKind | None]] = []  # kind None: left alone on purpose

    def take(start: int, end: int, kind: PiiKind | None) -> None:
        i = bisect_left(taken_starts, start)
        if i > 0 and taken[i - 1][1] > start:
            return
        if i < len(taken) and taken[i][0] < end:
            return
        taken_starts.insert(i, start)
        taken.insert(i, (start, end, kind))

    for kind in PII_KINDS:
        if kind == "iban":
            if "iban" in kinds or "card" in kinds or "phone" in kinds:
                for start, end, ok in iban_shapes(text):
                    take(start, end, "iban" if ok and "iban" in kinds else None)
            continue
        if kind in kinds:
            for span in _FINDERS[kind](text):
                take(span.start, span.end, span.kind)
    return [PiiSpan(start, end, kind) for start, end, kind in taken if kind is not None]


def _replace(
    text: str, spans: list[PiiSpan], placeholders: dict[str, str], counts: dict[str, int]
) -> str:
    parts: list[str] = []
    pos = 0
    for s in spans:
        parts.append(text[pos : s.start])
        parts.append(placeholders[s.kind])
        counts[s.kind] += 1
        pos = s.end
    parts.append(text[pos:])
    return "".join(parts)


def scrub(
    text: str, kinds: tuple[PiiKind, ...] = PII_KINDS, placeholders: dict[str, str] | None = None
) -> tuple[str, dict[str, int]]:
    """Replace PII in ``text`` with placeholders; returns the new text and counts per kind.

    A replacement can expose a new match (in ``2606:4700::1111a@b.com`` the email wins, which
    leaves ``2606:4700::`` standing as an address), so text that changed is scanned again until
    nothing is found (at most ``_MAX_PASSES`` passes, so a placeholder that itself looks like
    PII cannot loop forever); the output then holds nothing the detectors would find.
    """
    ph = placeholders or DEFAULT_PLACEHOLDERS
    counts: dict[str, int] = dict.fromkeys(kinds, 0)
    for _ in range(_MAX_PASSES):
        spans = find_pii(text, kinds)
        if not spans:
            break
        text = _replace(text, spans, ph, counts)
    return text, counts


class PiiScrubber(Stage):
    """Replace PII with typed placeholders; never drops. Counts ``pii_<kind>`` per replacement."""

    name: ClassVar[str] = "pii"
    REASONS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: PiiConfig | None = None) -> None:
        self.config = config or PiiConfig()
        self._kinds = self.config.kinds()

    def process(self, doc: Document) -> Document | Reject:
        if not self._kinds or not doc.text:
            return doc
        doc.text, counts = scrub(doc.text, self._kinds, self.config.placeholders)
        for kind, n in counts.items():
            self.count(f"pii_{kind}", n)
        return doc
