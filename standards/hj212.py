"""HJ 212-2017 data transmission standard (online monitoring): framing, the data segment and
the replies a platform owes a station — pure functions and tables, no sockets here.

A frame is ``##`` + 4 decimal digits (length of the data segment in bytes) + data segment +
4 hex digits (CRC16 of the data segment) + CR LF. The data segment is
``QN=…;ST=…;CN=…;PW=…;MN=…;Flag=…;[PNUM=…;PNO=…;]CP=&&…&&``.

Sources (third-party reproductions; the standard's own PDF was not readable here):
- frame example + CRC (1C80): https://whycan.com/viewtopic.php?action=onlyshowauthor&id=3594
  (quotes HJ 212-2017's framing example and appendix C code)
- a real station frame + CRC (6E80):
  https://forum.wareexpress.com/forum.php?goto=lastpost&mod=redirect&tid=6952
- CRC code: 1249993110/IceCoffee.HJ212 IceCoffee.HJ212/Utils.cs; hupengwu/fox-edge-server-protocol
  …/hj212_2017/utils/Crc16Util.java ("not the international CRC16")
- Flag bits, data flags, QnRtn codes, ST and CN codes: 1249993110/IceCoffee.HJ212
  IceCoffee.HJ212/Models/{PackageFlag,InstrumentationDataFlag,RequestCommandReturn,SystemCodes,
  CommandNumber}.cs; ST also hupengwu/fox-edge-server-protocol …/hj212_2017/entity/DefineMap.java
- pollutant codes and units: lingkejia/bocon-operation-app src/lib/polcodeList17.js,
  srdgame/lua-HJ212 hj212/tags/info.lua (see PARAMETER_CODES for where they disagree)
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Literal

# --- Framing (HJ 212-2017 §6.3 packet structure, appendix A CRC) -------------------------

HEADER = b"##"
TRAILER = b"\r\n"
HEADER_SIZE = 6  # "##" + 4 length digits
TAIL_SIZE = 6  # 4 CRC hex digits + CR LF
# The length field has 4 decimal digits, so no data segment is longer than this.
MAX_SEGMENT_LENGTH = 9999
# Text of the data segment: ASCII in practice; the standard allows GBK (Chinese) text.
SEGMENT_ENCODING = "gbk"

FrameReason = Literal[
    "bad_header",  # bytes that are not the start of a frame (skipped up to the next "##")
    "bad_length",  # the 4 characters after "##" are not decimal digits
    "oversized",  # the declared length is above the reader's maximum
    "length_mismatch",  # CR LF is not where the declared length puts it
    "bad_crc",  # the CRC field is not 4 hex digits or does not match the data segment
    "bad_encoding",  # CRC matched but the segment is not GBK/ASCII text
    "truncated",  # the connection closed in the middle of a frame (FrameReader.close)
]

# Bytes of a refused frame kept for the dead letter; the rest is dropped.
PREVIEW_BYTES = 128


def crc16(data: bytes) -> int:
    """The standard's own CRC16 of ``data`` (appendix A): it shifts the register right by 8
    before folding each byte in, so it is NOT CRC-16/MODBUS despite the 0xA001 polynomial."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def encode_frame(segment: str) -> bytes:
    """Wrap a data segment into a frame. ASCII only: a non-ASCII segment raises
    ``UnicodeEncodeError``; one longer than 9999 bytes raises ``ValueError``."""
    body = segment.encode("ascii", errors="strict")
    if len(body) > MAX_SEGMENT_LENGTH:
        raise ValueError(f"data segment of {len(body)} bytes exceeds {MAX_SEGMENT_LENGTH}")
    return b"%s%04d%s%04X%s" % (HEADER, len(body), body, crc16(body), TRAILER)


@dataclass(frozen=True)
class FrameResult:
    """One frame read from the stream: ``segment`` when good, else a ``reason`` code and the
    first bytes of what was refused (``raw``, at most PREVIEW_BYTES)."""

    segment: str | None
    reason: FrameReason | None = None
    raw: bytes = b""

    @property
    def ok(self) -> bool:
        return self.reason is None


def _is_digits(field: bytes) -> bool:
    return len(field) > 0 and all(0x30 <= c <= 0x39 for c in field)


_HEX = frozenset(b"0123456789abcdefABCDEF")


class FrameReader:
    """Incremental frame splitter for one TCP connection. ``feed`` never raises; it returns
    the frames completed by the new bytes, good ones and refused ones in stream order.

    After anything bad it resynchronises on the next ``##``. Memory is bounded: the buffer
    never holds more than one frame of the maximum length (``max_buffer``), garbage without
    ``##`` is dropped as it arrives, and a run of garbage is reported once, not per read."""

    def __init__(self, max_length: int = MAX_SEGMENT_LENGTH) -> None:
        if not 0 < max_length <= MAX_SEGMENT_LENGTH:
            raise ValueError(f"max_length must be in 1..{MAX_SEGMENT_LENGTH}")
        self.max_length = max_length
        self._buffer = bytearray()
        # True while discarding the rest of a run already reported (garbage or a bad frame)
        self._skipping = False

    @property
    def max_buffer(self) -> int:
        """The most bytes the reader ever holds between two calls to ``feed``."""
        return HEADER_SIZE + self.max_length + TAIL_SIZE

    @property
    def buffered(self) -> int:
        """Bytes held now (part of a frame still arriving)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[FrameResult]:
        """Add bytes received from the station; return the frames they complete."""
        results: list[FrameResult] = []
        buf = self._buffer
        buf += data
        while buf:
            if not buf.startswith(HEADER):
                self._skip_to_header(results)
                if not buf.startswith(HEADER):
                    break  # nothing but (at most) a lone trailing '#' left
            if buf[2:3] == b"#":
                del buf[:1]  # "###…": the header starts one byte later
                continue
            if len(buf) < HEADER_SIZE:
                break
            self._skipping = False
            length_field = bytes(buf[2:HEADER_SIZE])
            if not _is_digits(length_field):
                self._refuse(results, "bad_length", HEADER_SIZE)
                continue
            length = int(length_field)
            if length > self.max_length:
                self._refuse(results, "oversized", HEADER_SIZE)
                continue
            total = HEADER_SIZE + length + TAIL_SIZE
            if len(buf) < total:
                break
            if buf[total - 2 : total] != TRAILER:
                self._refuse(results, "length_mismatch", total)
                continue
            body = bytes(buf[HEADER_SIZE : HEADER_SIZE + length])
            crc_field = bytes(buf[HEADER_SIZE + length : total - 2])
            if not all(c in _HEX for c in crc_field) or int(crc_field, 16) != crc16(body):
                self._refuse(results, "bad_crc", total)
                continue
            try:
                segment = body.decode(SEGMENT_ENCODING)
            except UnicodeDecodeError:
                self._refuse(results, "bad_encoding", total)
                continue
            del buf[:total]
            results.append(FrameResult(segment))
        return results

    def close(self) -> list[FrameResult]:
        """End of stream: a frame still half-received is reported as ``truncated``."""
        leftover = bytes(self._buffer)
        self._buffer.clear()
        skipping, self._skipping = self._skipping, False
        if leftover.startswith(HEADER):
            return [FrameResult(None, "truncated", leftover[:PREVIEW_BYTES])]
        if leftover and not skipping:
            return [FrameResult(None, "bad_header", leftover[:PREVIEW_BYTES])]
        return []

    def _skip_to_header(self, results: list[FrameResult]) -> None:
        """Drop bytes up to the next '##' (keeping a trailing '#' that may start one)."""
        buf = self._buffer
        start = buf.find(HEADER)
        if start < 0:
            start = len(buf) - 1 if buf.endswith(b"#") else len(buf)
        if start == 0:
            return
        if not self._skipping:
            results.append(FrameResult(None, "bad_header", bytes(buf[: min(start, PREVIEW_BYTES)])))
        del buf[:start]
        # still inside the same run until a '##' is reached
        self._skipping = not buf.startswith(HEADER)

    def _refuse(self, results: list[FrameResult], reason: FrameReason, span: int) -> None:
        """Report a bad frame, then resynchronise on the next '##' after its first byte
        (a good frame may start inside a frame whose length field lied)."""
        buf = self._buffer
        results.append(FrameResult(None, reason, bytes(buf[: min(span, PREVIEW_BYTES)])))
        del buf[:1]
        self._skipping = True


# --- Flag field (HJ 212-2017 Table 4 note: bits V5..V0 D A) ------------------------------

FLAG_A = 0b01  # A: 1 = the command/upload asks for a reply
FLAG_D = 0b10  # D: 1 = split packet, PNUM and PNO present
VERSION_SHIFT = 2  # V5..V0 in bits 2..7
VERSION_2005 = 0b000000  # HJ/T 212-2005
VERSION_2017 = 0b000001  # HJ 212-2017
# One source (an HJ212Def.h header found by string search, repository not named by the index)
# also lists 000010 for a "surface-water 2017" profile (Flag=8/9 in its examples); the
# IceCoffee source knows only 000000 and 000001. Kept as data, not used to refuse.
VERSION_SURFACE_WATER_2017 = 0b000010
FLAG_2017_NO_ACK = VERSION_2017 << VERSION_SHIFT  # Flag=4, what the platform's replies carry


def needs_response(flag: int) -> bool:
    """Bit A: the sender expects a reply (e.g. 9014 to a data upload)."""
    return bool(flag & FLAG_A)


def is_split(flag: int) -> bool:
    """Bit D: the packet is one of several (PNUM/PNO present)."""
    return bool(flag & FLAG_D)


def protocol_version(flag: int) -> int:
    """Bits V5..V0: 0 = HJ/T 212-2005, 1 = HJ 212-2017."""
    return (flag >> VERSION_SHIFT) & 0b111111


# --- Tables -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Coded:
    """An entry of a code table: the standard's Chinese name and an English sentence."""

    code: str
    name_zh: str
    name_en: str


# ST system codes (HJ 212-2017 appendix B; IceCoffee SystemCodes.cs, fox-edge DefineMap.java)
SURFACE_WATER = "21"
AMBIENT_AIR = "22"
SYSTEM_INTERACTION = "91"
SYSTEM_CODES: Mapping[str, Coded] = MappingProxyType(
    {
        c.code: c
        for c in (
            Coded(SURFACE_WATER, "地表水质量监测", "Surface water quality monitoring."),
            Coded(AMBIENT_AIR, "空气质量监测", "Ambient air quality monitoring."),
            Coded(SYSTEM_INTERACTION, "系统交互", "System interaction (replies and notices)."),
        )
    }
)

ValueKind = Literal["Rtd", "Avg", "Min", "Max", "Cou"]
VALUE_KINDS: tuple[ValueKind, ...] = ("Rtd", "Avg", "Min", "Max", "Cou")
_KIND_OF: Mapping[str, ValueKind] = MappingProxyType({kind: kind for kind in VALUE_KINDS})


@dataclass(frozen=True)
class Command:
    """A CN command code; ``kinds`` are the value kinds an upload with this CN carries,
    ``primary`` the one that is the reading (None for replies)."""

    code: str
    name_zh: str
    name_en: str
    kinds: tuple[ValueKind, ...] = ()
    primary: ValueKind | None = None


REALTIME_DATA = "2011"
MINUTE_DATA = "2051"
HOURLY_DATA = "2061"
DAILY_DATA = "2031"
REQUEST_RESPONSE = "9011"
EXECUTION_RESULT = "9012"
NOTIFICATION_RESPONSE = "9013"
DATA_RESPONSE = "9014"
_STATISTICS: tuple[ValueKind, ...] = ("Avg", "Min", "Max", "Cou")
# HJ 212-2017 appendix C; uploads and 9014 from IceCoffee CommandNumber.cs, 9011-9013 from
# the 2017 reply examples reproduced in the sources named at the top of this module.
COMMANDS: Mapping[str, Command] = MappingProxyType(
    {
        c.code: c
        for c in (
            Command(REALTIME_DATA, "上传污染物实时数据", "Real-time data.", ("Rtd",), "Rtd"),
            Command(MINUTE_DATA, "上传污染物分钟数据", "Minute data.", _STATISTICS, "Avg"),
            Command(HOURLY_DATA, "上传污染物小时数据", "Hourly data.", _STATISTICS, "Avg"),
            Command(DAILY_DATA, "上传污染物日历史数据", "Daily data.", _STATISTICS, "Avg"),
            Command(REQUEST_RESPONSE, "请求应答", "Reply to a request (QnRtn)."),
            Command(EXECUTION_RESULT, "执行结果", "Result of executing a request (ExeRtn)."),
            Command(NOTIFICATION_RESPONSE, "通知应答", "Reply to a notification."),
            Command(DATA_RESPONSE, "数据应答", "Reply to a data upload."),
        )
    }
)
UPLOAD_COMMANDS = frozenset({REALTIME_DATA, MINUTE_DATA, HOURLY_DATA, DAILY_DATA})


@dataclass(frozen=True)
class DataFlag:
    """A data flag (``<code>-Flag=X``) of HJ 212-2017; ``valid`` as the standard marks it."""

    code: str
    name_zh: str
    name_en: str
    valid: bool


# HJ 212-2017 data flags (IceCoffee InstrumentationDataFlag.cs: 有效/无效 as given there).
# "T" is above the analyser's measuring range, not above a regulatory limit.
DATA_FLAGS: Mapping[str, DataFlag] = MappingProxyType(
    {
        f.code: f
        for f in (
            DataFlag("N", "正常", "The analyser works normally.", True),
            DataFlag("F", "停运", "The analyser is stopped.", False),
            DataFlag("M", "维护", "Produced while the analyser is under maintenance.", False),
            DataFlag("S", "手工输入", "A value set by hand.", True),
            DataFlag("D", "故障", "The analyser is faulty.", False),
            DataFlag("C", "校准", "The analyser is calibrating.", False),
            DataFlag("T", "超测上限", "The sample is above the measuring range.", False),
            DataFlag("B", "通讯异常", "The analyser cannot talk to the data logger.", False),
        )
    }
)


@dataclass(frozen=True)
class PollutantCode:
    """A monitoring factor code mapped to the parameter airwater stores. ``unit`` is the unit
    of the code table; ``factor`` multiplies a received value into ``stored_unit``."""

    code: str
    name_zh: str
    parameter: str
    unit: str
    stored_unit: str
    factor: float = 1.0


# Air: HJ 212-2017 air factor codes (IceCoffee FactorCode.cs "常规六参"). Units disagree
# between sources: the pollution-source (flue-gas) table in polcodeList17.js gives SO2/NO2/CO
# in mg/m3 and srdgame/lua-HJ212 info.lua gives PM2.5/PM10 in ng/m3; ambient-air stations
# (ST=22) send the GB 3095 units — µg/m3, CO mg/m3 — as the station examples found do.
# We take the ambient units; this was not checked against the standard's own table.
# Water: units from polcodeList17.js / lua-HJ212 info.lua (w01014 µS/cm; one other source
# says mS/cm); w01003 turbidity NTU from station code tables found by string search.
PARAMETER_CODES: Mapping[str, PollutantCode] = MappingProxyType(
    {
        p.code: p
        for p in (
            PollutantCode("a34004", "细颗粒物PM2.5", "pm25", "ug/m3", "ug/m3"),
            PollutantCode("a34002", "可吸入颗粒物PM10", "pm10", "ug/m3", "ug/m3"),
            PollutantCode("a21026", "二氧化硫", "so2", "ug/m3", "ug/m3"),
            PollutantCode("a21004", "二氧化氮", "no2", "ug/m3", "ug/m3"),
            PollutantCode("a21005", "一氧化碳", "co", "mg/m3", "mg/m3"),
            PollutantCode("a05024", "臭氧", "o3", "ug/m3", "ug/m3"),
            PollutantCode("w01001", "pH值", "ph", "pH", "pH"),
            PollutantCode("w01010", "水温", "water_temp", "Cel", "Cel"),
            PollutantCode("w01009", "溶解氧", "do", "mg/L", "mg/L"),
            PollutantCode("w01019", "高锰酸盐指数", "codmn", "mg/L", "mg/L"),
            PollutantCode("w21003", "氨氮", "nh3_n", "mg/L", "mg/L"),
            PollutantCode("w21011", "总磷", "tp", "mg/L", "mg/L"),
            PollutantCode("w21001", "总氮", "tn", "mg/L", "mg/L"),
            PollutantCode("w01014", "电导率", "conductivity", "uS/cm", "uS/cm"),
            PollutantCode("w01003", "浊度", "turbidity", "NTU", "NTU"),
        )
    }
)


def stored_value(code: str, value: float) -> tuple[str, float] | None:
    """(parameter, value in the stored unit) for a factor code we map, else None."""
    entry = PARAMETER_CODES.get(code)
    if entry is None:
        return None
    return entry.parameter, value * entry.factor


# QnRtn of a 9011 request response (IceCoffee RequestCommandReturn.cs)
QN_RTN: Mapping[int, Coded] = MappingProxyType(
    {
        int(c.code): c
        for c in (
            Coded("1", "准备执行请求", "Ready to execute the request."),
            Coded("2", "请求被拒绝", "The request is refused."),
            Coded("3", "PW错误", "The password is wrong."),
            Coded("4", "MN错误", "The device number (MN) is wrong."),
            Coded("5", "ST错误", "The system code (ST) is wrong."),
            Coded("6", "Flag错误", "The Flag is wrong."),
            Coded("7", "QN错误", "The request number (QN) is wrong."),
            Coded("8", "CN错误", "The command code (CN) is wrong."),
            Coded("9", "CRC校验错误", "The CRC check failed."),
            Coded("100", "未知错误", "Unknown error."),
        )
    }
)


# --- Data segment (HJ 212-2017 §6.3.3, Table 4 and 5) --------------------------------------


class SegmentError(ValueError):
    """A data segment refused: ``reason`` is a machine code, ``detail`` a human sentence."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class PollutantValue:
    """One value of one factor: ``value`` None when the field is not a finite number."""

    code: str
    kind: ValueKind
    value: float | None
    flag: str | None


@dataclass(frozen=True)
class Segment:
    """A parsed data segment. ``data_time`` is the station's local time, naive.
    ``cp_fields`` keeps CP items that are not factor values (e.g. QnRtn, RtdInterval)."""

    qn: str
    st: str
    cn: str
    pw: str
    mn: str
    flag: int
    pnum: int | None
    pno: int | None
    data_time: datetime | None
    values: tuple[PollutantValue, ...]
    cp_fields: tuple[tuple[str, str], ...] = ()


CP_OPEN = "CP=&&"
CP_CLOSE = "&&"
REQUIRED_FIELDS = ("QN", "ST", "CN", "PW", "MN", "Flag")
# Field widths as commonly reproduced (QN C20, ST C5, CN C7, PW C9, MN C27); not verified
# against the text, so used only as upper bounds.
_FIELD_PATTERNS = {
    "QN": re.compile(r"[0-9]{1,20}"),
    "ST": re.compile(r"[0-9]{1,5}"),
    "CN": re.compile(r"[0-9]{1,7}"),
    # the standard's PW is 6 characters by default; the passwords airwater issues are 16
    # (core.hj212_secret), a logger holds up to 32
    "PW": re.compile(r"[^;=&,]{0,32}"),
    "MN": re.compile(r"[^;=&,]{1,27}"),
    "Flag": re.compile(r"[0-9]{1,3}"),
    "PNUM": re.compile(r"[0-9]{1,4}"),
    "PNO": re.compile(r"[0-9]{1,4}"),
}
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_FACTOR_KEY = re.compile(r"([A-Za-z][A-Za-z0-9]*)-([A-Za-z]+)")
_DATATIME = re.compile(r"[0-9]{14}")


def _number(text: str) -> float | None:
    if not _NUMBER.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def _header_fields(header: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for item in header.split(";"):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise SegmentError("bad_field", f"header item {item[:40]!r} has no '='")
        if key in fields:
            raise SegmentError("bad_field", f"field {key} appears twice")
        fields[key] = value
    for key in REQUIRED_FIELDS:
        if key not in fields:
            raise SegmentError("missing_field", f"field {key} is missing")
    for key, pattern in _FIELD_PATTERNS.items():
        if key in fields and not pattern.fullmatch(fields[key]):
            raise SegmentError("bad_field", f"field {key}={fields[key][:40]!r} is malformed")
    return fields


def parse_segment(text: str) -> Segment:
    """Parse a data segment; raise SegmentError (missing_field, bad_field, bad_cp,
    bad_datatime) when it is malformed."""
    start = text.find(CP_OPEN)
    if start < 0:
        raise SegmentError("missing_field", "field CP is missing")
    header, cp = text[:start], text[start + len(CP_OPEN) :]
    if header and not header.endswith(";"):
        raise SegmentError("bad_field", "CP does not follow a ';'")
    if not cp.endswith(CP_CLOSE) or CP_CLOSE in cp[: -len(CP_CLOSE)]:
        raise SegmentError("bad_cp", "CP is not closed by a single '&&' at the end")
    fields = _header_fields(header)
    flag = int(fields["Flag"])
    if flag > 255:
        raise SegmentError("bad_field", f"Flag={flag} does not fit in 8 bits")
    pnum = int(fields["PNUM"]) if "PNUM" in fields else None
    pno = int(fields["PNO"]) if "PNO" in fields else None
    if is_split(flag) and (pnum is None or pno is None):
        raise SegmentError("missing_field", "Flag bit D is set but PNUM/PNO are missing")
    data_time, values, cp_fields = _parse_cp(cp[: -len(CP_CLOSE)])
    return Segment(
        qn=fields["QN"],
        st=fields["ST"],
        cn=fields["CN"],
        pw=fields["PW"],
        mn=fields["MN"],
        flag=flag,
        pnum=pnum,
        pno=pno,
        data_time=data_time,
        values=values,
        cp_fields=cp_fields,
    )


def sender_of(text: str) -> tuple[str, str] | None:
    """(MN, PW) of a data segment that could not be parsed whole, when its header names both
    well formed: who sent it, so that an authenticated sender's bad upload can be kept."""
    found: dict[str, str] = {}
    for item in text.split("CP=", 1)[0].split(";"):
        key, sep, value = item.partition("=")
        if sep and key in ("MN", "PW"):
            found.setdefault(key, value)
    mn, pw = found.get("MN"), found.get("PW")
    if mn is None or pw is None:
        return None
    if not (_FIELD_PATTERNS["MN"].fullmatch(mn) and _FIELD_PATTERNS["PW"].fullmatch(pw)):
        return None
    return mn, pw


def _parse_cp(
    content: str,
) -> tuple[datetime | None, tuple[PollutantValue, ...], tuple[tuple[str, str], ...]]:
    data_time: datetime | None = None
    raw: dict[tuple[str, ValueKind], str] = {}
    flags: dict[str, str] = {}
    other: list[tuple[str, str]] = []
    for group in content.split(";"):
        for item in group.split(","):
            if not item:
                continue
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise SegmentError("bad_cp", f"CP item {item[:40]!r} is not key=value")
            if key == "DataTime":
                if data_time is not None:
                    raise SegmentError("bad_cp", "DataTime appears twice")
                data_time = _parse_datatime(value)
                continue
            factor = _FACTOR_KEY.fullmatch(key)
            if factor is None:
                other.append((key, value))
                continue
            code, field = factor.groups()
            kind = _KIND_OF.get(field)
            if field == "Flag":
                if code in flags:
                    raise SegmentError("bad_cp", f"{key} appears twice")
                flags[code] = value
            elif kind is not None:
                if (code, kind) in raw:
                    raise SegmentError("bad_cp", f"{key} appears twice")
                raw[(code, kind)] = value
            else:  # SampleTime, ZsRtd, EFlag… are not readings
                other.append((key, value))
    values = tuple(
        PollutantValue(code, kind, _number(text), flags.get(code))
        for (code, kind), text in raw.items()
    )
    return data_time, values, tuple(other)


def _parse_datatime(value: str) -> datetime:
    if not _DATATIME.fullmatch(value):
        raise SegmentError("bad_datatime", f"DataTime={value[:20]!r} is not YYYYMMDDhhmmss")
    try:
        return datetime.strptime(value, "%Y%m%d%H%M%S")
    except ValueError as exc:
        raise SegmentError("bad_datatime", f"DataTime={value} is not a real time") from exc


# --- Replies (HJ 212-2017 appendix C examples) ---------------------------------------------

# Values echoed from a station's upload must not smuggle in fields of their own.
_SAFE_VALUE = re.compile(r"[\x21-\x7e]*")
_UNSAFE_CHARS = frozenset(";=&,")


def _checked(name: str, value: str) -> str:
    if not _SAFE_VALUE.fullmatch(value) or _UNSAFE_CHARS.intersection(value):
        raise ValueError(f"{name}={value[:40]!r} cannot be put in a data segment")
    return value


def _reply(qn: str, st: str, cn: str, pw: str, mn: str, flag: int, cp: str) -> str:
    return (
        f"QN={_checked('QN', qn)};ST={_checked('ST', st)};CN={cn};PW={_checked('PW', pw)};"
        f"MN={_checked('MN', mn)};Flag={flag};CP=&&{cp}&&"
    )


def data_response(qn: str, st: str, mn: str, pw: str) -> str:
    """The 9014 data response to an upload that set bit A: the upload's QN, PW and MN, the
    ``st`` given (the standard's example uses SYSTEM_INTERACTION, 91), Flag=4, empty CP.
    HJ/T 212-2005 put QN and CN inside CP instead (CP=&&QN=…;CN=2051&&); 2017 is used."""
    return _reply(qn, st, DATA_RESPONSE, pw, mn, FLAG_2017_NO_ACK, "")


def request_response(qn: str, st: str, mn: str, pw: str, qn_rtn: int) -> str:
    """The 9011 request response with a QnRtn code from QN_RTN (1 = ready to execute).
    2017 carries QN in the header; 2005 put it in CP (CP=&&QN=…;QnRtn=1&&)."""
    if qn_rtn not in QN_RTN:
        raise ValueError(f"QnRtn={qn_rtn} is not a code of the standard")
    return _reply(qn, st, REQUEST_RESPONSE, pw, mn, FLAG_2017_NO_ACK, f"QnRtn={qn_rtn}")
