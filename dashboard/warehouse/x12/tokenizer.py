"""Transaction-agnostic X12 tokenizer and envelope (ISA/GS/ST ... SE/GE/IEA) checker.

The ISA segment is fixed-length (106 characters) and defines the delimiters for the whole interchange:
the character after ``ISA`` separates elements, ISA11 separates repetitions (5010), ISA16 separates the
components of a composite element, and the character right after ISA16 terminates segments. Whitespace
(newlines, CRLF, spaces) around segments is ignored.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from dashboard.errors import LoadError

#: Fixed widths of ISA01..ISA16; together with the separators and the terminator they make 106 characters.
ISA_WIDTHS = (2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1, 1)
ISA_LENGTH = 106
_WHITESPACE = " \t\r\n\f\v\ufeff"


@dataclass(frozen=True)
class Delimiters:
    """The four delimiters an ISA header declares."""

    element: str  #: ISA character 4, e.g. ``*``
    repetition: str | None  #: ISA11 in 5010 (``^``); None when ISA11 is a code (4010 ``U``)
    component: str  #: ISA16, e.g. ``:``
    segment: str  #: the character after ISA16, e.g. ``~``


@dataclass(frozen=True)
class Segment:
    """One segment: its id (``CLP``), its elements (``elements[0]`` is CLP01), where it sits in the file."""

    id: str
    elements: tuple[str, ...]
    position: int  #: 1-based position in the file, counting ISA as 1
    line: int | None = None  #: 1-based line where it starts, when the file has newlines

    @property
    def ref(self) -> str:
        """The segment's name in error messages: id and position, e.g. ``CLP#13``."""
        return f"{self.id}#{self.position}"

    def field(self, n: int) -> str:
        """The name of element ``n`` (1-based), e.g. ``CLP04``."""
        return f"{self.id}{n:02d}"

    def get(self, n: int) -> str:
        """Element ``n`` (1-based) with surrounding spaces removed; ``""`` when absent."""
        return self.elements[n - 1].strip() if 0 < n <= len(self.elements) else ""

    def error(self, message: str, source: str, n: int | None = None) -> LoadError:
        """A LoadError located at this segment and, if given, its element ``n``."""
        return LoadError(message, file=source, line=self.line, segment=self.ref,
                         field=self.field(n) if n is not None else None)


@dataclass
class Transaction:
    """One ST..SE transaction set with the functional group (GS) it belongs to."""

    st: Segment
    se: Segment | None = None
    gs: Segment | None = None
    body: list[Segment] = field(default_factory=list)  #: the segments between ST and SE

    @property
    def type(self) -> str:
        """ST01: transaction set identifier code (835, 834, 270, ...)."""
        return self.st.get(1)

    @property
    def control_number(self) -> str:
        """ST02: transaction set control number (SE02 repeats it)."""
        return self.st.get(2)

    @property
    def implementation(self) -> str:
        """ST03 (or GS08): implementation convention reference, e.g. 005010X221A1."""
        return self.st.get(3) or (self.gs.get(8) if self.gs else "")


@dataclass
class Interchange:
    """A tokenized, envelope-checked X12 file."""

    delimiters: Delimiters
    segments: list[Segment]
    transactions: list[Transaction]

    def split_components(self, value: str) -> list[str]:
        """Split a composite element (e.g. SVC01 ``HC:99211:25``) by the component separator."""
        return value.split(self.delimiters.component)

    def split_repetitions(self, value: str) -> list[str]:
        """Split a repeating element (e.g. 271 EB03 ``1^33^35``) by the repetition separator."""
        if self.delimiters.repetition is None:
            return [value]
        return value.split(self.delimiters.repetition)


def _read_isa(text: str, start: int, source: str, line: int | None) -> tuple[Delimiters, int]:
    """Read the ISA header at ``text[start:]``; return the delimiters and the index of the terminator."""

    def fail(message: str, n: int) -> LoadError:
        return LoadError(message, file=source, line=line, segment="ISA#1", field=f"ISA{n:02d}")

    if not text.startswith("ISA", start):
        raise LoadError("the file does not start with an ISA segment", file=source, line=line,
                        segment="ISA#1")
    if len(text) - start < 4:
        raise fail(f"the ISA segment is shorter than {ISA_LENGTH} characters", 1)
    sep = text[start + 3]
    if sep.isalnum() or sep in _WHITESPACE:
        raise fail(f"{sep!r} (the character after ISA) cannot be an element separator", 1)
    pos = start + 3
    for n, width in enumerate(ISA_WIDTHS, start=1):
        value_start = pos + 1
        if n < len(ISA_WIDTHS):
            nxt = text.find(sep, value_start)
            if nxt < 0:
                raise fail(f"the ISA segment ends before ISA{n:02d}: it must have 16 elements "
                           f"separated by {sep!r} and be {ISA_LENGTH} characters long", n)
            value = text[value_start:nxt]
        else:
            nxt = value_start + 1
            value = text[value_start:nxt]
        if len(value) != width:
            if n == len(ISA_WIDTHS):
                raise fail(f"the ISA segment is shorter than {ISA_LENGTH} characters", n)
            raise fail(f"ISA{n:02d} is {len(value)} characters long, the fixed-length ISA needs {width} "
                       f"(ISA must be exactly {ISA_LENGTH} characters, elements separated by {sep!r})", n)
        pos = nxt
    terminator_at = pos
    if terminator_at >= len(text):
        raise fail(f"the ISA segment is shorter than {ISA_LENGTH} characters: no segment terminator "
                   "after ISA16", 16)
    component = text[terminator_at - 1]
    terminator = text[terminator_at]
    repetition_code = text[start + 82]  # ISA11
    repetition = None if repetition_code.isalnum() else repetition_code
    if component.isalnum() or component in _WHITESPACE or component == sep:
        raise fail(f"{component!r} cannot be the component separator (it must differ from the element "
                   f"separator {sep!r})", 16)
    if terminator.isalnum() or terminator in (sep, component) or terminator == " ":
        raise fail(f"{terminator!r} (the character after ISA16) cannot be the segment terminator", 16)
    if repetition is not None and repetition in (sep, component, terminator):
        raise fail(f"the repetition separator {repetition!r} repeats another delimiter", 11)
    if text.find(terminator, terminator_at + 1) < 0 and text[terminator_at + 1:].strip(_WHITESPACE):
        raise fail(f"the segment terminator {terminator!r} (the character after ISA16) never occurs "
                   "after the ISA segment", 16)
    return Delimiters(sep, repetition, component, terminator), terminator_at


def tokenize(text: str, source: str = "<input>") -> tuple[Delimiters, list[Segment]]:
    """Split an X12 file into segments without checking the envelope."""
    start = 0
    while start < len(text) and text[start] in _WHITESPACE:
        start += 1
    has_lines = "\n" in text.strip(_WHITESPACE)
    newlines = [i for i, ch in enumerate(text) if ch == "\n"] if has_lines else []

    def line_at(offset: int) -> int | None:
        return bisect.bisect_right(newlines, offset - 1) + 1 if has_lines else None

    delimiters, isa_end = _read_isa(text, start, source, line_at(start))
    out: list[Segment] = [Segment("ISA", tuple(text[start + 4:isa_end].split(delimiters.element)), 1,
                                  line_at(start))]
    offset = isa_end + 1
    length = len(text)
    while offset < length:
        end = text.find(delimiters.segment, offset)
        if end < 0:
            end = length
        seg_start = offset
        while seg_start < end and text[seg_start] in _WHITESPACE:
            seg_start += 1
        raw = text[seg_start:end].rstrip(_WHITESPACE)
        offset = end + 1
        if not raw:
            continue
        parts = raw.split(delimiters.element)
        seg_id = parts[0]
        segment = Segment(seg_id, tuple(parts[1:]), len(out) + 1, line_at(seg_start))
        if not (2 <= len(seg_id) <= 3 and seg_id.isalnum() and seg_id.isupper() and seg_id[0].isalpha()):
            shown = seg_id if len(seg_id) <= 20 else seg_id[:20] + "..."
            raise LoadError(f"{shown!r} is not a segment identifier (delimiters from the ISA header: "
                            f"element {delimiters.element!r}, segment terminator {delimiters.segment!r})",
                            file=source, line=segment.line, segment=f"#{segment.position}")
        out.append(segment)
    return delimiters, out


def _count(seg: Segment, n: int, source: str) -> int:
    value = seg.get(n)
    if not value.isdigit():
        raise seg.error(f"{seg.field(n)} must be a count (digits), got {value!r}", source, n)
    return int(value)


def read_interchange(text: str, source: str = "<input>") -> Interchange:
    """Tokenize ``text`` and check its envelopes: ISA/IEA, GS/GE, ST/SE pairing, control numbers, counts.

    SE01 is the number of segments in the transaction including ST and SE; GE01 the number of ST in the
    group; IEA01 the number of GS in the interchange. Several interchanges, groups and transactions are
    allowed. Raises :class:`LoadError` naming the segment and field of the first problem.
    """
    delimiters, segs = tokenize(text, source)
    transactions: list[Transaction] = []
    isa: Segment | None = None
    gs: Segment | None = None
    current: Transaction | None = None
    groups = sets = 0
    for seg in segs:
        if seg.id == "ISA":
            if isa is not None:
                raise seg.error(f"a new ISA begins before the IEA of interchange {isa.get(13)!r} ({isa.ref})",
                                source, 13)
            isa, groups = seg, 0
        elif seg.id == "IEA":
            if isa is None:
                raise seg.error("IEA without an ISA", source, 1)
            if gs is not None:
                raise gs.error(f"functional group {gs.get(6)!r} has no GE before {seg.ref}", source, 6)
            if _count(seg, 1, source) != groups:
                raise seg.error(f"IEA01 says {seg.get(1)} functional groups, the interchange has {groups}",
                                source, 1)
            if seg.get(2) != isa.get(13):
                raise seg.error(f"IEA02 {seg.get(2)!r} does not match ISA13 {isa.get(13)!r} ({isa.ref})",
                                source, 2)
            isa = None
        elif seg.id == "GS":
            if isa is None:
                raise seg.error("GS outside an interchange (after IEA or before ISA)", source, 1)
            if gs is not None:
                raise gs.error(f"functional group {gs.get(6)!r} has no GE before {seg.ref}", source, 6)
            if not seg.get(6):
                raise seg.error("GS06 (group control number) is required", source, 6)
            gs, sets, groups = seg, 0, groups + 1
        elif seg.id == "GE":
            if gs is None:
                raise seg.error("GE without a GS", source, 1)
            if current is not None:
                raise current.st.error(f"transaction {current.control_number!r} has no SE before {seg.ref}",
                                       source, 2)
            if _count(seg, 1, source) != sets:
                raise seg.error(f"GE01 says {seg.get(1)} transaction sets, the group has {sets}", source, 1)
            if seg.get(2) != gs.get(6):
                raise seg.error(f"GE02 {seg.get(2)!r} does not match GS06 {gs.get(6)!r} ({gs.ref})",
                                source, 2)
            gs = None
        elif seg.id == "ST":
            if gs is None:
                raise seg.error("ST outside a functional group (no GS before it)", source, 1)
            if current is not None:
                raise current.st.error(f"transaction {current.control_number!r} has no SE before {seg.ref}",
                                       source, 2)
            if not seg.get(1):
                raise seg.error("ST01 (transaction set identifier) is required", source, 1)
            if not seg.get(2):
                raise seg.error("ST02 (transaction set control number) is required", source, 2)
            current = Transaction(st=seg, gs=gs)
            sets += 1
        elif seg.id == "SE":
            if current is None:
                raise seg.error("SE without an ST", source, 1)
            counted = len(current.body) + 2
            if _count(seg, 1, source) != counted:
                raise seg.error(f"SE01 says {seg.get(1)} segments, transaction {current.control_number!r} "
                                f"has {counted} (ST to SE inclusive)", source, 1)
            if seg.get(2) != current.control_number:
                raise seg.error(f"SE02 {seg.get(2)!r} does not match ST02 {current.control_number!r} "
                                f"({current.st.ref})", source, 2)
            current.se = seg
            transactions.append(current)
            current = None
        elif current is None:
            raise LoadError(f"{seg.id} segment outside a transaction (not between ST and SE)", file=source,
                            line=seg.line, segment=seg.ref)
        else:
            current.body.append(seg)
    if current is not None:
        raise current.st.error(f"the file ends inside transaction {current.control_number!r}: no SE "
                               "(truncated file?)", source, 2)
    if gs is not None:
        raise gs.error(f"the file ends inside functional group {gs.get(6)!r}: no GE (truncated file?)",
                       source, 6)
    if isa is not None:
        raise isa.error(f"the file ends inside interchange {isa.get(13)!r}: no IEA (truncated file?)",
                        source, 13)
    return Interchange(delimiters, segs, transactions)


def segments(text: str, source: str = "<input>") -> list[Segment]:
    """All segments of an X12 file of any transaction type, after checking its envelopes."""
    return read_interchange(text, source).segments
