"""Sans-IO SIA DC-09 receiver codec: bytes in, `Signal`/`Poll` items and framed replies out.

No sockets, no asyncio: the transport (`receivers.dc09.server`) feeds bytes and sends what the
codec returns. Decisions follow SIA DC-09-2021 and avoid the receiver bugs found in other
implementations (pysiaalarm, siadc09, dc09-spt):

- framing: LF ... CR, scanned in a buffer (frames arrive split and coalesced over TCP); garbage
  before LF is dropped and reported once; NUL padding after CR is ignored;
- header: hex CRC (``buf[9] == '"'``) or 2-byte binary CRC (``buf[7] == '"'``, answered in kind),
  CRC-16/ARC over the body, or over body + CR (Eldes); the ``0LLL`` length is always checked;
- sequence: 4 decimal digits per the standard, 4 hex digits tolerated (dc09-spt 0.0.4);
  R optional, L mandatory, ``#acct`` 3-16 characters (hex, alphanumerics tolerated);
- encrypted (``*`` token): AES-CBC, IV 0, the key given by the account lookup; a timestamp is
  required; a plain message for a keyed account is refused (no downgrade, keys are never echoed);
- replies per §1.10, always fully framed: ACK echoes sequence, R (only if present), L and account;
  ``*ACK`` is encrypted; NAK is ``"NAK"0000R0L0A0[]_<now>``, never encrypted; DUH for correct but
  unprocessable messages (unknown token, unknown code, unknown or keyless encrypted account).

The codec never raises on input: every problem becomes a `Rejected` with a reason.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from console.signal import Poll, Signal
from receivers.formats.cid import CidData, CidError, parse_cid_data
from receivers.formats.dc03 import Dc03Data, parse_dc03
from receivers.formats.signals import Envelope, cid_signals, dc03_signals


def utcnow() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------------
# Public types


@dataclass(frozen=True, slots=True)
class AccountKey:
    """What the codec needs to know about an account."""

    known: bool  # the account is configured in Kuzet
    key: bytes | None  # exact AES key bytes (16/24/32) or None if the account is plain


KeyLookup = Callable[[str, str, str], AccountKey | None]  # (receiver_no, line_no, account)


@dataclass(slots=True)
class Accepted:
    """A valid frame: store `items`, then (only after the commit) send `reply`."""

    items: list[Signal | Poll]
    reply: bytes
    raw: bytes


@dataclass(slots=True)
class Rejected:
    """Invalid input: record it, send `reply` now if not None, close the connection if `close`."""

    reason: str
    detail: str
    raw: bytes
    reply: bytes | None
    close: bool = False
    account: str = ""


# --------------------------------------------------------------------------------------------
# CRC-16/ARC (poly 0xA001 reflected, init 0), table driven


def _make_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _make_table()


def _make_table16(t8: tuple[int, ...] | list[int]) -> list[int]:
    # 16 bit-steps at once: two table steps applied to every 16-bit register value.
    def step(c: int) -> int:
        return (c >> 8) ^ t8[c & 0xFF]

    return [step(step(x)) for x in range(0x10000)]


_CRC_TABLE16 = _make_table16(_CRC_TABLE)
_NATIVE_LE = sys.byteorder == "little"


def crc16(data: bytes, crc: int = 0) -> int:
    """CRC-16/ARC of `data`, continuing from `crc` (so CRC(body + CR) is one more step).

    Two bytes per step through a 65,536-entry table: three times faster than one byte per step,
    and this is the largest cost of decoding a frame."""
    n = len(data)
    even = n & ~1
    if _NATIVE_LE and even:
        t16 = _CRC_TABLE16
        for w in memoryview(data)[:even].cast("H"):
            crc = t16[crc ^ w]
    else:
        even = 0
    table = _CRC_TABLE
    for b in data[even:]:
        crc = (crc >> 8) ^ table[(crc ^ b) & 0xFF]
    return crc


def frame(body: bytes, *, binary_crc: bool = False, crc_includes_cr: bool = False) -> bytes:
    """Wrap a body (from the first quote up to, not including, CR) as LF CRC 0LLL body CR."""
    crc = crc16(body)
    if crc_includes_cr:  # only for simulating Eldes senders
        crc = crc16(b"\r", crc)
    head = crc.to_bytes(2, "big") if binary_crc else b"%04X" % crc
    return b"\n" + head + b"%04X" % (len(body) & 0xFFFF) + body + b"\r"


# --------------------------------------------------------------------------------------------
# Timestamps: "HH:MM:SS,MM-DD-YYYY", UTC

_TS_CACHE: dict[bytes, datetime] = {}  # many frames share a second; parse each second once
_TS_CACHE_MAX = 4096
_FMT_CACHE: dict[int, bytes] = {}  # formatted receiver time, keyed by epoch second


def parse_timestamp(ts: bytes) -> datetime | None:
    """``HH:MM:SS,MM-DD-YYYY`` (19 bytes, no leading underscore) as an aware UTC datetime."""
    hit = _TS_CACHE.get(ts)
    if hit is not None:
        return hit
    if (
        len(ts) != 19 or ts[2] != 0x3A or ts[5] != 0x3A or ts[8] != 0x2C or ts[11] != 0x2D
        or ts[14] != 0x2D
    ):
        return None
    digits = ts[0:2] + ts[3:5] + ts[6:8] + ts[9:11] + ts[12:14] + ts[15:19]
    if not digits.isdigit():  # bytes.isdigit is ASCII-only; int() alone would accept " 1" or "+1"
        return None
    try:
        dt = datetime(int(ts[15:19]), int(ts[9:11]), int(ts[12:14]), int(ts[0:2]), int(ts[3:5]),
                      int(ts[6:8]), tzinfo=UTC)
    except ValueError:
        return None
    if len(_TS_CACHE) >= _TS_CACHE_MAX:
        _TS_CACHE.clear()
    _TS_CACHE[ts] = dt
    return dt


def format_timestamp(t: datetime) -> bytes:
    """The DC-09 form of `t` (converted to UTC), without the leading underscore."""
    if t.tzinfo is not None and t.utcoffset():
        t = t.astimezone(UTC)
    key = int(t.replace(tzinfo=UTC).timestamp())
    hit = _FMT_CACHE.get(key)
    if hit is None:
        hit = b"%02d:%02d:%02d,%02d-%02d-%04d" % (t.hour, t.minute, t.second, t.month, t.day, t.year)
        if len(_FMT_CACHE) > 64:
            _FMT_CACHE.clear()
        _FMT_CACHE[key] = hit
    return hit


# --------------------------------------------------------------------------------------------
# AES-CBC with a zero IV, as every DC-09 implementation uses

_ZERO_IV = bytes(16)
_CIPHERS: dict[bytes, Cipher[modes.CBC]] = {}
_CIPHERS_MAX = 65536
# Pad bytes are random but never "|", "[" or "]" (DC-09 §5.4.4.2), nor NUL: a panel firmware
# that handles the plaintext as a C string would stop at a NUL before the timestamp.
_PAD_MAP = bytes.maketrans(b"\x00[]|", b"\x01Z^{")


def _cipher(key: bytes) -> Cipher[modes.CBC]:
    c = _CIPHERS.get(key)
    if c is None:
        c = Cipher(algorithms.AES(key), modes.CBC(_ZERO_IV))  # raises ValueError for a bad length
        if len(_CIPHERS) >= _CIPHERS_MAX:
            _CIPHERS.clear()
        _CIPHERS[key] = c
    return c


def aes_decrypt(key: bytes, data: bytes) -> bytes:
    d = _cipher(key).decryptor()
    return d.update(data) + d.finalize()


def aes_encrypt(key: bytes, data: bytes) -> bytes:
    e = _cipher(key).encryptor()
    return e.update(data) + e.finalize()


def random_pad(n: int) -> bytes:
    return os.urandom(n).translate(_PAD_MAP)


def encrypt_content(key: bytes, content: bytes, *, bar: bool = True, upper: bool = True) -> bytes:
    """Hex ciphertext of ``pad [|] content`` where content is ``data]...``: the pad makes the
    plaintext a multiple of 16 bytes (16 bytes if it already is one)."""
    n = len(content) + (1 if bar else 0)
    pad = random_pad(16 - n % 16)
    hx = aes_encrypt(key, pad + (b"|" if bar else b"") + content).hex().encode()
    return hx.upper() if upper else hx


def strip_pad(plain: bytes) -> bytes:
    """Remove the pad from decrypted content (§1.8 "Robust decrypt"): through the first ``|`` if
    it comes before the first ``]``, else everything before ``]`` (empty data, no bar).
    Returns ``data]...``, or b"" if there is no ``]`` at all."""
    rb = plain.find(b"]")
    if rb < 0:
        return b""
    bar = plain.find(b"|", 0, rb)
    return plain[bar + 1 :] if bar >= 0 else plain[rb:]


# --------------------------------------------------------------------------------------------
# Small byte helpers

_HEXDIGITS = b"0123456789ABCDEFabcdef"


def _is_hex(b: bytes) -> bool:
    return bool(b) and not b.translate(None, _HEXDIGITS)


def _text(b: bytes) -> str:
    """Panel text: UTF-8 (DC-09-2026) or, failing that, Windows-1252 (older panels)."""
    try:
        return b.decode()
    except UnicodeDecodeError:
        return b.decode("cp1252", "replace")


def parse_tail(content: bytes, start: int, strict: bool) -> tuple[dict[str, str], bytes | None, str]:
    """Parse ``[Xvalue]... [_HH:MM:SS,MM-DD-YYYY]`` from ``content[start:]``.

    Returns (xdata, timestamp bytes without "_" or None, error). `error` is "" when fine.
    Strict (decrypted content): nothing else may follow. Lenient (plain frames whose CRC and
    length are right): unknown trailing bytes are ignored rather than losing an alarm.
    """
    xdata: dict[str, str] = {}
    n = len(content)
    i = start
    while i < n and content[i] == 0x5B:  # "["
        j = content.find(b"]", i + 1)
        if j < 0:
            return xdata, None, "extended data block not closed"
        if j > i + 1:
            key = content[i + 1 : i + 2]
            if key.isalpha():
                xdata[key.decode()] = _text(content[i + 2 : j])
            elif strict:
                return xdata, None, f"bad extended data block {content[i:j + 1][:40]!r}"
        i = j + 1
    rest = content[i:]
    if not rest:
        return xdata, None, ""
    if rest[0] == 0x5F:  # "_"
        if len(rest) == 20 or (not strict and len(rest) > 20):
            return xdata, rest[1:20], ""
        return xdata, rest[1:], ""  # malformed: parse_timestamp will refuse it
    if strict:
        return xdata, None, f"unexpected bytes after the data {rest[:40]!r}"
    if len(rest) > 20 and rest[-20] == 0x5F:  # junk, then a timestamp at the very end
        return xdata, rest[-19:], ""
    return xdata, None, ""


# --------------------------------------------------------------------------------------------
# The codec


@dataclass(slots=True)
class _Frame:
    """One frame on its way through the decoding steps: what each step found."""

    raw: bytes
    now: datetime
    binary: bool  # 2-byte binary CRC (answered in kind)
    body: bytes  # from the first quote up to, not including, CR
    token: bytes  # without the "*"
    encrypted: bool
    seq: bytes
    echo: bytes  # sequence, R, L and #acct as sent: echoed in ACK and DUH
    lb: int  # index of the data field's "[" in body
    account: str = ""
    receiver_no: str = ""
    line_no: str = ""
    info: AccountKey | None = None
    data: bytes = b""  # the data field's content, decrypted
    xdata: dict[str, str] = field(default_factory=dict)
    ts: bytes | None = None
    sent: datetime | None = None  # the transmitter's timestamp
    dcs: Dc03Data | None = None
    cid: CidData | None = None


_TOKENS = frozenset((b"SIA-DCS", b"ADM-CID", b"NULL"))
_REPLY_TOKENS = frozenset((b"ACK", b"NAK", b"DUH", b"RSP"))
_NAK_HEAD = b'"NAK"0000R0L0A0[]_'


class Dc09Codec:
    """One codec per TCP connection (it buffers); `datagram` is stateless for UDP."""

    def __init__(
        self,
        receiver: str,
        peer: str,
        keys: KeyLookup,
        *,
        is_known_code: Callable[[str, str], bool] = lambda kind, code: True,
        window: tuple[int, int] = (40, 20),
        max_frame: int = 4096,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.receiver = receiver
        self.peer = peer
        self.keys = keys
        self.is_known_code = is_known_code
        self.past = timedelta(seconds=window[0])  # a timestamp may be this old ...
        self.future = timedelta(seconds=window[1])  # ... or this far ahead of the receiver
        self.max_frame = max_frame
        self.clock = clock
        self._buf = b""
        self._garbage = 0  # length of the current run of bytes outside any frame

    # ---- transport interface

    def feed(self, data: bytes) -> list[Accepted | Rejected]:
        """TCP: bytes as read; returns the results of every frame completed by them."""
        out: list[Accepted | Rejected] = []
        try:
            buf = self._buf + data if self._buf else bytes(data)
            used = self._scan(buf, False, out)
            self._buf = buf[used:]
        except Exception as exc:  # a bug must cost one chunk, not the connection
            self._buf = b""
            out.append(Rejected("format", f"internal error while framing: {exc!r}", bytes(data[:256]),
                                None))
        return out

    def datagram(self, data: bytes) -> list[Accepted | Rejected]:
        """UDP: one datagram is one frame; nothing is kept between datagrams."""
        out: list[Accepted | Rejected] = []
        saved = self._garbage
        self._garbage = 0
        try:
            self._scan(bytes(data), True, out)
        except Exception as exc:
            out.append(Rejected("format", f"internal error while framing: {exc!r}", bytes(data[:256]),
                                None))
        finally:
            self._garbage = saved
        return out

    def pending(self) -> bytes:
        """Bytes of an unfinished frame still buffered (b"" if none; a lone LF left by a sender
        that ends frames with CR LF does not count)."""
        buf = self._buf
        return b"" if not buf.strip(b"\n") else buf

    def timeout(self) -> list[Rejected]:
        """The connection idled with a partial frame: report it and forget it."""
        buf = self.pending()
        self._buf = b""
        self._garbage = 0
        if not buf:
            return []
        return [Rejected("unfinished", f"connection idle with {len(buf)} bytes of an unfinished frame",
                         buf, None, close=True)]

    # ---- framing

    def _scan(self, buf: bytes, final: bool, out: list[Accepted | Rejected]) -> int:
        """Cut complete LF...CR frames out of `buf`; return how many bytes were consumed."""
        n = len(buf)
        pos = 0
        now: datetime | None = None
        while pos < n:
            if buf[pos] != 0x0A:
                lf = buf.find(b"\n", pos)
                end = n if lf < 0 else lf
                self._junk(buf[pos:end], not final, out)
                pos = end
                continue
            self._garbage = 0
            if n - pos < 8:  # too short to tell a binary CRC (which may contain CR/LF) from hex
                if final and n - pos > 1:
                    out.append(self._unfinished(buf[pos:], now))
                    pos = n
                break
            # Two binary CRC bytes may be CR or LF: search the frame end after them.
            start = pos + 3 if buf[pos + 7] == 0x22 else pos + 1
            cr = buf.find(b"\r", start)
            lf = buf.find(b"\n", start, n if cr < 0 else cr)
            if lf >= 0:  # a new frame began before this one ended
                if lf > pos + 1:  # (a lone LF is a CR LF sender's trailer: ignore it)
                    out.append(Rejected("unfinished", "frame interrupted by the start of another",
                                        buf[pos:lf], None))
                pos = lf
                continue
            if cr < 0:
                if n - pos > self.max_frame:
                    out.append(Rejected("oversize", f"no CR within {self.max_frame} bytes of LF",
                                        buf[pos : pos + self.max_frame], None, close=not final))
                    pos = n
                elif final:
                    out.append(self._unfinished(buf[pos:], now))
                    pos = n
                break
            if now is None:
                now = self._now()  # one clock reading per chunk, not per frame
            raw = buf[pos : cr + 1]
            pos = cr + 1
            if len(raw) > self.max_frame:
                out.append(Rejected("oversize", f"frame of {len(raw)} bytes exceeds {self.max_frame}",
                                    raw[: self.max_frame], self._nak(now, False)))
                continue
            try:
                out.append(self._decode(raw, now))
            except Exception as exc:  # never let one odd frame (or a lookup failure) kill the rest
                out.append(Rejected("format", f"internal error: {exc!r}", raw, self._nak(now, False)))
        return pos

    def _junk(self, seg: bytes, stream: bool, out: list[Accepted | Rejected]) -> None:
        if not seg.translate(None, b"\x00\r"):
            return  # NUL padding after CR, stray CRs: not worth a record
        if self._garbage == 0:
            out.append(Rejected("garbage", f"{len(seg)} bytes outside a LF...CR frame dropped",
                                seg[: self.max_frame], None))
        before = self._garbage
        self._garbage += len(seg)
        if stream and before <= self.max_frame < self._garbage:
            # Only garbage for a whole frame's worth of bytes: not a DC-09 sender, hang up.
            out.append(Rejected("oversize", f"{self._garbage} bytes without a frame start (LF)",
                                seg[: self.max_frame], None, close=True))

    def _unfinished(self, raw: bytes, now: datetime | None) -> Rejected:
        # A datagram with a frame start and no end: the panel gets a NAK (it will not retry on its
        # own over UDP otherwise); over TCP the caller waits instead.
        return Rejected("unfinished", "datagram ends before the frame's CR", raw,
                        self._nak(now or self._now(), False))

    def _now(self) -> datetime:
        now = self.clock()
        return now if now.tzinfo is not None else now.replace(tzinfo=UTC)

    # ---- replies

    def _nak(self, now: datetime, binary: bool) -> bytes:
        return frame(_NAK_HEAD + format_timestamp(now), binary_crc=binary)

    # ---- one frame, step by step: header, routing, content, time, data, items, ACK

    def _decode(self, raw: bytes, now: datetime) -> Accepted | Rejected:
        head = self._check_header(raw, now)
        if isinstance(head, Rejected):
            return head
        f = self._parse_routing(raw, now, *head)
        if isinstance(f, Rejected):
            return f
        bad = self._open_content(f)
        if bad is None:
            bad = self._check_time(f)
        if bad is None:
            bad = self._parse_data(f)
        if bad is not None:
            return bad
        items = self._items(f)
        if isinstance(items, Rejected):
            return items
        return Accepted(items, self._ack(f), raw)

    def _check_header(self, raw: bytes, now: datetime) -> tuple[bool, bytes] | Rejected:
        """CRC (hex or binary), 0LLL length: returns (binary CRC, body) of an intact frame."""
        n = len(raw)
        if n > 8 and raw[7] == 0x22:
            binary = True
            crc_sent = (raw[1] << 8) | raw[2]
            lenf = raw[3:7]
            body = raw[7:-1]
        elif n > 10 and raw[9] == 0x22:
            binary = False
            crcf = raw[1:5]
            if not _is_hex(crcf):
                return self._bad("format", f"CRC field {crcf!r} is not hex", raw, now, False)
            crc_sent = int(crcf, 16)
            lenf = raw[5:9]
            body = raw[9:-1]
        else:
            return self._bad("format", "not a DC-09 header (CRC, 0LLL, quote)", raw, now, False)
        if not _is_hex(lenf):
            return self._bad("format", f"length field {lenf!r} is not hex", raw, now, binary)
        if int(lenf, 16) != len(body):
            return self._bad("length", f"length field {lenf.decode()} but body has {len(body)} bytes "
                             f"({len(body):04X})", raw, now, binary)
        crc = crc16(body)
        if crc != crc_sent and crc16(b"\r", crc) != crc_sent:  # Eldes: CRC over body + CR
            return self._bad("crc", f"CRC {crc_sent:04X} sent, {crc:04X} computed", raw, now, binary)
        return binary, body

    def _parse_routing(self, raw: bytes, now: datetime, binary: bool, body: bytes) -> _Frame | Rejected:
        """ID token and ``SSSS [Rrrr] Lppp [#acct]`` up to the data field's ``[``."""
        q = body.find(b'"', 1)
        if q < 0:
            return self._bad("format", "ID token not closed", raw, now, binary)
        token = body[1:q]
        encrypted = token[:1] == b"*"
        if encrypted:
            token = token[1:]
        if token in _REPLY_TOKENS:
            return self._bad("format", f"receiver reply {token.decode()!r} sent to the receiver",
                             raw, now, binary)
        p = q + 1
        seq = body[p : p + 4]
        if len(seq) != 4 or not _is_hex(seq):
            return self._bad("format", f"sequence {seq[:8]!r} is not 4 digits", raw, now, binary)
        p += 4
        lb = body.find(b"[", p)
        if lb < 0:
            return self._bad("format", "no data field '['", raw, now, binary)
        hdr = body[p:lb]
        h = hdr.find(b"#")
        pre = hdr if h < 0 else hdr[:h]
        acct = b"" if h < 0 else hdr[h + 1 :]
        lpos = pre.find(b"L")
        if lpos < 0:
            return self._bad("format", f"no L (line prefix) field in {hdr[:40]!r}", raw, now, binary)
        rcv: bytes | None = None
        if lpos > 0:
            rcv = pre[1:lpos]
            if pre[0] != 0x52 or len(rcv) > 6 or not _is_hex(rcv):  # "R"
                return self._bad("format", f"bad receiver field {pre[:lpos][:40]!r}", raw, now, binary)
        line = pre[lpos + 1 :]
        # The standard wants 1-6 hex digits; an empty "L" is seen in the field (ioBroker.sia #4).
        if len(line) > 6 or (line and not _is_hex(line)):
            return self._bad("format", f"bad line prefix {pre[lpos:][:40]!r}", raw, now, binary)
        if h >= 0 and not (3 <= len(acct) <= 16 and acct.isalnum()):
            return self._bad("format", f"bad account {acct[:40]!r}", raw, now, binary)
        echo = seq + (b"R" + rcv if rcv is not None else b"") + b"L" + line + (b"#" + acct if acct else b"")
        f = _Frame(raw, now, binary, body, token, encrypted, seq, echo, lb,
                   account=acct.decode().upper(), receiver_no=rcv.decode().upper() if rcv is not None else "",
                   line_no=line.decode().upper())
        if token not in _TOKENS:
            name = ("*" if encrypted else "") + _text(token)
            return Rejected("unknown-token", f"ID token {name!r} is not supported", raw,
                            self._duh(echo, binary), account=f.account)
        return f

    def _open_content(self, f: _Frame) -> Rejected | None:
        """The data field and what follows it: decrypted with the account's key, or as sent.
        A plain message for a keyed account is refused (no downgrade)."""
        if not f.encrypted:
            if f.account:
                f.info = self.keys(f.receiver_no, f.line_no, f.account)
                if f.info is not None and f.info.key:
                    return self._plain_for_keyed(f)
            content = f.body[f.lb + 1 :]
            end = content.find(b"]")
            if end < 0:
                return self._reject_bad(f, "format", "data field not closed by ']'")
            f.xdata, f.ts, err = parse_tail(content, end + 1, False)
            if err:
                return self._reject_bad(f, "format", err)
            f.data = content[:end]
            return None
        if not f.account:
            return self._reject_bad(f, "format", "encrypted message without #acct in the header")
        f.info = info = self.keys(f.receiver_no, f.line_no, f.account)
        key = info.key if info is not None else None
        if key is None:
            known = info is not None and info.known
            return Rejected(
                "no-key" if known else "unknown-account-encrypted",
                f"encrypted message for account {f.account} " + (
                    "which has no key configured" if known else "which is not configured"),
                f.raw, self._duh(f.echo, f.binary), account=f.account)
        hx = f.body[f.lb + 1 :]
        if not hx or len(hx) % 32 or not _is_hex(hx):
            return self._reject_bad(f, "decrypt", f"ciphertext of {len(hx)} characters is not hex AES blocks")
        try:
            plain = aes_decrypt(key, bytes.fromhex(hx.decode()))
        except ValueError as exc:  # a key of the wrong length: configuration, not the panel
            return Rejected("no-key", f"key for account {f.account} is unusable: {exc}", f.raw,
                            self._duh(f.echo, f.binary), account=f.account)
        content = strip_pad(plain.rstrip(b"\x00"))
        end = content.find(b"]")
        if end < 0:
            return self._reject_bad(f, "decrypt", "decrypted content has no ']' (wrong key?)")
        f.xdata, f.ts, err = parse_tail(content, end + 1, True)
        if err:
            return self._reject_bad(f, "decrypt", f"decrypted content malformed (wrong key?): {err}")
        if f.ts is None:
            return self._reject_bad(f, "timestamp", "encrypted message without timestamp")
        f.data = content[:end]
        return None

    def _check_time(self, f: _Frame) -> Rejected | None:
        """The timestamp window, for any message that carries one."""
        if f.ts is None:
            return None
        f.sent = sent = parse_timestamp(f.ts)
        if sent is None:
            return self._reject_bad(f, "timestamp", f"malformed timestamp {f.ts[:24]!r}")
        if sent < f.now - self.past or sent > f.now + self.future:
            delta = (sent - f.now).total_seconds()
            return self._reject_bad(f, "timestamp", f"timestamp {_text(f.ts)} is {delta:+.0f} s from receiver "
                                    f"time (window -{self.past.total_seconds():.0f}/+{self.future.total_seconds():.0f} s)")
        return None

    def _parse_data(self, f: _Frame) -> Rejected | None:
        """The SIA-DCS or ADM-CID data field; the account from the data if the header had none
        (Osborne-Hoffman style)."""
        text = _text(f.data) if f.data else ""
        data_account = ""
        data_error = ""
        if f.token == b"SIA-DCS":
            f.dcs = parse_dc03(text)
            data_account = f.dcs.account
            if not f.dcs.events:
                data_error = f"SIA-DCS data carries no event: {text[:60]!r}"
        elif f.token == b"ADM-CID":
            try:
                f.cid = parse_cid_data(text)
                data_account = f.cid.account
            except CidError as exc:
                data_error = str(exc)
        if not f.account:
            f.account = data_account
            if not f.account:
                return self._reject_bad(f, "format", "no account in the header or the data")
            f.info = self.keys(f.receiver_no, f.line_no, f.account)
            if f.info is not None and f.info.key:
                return self._plain_for_keyed(f)
        if data_error:
            # The frame arrived intact (CRC), so a retry would not help: DUH, not NAK.
            return Rejected("unknown-code", data_error, f.raw, self._duh(f.echo, f.binary), account=f.account)
        return None

    def _items(self, f: _Frame) -> list[Signal | Poll] | Rejected:
        """The signals (or the link poll) of the frame, through the mapping shared with the serial
        formats; a code Kuzet does not know is refused with DUH."""
        env = Envelope(self.receiver, f.token.decode(), f.account, f.now, f.raw, self.peer, f.receiver_no, f.line_no,
                       f.seq.decode(), f.sent, f.encrypted, f.xdata)
        if f.dcs is not None:
            unknown = [ev.code for ev in f.dcs.events if not self.is_known_code("sia", ev.code)]
            if unknown:
                return Rejected("unknown-code", f"unknown SIA event code(s) {', '.join(unknown)}", f.raw,
                                self._duh(f.echo, f.binary), account=f.account)
            return [*dc03_signals(env, f.dcs.events, f.dcs.text or f.xdata.get("I", ""))]
        if f.cid is not None:
            unknown = [ev.code for ev in f.cid.events if not self.is_known_code("cid", ev.code)]
            if unknown:
                return Rejected("unknown-code", f"unknown Contact ID event code(s) {', '.join(unknown)}",
                                f.raw, self._duh(f.echo, f.binary), account=f.account)
            return [*cid_signals(env, f.cid.events, f.cid.text or f.xdata.get("I", ""))]
        # NULL: a link test
        if f.info is not None and f.info.known:
            return [Poll(self.receiver, f.account, f.now, self.peer, f.receiver_no, f.line_no)]
        # from an unknown account: stored, so the core raises an unknown-account alarm for it
        return [Signal(self.receiver, "NULL", f.account, "NULL", "link", f.now, f.raw, self.peer,
                       sequence=env.sequence, receiver_no=f.receiver_no, line_no=f.line_no,
                       transmitter_time=f.sent, encrypted=f.encrypted, xdata=f.xdata)]

    def _ack(self, f: _Frame) -> bytes:
        """The ACK, encrypted with the account's key when the message was encrypted."""
        if f.encrypted and f.info is not None and f.info.key:
            # "|]_" + 19-byte timestamp = 22 bytes; 10 pad bytes make the plaintext 32.
            plain_ack = random_pad(10) + b"|]_" + format_timestamp(f.now)
            body = b'"*ACK"' + f.echo + b"[" + aes_encrypt(f.info.key, plain_ack).hex().upper().encode()
        else:
            body = b'"ACK"' + f.echo + b"[]"
        return frame(body, binary_crc=f.binary)

    def _duh(self, echo: bytes, binary: bool) -> bytes:
        return frame(b'"DUH"' + echo + b"[]", binary_crc=binary)

    def _plain_for_keyed(self, f: _Frame) -> Rejected:
        # pysiaalarm ACKs such a message (and may even echo the key): an encryption downgrade.
        return Rejected("plain-for-keyed-account",
                        f"unencrypted message for account {f.account}, which has a key", f.raw,
                        self._duh(f.echo, f.binary), account=f.account)

    def _reject_bad(self, f: _Frame, reason: str, detail: str) -> Rejected:
        return self._bad(reason, detail, f.raw, f.now, f.binary, f.account)

    def _bad(self, reason: str, detail: str, raw: bytes, now: datetime, binary: bool,
             account: str = "") -> Rejected:
        return Rejected(reason, detail, raw, self._nak(now, binary), account=account)
