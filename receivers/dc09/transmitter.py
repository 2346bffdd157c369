"""The panel side of SIA DC-09, sans-IO: build event and NULL frames, parse the receiver's replies.

Used by the panel simulator, the benchmark and the tests. It can also imitate the quirks of real
senders (binary CRC, CRC over body + CR, hex sequence numbers, lower-case ciphertext, no ``|``
after the pad) so the receiver can be tested against them.

    tx = Transmitter("1234", key=bytes.fromhex("00" * 16))
    wire = tx.sia("BA", "003", area="1")        # bytes to send
    reply = tx.parse_reply(answer_bytes)         # Reply(kind="ACK", ...)
    tx.handle(reply)                             # learns the receiver clock from a NAK
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from receivers.dc09.codec import (
    aes_decrypt,
    crc16,
    encrypt_content,
    format_timestamp,
    frame,
    parse_tail,
    parse_timestamp,
    strip_pad,
    utcnow,
)

_HEX = frozenset(b"0123456789ABCDEFabcdef")
_ALNUM = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_UNSAFE = str.maketrans({"|": " ", "[": "(", "]": ")", "^": " ", "\r": " ", "\n": " "})


class ReplyError(ValueError):
    """The bytes are not a well-formed DC-09 reply (the message says why)."""


@dataclass(frozen=True, slots=True)
class Reply:
    kind: str  # "ACK", "NAK", "DUH", "RSP" (the token without "*")
    encrypted: bool
    sequence: str
    receiver_no: str | None  # None when the reply has no R field
    line_no: str | None  # None when the reply has no L field
    account: str  # "" for the NAK's "A0" form
    timestamp: datetime | None
    xdata: dict[str, str] = field(default_factory=dict)
    binary_crc: bool = False
    raw: bytes = b""
    # Deviations from DC-09 §1.10 seen in the reply, e.g. pysiaalarm's literal "None" or its
    # swapped "L0R0"; a strict panel would refuse such a reply.
    issues: tuple[str, ...] = ()

    def acknowledges(self, sequence: str, account: str) -> bool:
        """An ACK for exactly this message (what a panel checks before dropping it)."""
        return self.kind == "ACK" and self.sequence == sequence and self.account.upper() == account.upper()


def _run(b: bytes, i: int, allowed: frozenset[int]) -> int:
    while i < len(b) and b[i] in allowed:
        i += 1
    return i


def parse_reply(raw: bytes, key: bytes | None = None) -> Reply:
    """Parse a receiver reply (ACK, *ACK, NAK, DUH, RSP). `key` decrypts a ``*ACK``.

    Raises `ReplyError` for anything that is not a complete, CRC-correct framed reply: a panel
    must not take a broken reply (or pysiaalarm's bare ``"NAK"``) for an acknowledgement.
    """
    raw = bytes(raw).rstrip(b"\x00")
    if len(raw) < 12 or raw[0] != 0x0A or raw[-1] != 0x0D:
        raise ReplyError(f"not a framed reply (LF ... CR): {raw[:40]!r}")
    if raw[7] == 0x22:
        binary = True
        crc_sent = (raw[1] << 8) | raw[2]
        lenf, body = raw[3:7], raw[7:-1]
    elif raw[9] == 0x22:
        binary = False
        try:
            crc_sent = int(raw[1:5], 16)
        except ValueError:
            raise ReplyError(f"CRC field {raw[1:5]!r} is not hex") from None
        lenf, body = raw[5:9], raw[9:-1]
    else:
        raise ReplyError("no DC-09 header")
    if not (len(lenf) == 4 and set(lenf) <= _HEX) or int(lenf, 16) != len(body):
        raise ReplyError(f"length field {lenf!r} does not match the body ({len(body)} bytes)")
    crc = crc16(body)
    if crc != crc_sent:
        raise ReplyError(f"CRC {crc_sent:04X} sent, {crc:04X} computed")

    q = body.find(b'"', 1)
    if q < 0:
        raise ReplyError("ID token not closed")
    token = body[1:q].decode("latin-1")
    encrypted = token.startswith("*")
    kind = token.lstrip("*")
    if kind not in ("ACK", "NAK", "DUH", "RSP"):
        raise ReplyError(f"{token!r} is not a receiver reply")
    seq = body[q + 1 : q + 5]
    if len(seq) != 4 or not set(seq) <= _HEX:
        raise ReplyError(f"sequence {seq!r} is not 4 digits")
    lb = body.find(b"[", q + 5)
    if lb < 0:
        raise ReplyError("no data field '['")

    # Header fields in any order, so that buggy replies can be recognised and named.
    hdr = body[q + 5 : lb]
    issues: list[str] = []
    if b"#" not in hdr:
        # The NAK's "A0" replaces "#acct"; "A" is also a hex digit, so cut it off before the
        # R/L values are read ("R0L0A0" is R "0", L "0", not L "0A0").
        a = hdr.rfind(b"A")
        if a > 0 and hdr[a + 1 :].isdigit():
            hdr = hdr[:a]
    receiver: str | None = None
    line: str | None = None
    account = ""
    i = 0
    while i < len(hdr):
        c = hdr[i : i + 1]
        if hdr.startswith(b"None", i):
            issues.append("literal 'None' in the header")
            i += 4
        elif c in (b"R", b"L"):
            j = _run(hdr, i + 1, _HEX)
            value = hdr[i + 1 : j].decode()
            if c == b"R":
                receiver = value
                if line is not None:
                    issues.append("L before R")
            else:
                line = value
            i = j
        elif c == b"#":
            j = _run(hdr, i + 1, _ALNUM)
            account = hdr[i + 1 : j].decode()
            i = j
        else:
            raise ReplyError(f"unexpected header byte {c!r} in {hdr!r}")
    if line is None:
        issues.append("no L field")

    if encrypted:
        if key is None:
            raise ReplyError("encrypted reply but no key")
        hx = body[lb + 1 :]
        try:
            plain = aes_decrypt(key, bytes.fromhex(hx.decode("latin-1")))
        except ValueError as exc:
            raise ReplyError(f"cannot decrypt the reply: {exc}") from None
        content = strip_pad(plain)
    else:
        content = body[lb + 1 :]
    end = content.find(b"]")
    if end < 0:
        raise ReplyError("data field not closed (wrong key?)" if encrypted else "data field not closed")
    if end > 0:
        issues.append("data in a reply")
    xdata, ts, err = parse_tail(content, end + 1, encrypted)
    if err:
        raise ReplyError(err)
    stamp = None
    if ts is not None:
        stamp = parse_timestamp(ts)
        if stamp is None:
            raise ReplyError(f"malformed timestamp {ts!r}")
    if kind == "NAK" and stamp is None:
        issues.append("NAK without timestamp")
    if encrypted and stamp is None:
        raise ReplyError("encrypted reply without timestamp")
    return Reply(kind, encrypted, seq.decode(), receiver, line, account, stamp, xdata, binary, raw,
                 tuple(issues))


def build_message(
    token: str,
    data: str = "",
    *,
    sequence: str,
    account: str | None,
    line_no: str | None = "0",
    receiver_no: str | None = None,
    key: bytes | None = None,
    xdata: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    timestamp: datetime | None = None,
    binary_crc: bool = False,
    crc_includes_cr: bool = False,
    lower_hex: bool = False,
    pad_bar: bool = True,
) -> bytes:
    """One framed DC-09 message. `token` without "*": a `key` makes it encrypted.

    `pad_bar=False` omits the "|" after the pad when the data is empty, as siadc09 and Ajax do.
    """
    items = xdata.items() if isinstance(xdata, Mapping) else xdata
    tail = b"".join(b"[" + k.encode() + v.encode() + b"]" for k, v in items)
    if timestamp is not None:
        tail += b"_" + format_timestamp(timestamp)
    head = (
        sequence.encode()
        + (b"R" + receiver_no.encode() if receiver_no is not None else b"")
        + (b"L" + line_no.encode() if line_no is not None else b"")
        + (b"#" + account.encode() if account is not None else b"")
    )
    content = data.encode() + b"]" + tail
    if key is not None:
        bar = pad_bar or bool(data)
        body = b'"*' + token.encode() + b'"' + head + b"[" + encrypt_content(
            key, content, bar=bar, upper=not lower_hex)
    else:
        body = b'"' + token.encode() + b'"' + head + b"[" + content
    return frame(body, binary_crc=binary_crc, crc_includes_cr=crc_includes_cr)


class Transmitter:
    """A panel's DC-09 dialler state: account, key, sequence numbers, clock correction."""

    def __init__(
        self,
        account: str,
        *,
        key: bytes | None = None,
        receiver_no: str | None = None,
        line_no: str | None = "0",
        timestamps: bool = True,
        binary_crc: bool = False,
        crc_includes_cr: bool = False,
        hex_sequence: bool = False,
        lower_hex: bool = False,
        pad_bar: bool = True,
        clock: Callable[[], datetime] = utcnow,
        sequence: int = 0,
    ) -> None:
        self.account = account
        self.key = key
        self.receiver_no = receiver_no
        self.line_no = line_no
        self.timestamps = timestamps  # plain messages carry one too (encrypted ones always do)
        self.binary_crc = binary_crc
        self.crc_includes_cr = crc_includes_cr  # Eldes
        self.hex_sequence = hex_sequence  # dc09-spt 0.0.4
        self.lower_hex = lower_hex  # siadc09
        self.pad_bar = pad_bar
        self.clock = clock
        self.offset = timedelta()  # receiver clock minus ours, learned from NAKs
        self.sequence = sequence  # the last sequence number used
        self.last_sequence = ""  # as sent, to match the reply

    def now(self) -> datetime:
        return self.clock() + self.offset

    def next_sequence(self) -> str:
        """0001 ... 9999, then 0001 again (0000 is left to NULL-only senders)."""
        self.sequence = self.sequence % 9999 + 1
        return f"{self.sequence:04X}" if self.hex_sequence else f"{self.sequence:04d}"

    def message(
        self,
        token: str,
        data: str = "",
        *,
        xdata: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        sequence: str | None = None,
        timestamp: datetime | bool | None = None,
    ) -> bytes:
        """A framed message; `timestamp` None means the transmitter's policy, False none."""
        if sequence is None:
            sequence = self.next_sequence()
        self.last_sequence = sequence
        if timestamp is None:
            timestamp = self.timestamps or self.key is not None
        stamp = self.now() if timestamp is True else (timestamp or None)
        return build_message(
            token, data, sequence=sequence, account=self.account, line_no=self.line_no,
            receiver_no=self.receiver_no, key=self.key, xdata=xdata, timestamp=stamp,
            binary_crc=self.binary_crc, crc_includes_cr=self.crc_includes_cr,
            lower_hex=self.lower_hex, pad_bar=self.pad_bar)

    def sia(
        self,
        code: str,
        zone: str = "",
        *,
        area: str = "",
        user: str = "",
        text: str = "",
        xdata: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        sequence: str | None = None,
        timestamp: datetime | bool | None = None,
    ) -> bytes:
        """One SIA-DCS event: ``#acct|N[riA][idU]/CCzone[^text^]``."""
        mods = (f"ri{area}" if area else "") + (f"id{user}" if user else "")
        data = f"#{self.account}|N{mods}{'/' if mods else ''}{code}{zone}"
        if text:
            data += "^" + text.translate(_UNSAFE) + "^"
        return self.message("SIA-DCS", data, xdata=xdata, sequence=sequence, timestamp=timestamp)

    def cid(
        self,
        qualifier: str | int,
        code: str | int,
        group: str | int = 0,
        zone: str | int = 0,
        *,
        xdata: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        sequence: str | None = None,
        timestamp: datetime | bool | None = None,
    ) -> bytes:
        """One ADM-CID event: ``#acct|QEEE GG CCC``."""
        def num(v: str | int, width: int) -> str:
            return f"{v:0{width}d}" if isinstance(v, int) else v

        data = f"#{self.account}|{qualifier}{num(code, 3)} {num(group, 2)} {num(zone, 3)}"
        return self.message("ADM-CID", data, xdata=xdata, sequence=sequence, timestamp=timestamp)

    def null(self, *, sequence: str | None = None, timestamp: datetime | bool | None = None) -> bytes:
        """A link test (supervision poll)."""
        return self.message("NULL", "", sequence=sequence, timestamp=timestamp)

    def parse_reply(self, raw: bytes) -> Reply:
        return parse_reply(raw, self.key)

    def handle(self, reply: Reply) -> bool:
        """True if `reply` acknowledges the last message. A NAK's timestamp corrects the clock,
        as DC-09 intends: the panel retransmits with the receiver's time."""
        if reply.kind == "NAK" and reply.timestamp is not None:
            self.offset += reply.timestamp - self.now()
        return reply.acknowledges(self.last_sequence, self.account)
