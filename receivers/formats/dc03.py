"""SIA DC-03 ("SIA format") data blocks as carried in a DC-09 ``SIA-DCS`` data field.

The field holds blocks separated by ``|``; each starts with a function code:

- ``#acct``: the account ID block;
- ``N`` (new event) / ``O`` (old event) information blocks: modifiers, then events, e.g.
  ``Nri1/BA003``. A modifier is two lower-case letters and a value (``ri`` area, ``id`` user,
  ``ti`` time, ``da`` date, ``pi`` peripheral, ``ai``, ``ph``, ``lv``, ``va``, ``pt``, ``rg``,
  ``ss``) and applies to every event after it in the block. An event is two upper-case letters
  and an optional decimal address. Packets are separated by ``/`` but the separator is optional
  (``Nri2ti04:42:14OP14``), several events may share a block (``Nri1/BA003/BA004``), ``^text^``
  describes the event before it and ``*'text'NM`` is X-SIA text (Osborne-Hoffman panels);
- ``A`` text blocks (``|ASectie uit``);
- other function codes (environmental, control, program, ...), which Kuzet does not decode.

Tolerated deviations seen in the field: no ``#acct`` block, an empty first block (``|Nri1/CL501``),
an information block without the ``N`` (``ri1/BA003`` or a bare ``BA003``).

The parser is a single left-to-right scan (no regular expressions): pysiaalarm's single regex is
why ``Npi0/AT`` came out as code ``pi`` and ``ri2ti04:42:14OP5`` as code ``ti``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Known DC-03 modifiers, for documentation and display; unknown two-letter modifiers are kept too.
MODIFIERS: dict[str, str] = {
    "ri": "area",
    "id": "user",
    "ti": "time",
    "da": "date",
    "pi": "peripheral",
    "ai": "automated ID",
    "ph": "telephone",
    "lv": "level",
    "va": "value",
    "pt": "path",
    "rg": "route group",
    "ss": "sub-subscriber",
}

_VALUE_CHARS = frozenset("0123456789:-.+")  # a modifier value: digits, hh:mm:ss, MM-DD-YY, 1.5
_QUOTES = "'\u2018\u2019\"`"  # X-SIA text quotes; field captures show typographic ones too
_EMPTY: dict[str, str] = {}


@dataclass(slots=True)
class Dc03Event:
    code: str  # two upper-case letters, e.g. "BA"
    address: str = ""  # zone, user or area number as sent ("003"); "" if the event has none
    # Modifiers in force for this event. Events of one block share the dict object until a
    # modifier changes; the parser never mutates a dict it has handed out.
    modifiers: dict[str, str] = field(default_factory=dict)
    text: str = ""  # ^text^ or X-SIA text following the event
    old: bool = False  # from an "O" (old event) block

    @property
    def area(self) -> str:
        return self.modifiers.get("ri", "")

    @property
    def user(self) -> str:
        return self.modifiers.get("id", "")


@dataclass(slots=True)
class Dc03Data:
    account: str = ""  # from the "#acct" block, upper-case; "" if absent
    events: list[Dc03Event] = field(default_factory=list)
    text: str = ""  # "A" text blocks (and stray ^text^), joined by a space
    ignored: list[str] = field(default_factory=list)  # blocks with function codes not decoded


def split_blocks(data: str) -> list[str]:
    """Split on ``|``, except inside ``^text^`` (a description may contain a bar)."""
    if "^" not in data:
        return data.split("|")
    blocks: list[str] = []
    start = 0
    in_text = False
    for i, c in enumerate(data):
        if c == "^":
            in_text = not in_text
        elif c == "|" and not in_text:
            blocks.append(data[start:i])
            start = i + 1
    blocks.append(data[start:])
    return blocks


def _is_upper(c: str) -> bool:
    return "A" <= c <= "Z"


def _is_bare_event(block: str) -> bool:
    """``BA003``, ``NL501``, ``OP14``, ``AT``: a block that is an event without a function code.

    Checked before the function code, so ``NL501`` is event NL zone 501 (not N + "L501") and
    ``AT`` is the AC-trouble event (not a text block "T").
    """
    n = len(block)
    if n < 2 or not (_is_upper(block[0]) and _is_upper(block[1])):
        return False
    j = 2
    while j < n and "0" <= block[j] <= "9":
        j += 1
    return j == n or block[j] in "^/*"


def _xsia(s: str, i: int) -> tuple[int, str]:
    """X-SIA text ``*'text'NM`` starting at ``s[i] == '*'``; return (next index, text)."""
    n = len(s)
    j = i + 1
    while j < n and s[j] in _QUOTES:
        j += 1
    k = j
    while k < n and s[k] not in _QUOTES and s[k] != "/":
        k += 1
    text = s[j:k]
    closed = k < n and s[k] in _QUOTES
    while k < n and s[k] in _QUOTES:
        k += 1
    if closed:
        if s.startswith("NM", k):
            k += 2
    elif text.endswith("NM"):  # "*'NM" with the closing quote lost in transit
        text = text[:-2]
    return k, text.strip()


def parse_information(content: str, old: bool, out: list[Dc03Event]) -> str:
    """Parse the content of an information block (after ``N``/``O``), appending its events to
    `out`; return text that belongs to no event (``^text^`` before the first event)."""
    mods = _EMPTY
    last: Dc03Event | None = None
    stray: list[str] = []
    i = 0
    n = len(content)
    while i < n:
        c = content[i]
        if "a" <= c <= "z":
            if i + 1 < n and "a" <= content[i + 1] <= "z":
                j = i + 2
                while j < n and content[j] in _VALUE_CHARS:
                    j += 1
                # A new dict, so events already emitted keep the modifiers they had.
                mods = {**mods, content[i : i + 2]: content[i + 2 : j]}
                i = j
            else:
                i += 1
        elif _is_upper(c):
            if i + 1 < n and _is_upper(content[i + 1]):
                j = i + 2
                while j < n and "0" <= content[j] <= "9":
                    j += 1
                last = Dc03Event(content[i : i + 2], content[i + 2 : j], mods, "", old)
                out.append(last)
                # "OP001NM": the "NM" closing an X-SIA text whose "*'text'" was lost, not an event
                # (the NM event, perimeter armed, would stand in a packet of its own).
                if j > i + 2 and content.startswith("NM", j) and (j + 2 == n or content[j + 2] == "/"):
                    j += 2
                i = j
            else:
                i += 1
        elif c == "^":
            k = content.find("^", i + 1)
            if k < 0:
                k = n
            text = content[i + 1 : k].strip()
            i = k + 1
            if last is not None and not last.text:
                last.text = text
            elif text:
                stray.append(text)
        elif c == "*":
            i, text = _xsia(content, i)
            if last is not None and not last.text:
                last.text = text
            elif text:
                stray.append(text)
        else:
            i += 1  # "/" packet separators, spaces and anything unknown
    return " ".join(stray)


def parse_dc03(data: str) -> Dc03Data:
    """Parse a SIA-DCS data field (without the brackets). Never raises; the caller decides what
    an empty `events` list means."""
    result = Dc03Data()
    texts: list[str] = []
    for block in split_blocks(data):
        if not block:
            continue
        fc = block[0]
        if fc == "#":
            if not result.account:
                result.account = block[1:].strip().upper()
            continue
        if _is_bare_event(block):
            stray = parse_information(block, False, result.events)
        elif fc == "N" or fc == "O":
            stray = parse_information(block[1:], fc == "O", result.events)
        elif "a" <= fc <= "z":  # modifiers without the leading "N"
            stray = parse_information(block, False, result.events)
        elif fc == "A":
            stray = block[1:].strip()
        else:
            result.ignored.append(block)
            continue
        if stray:
            texts.append(stray)
    result.text = " ".join(texts)
    return result
