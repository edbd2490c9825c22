"""X12 5010 tokenizer, 835 and 834 parsers, against the public samples in ../shared/fixtures/x12."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections import Counter
from decimal import Decimal

import pytest

from dashboard.errors import LoadError
from dashboard.warehouse.x12 import (
    check_835_balance,
    coverage_tier,
    parse_834,
    parse_835,
    read_interchange,
    segments,
)
from tests.conftest import SHARED

FIXTURES = SHARED / "fixtures" / "x12"
SAMPLES_834 = ("add-dependent.834", "add-subscriber-coverage.834", "change-subscriber-information.834",
               "enroll-employee-managed-care.834")
#: managed-care.835 ships with BPR16 = 20002316 (month 23): not a date. Strict tests use it corrected.
BAD_BPR16, GOOD_BPR16 = "*20002316~", "*20020316~"


def sample(name: str) -> str:
    """The text of a shared sample; skips only when the whole fixtures folder is absent, and never in CI."""
    if not FIXTURES.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"X12 samples are required in CI and are not at {FIXTURES} (set DASHBOARD_SHARED_DIR)")
        pytest.skip(f"X12 samples not found at {FIXTURES}")
    return (FIXTURES / name).read_text()


def edit(text: str, old: str, new: str) -> str:
    """Replace ``old`` (which must occur exactly once) by ``new``."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def add_segments(text: str, delta: int) -> str:
    """Adjust SE01 after adding (or removing) ``delta`` segments inside the (single) transaction."""
    return re.sub(r"SE\*(\d+)\*", lambda m: f"SE*{int(m.group(1)) + delta}*", text)


def managed_care() -> str:
    """managed-care.835 with its impossible BPR16 date corrected, so that strict parsing accepts it."""
    return edit(sample("managed-care.835"), BAD_BPR16, GOOD_BPR16)


def raises_at(segment: str, field: str | None, call, *args, **kwargs) -> LoadError:
    """Call, expect a LoadError located at ``segment``/``field``, and check the message names both."""
    with pytest.raises(LoadError) as info:
        call(*args, **kwargs)
    err = info.value
    assert (err.segment, err.field) == (segment, field), str(err)
    assert f"segment {segment}" in str(err)
    if field:
        assert f"field {field}" in str(err)
    return err


# --- tokenizer -----------------------------------------------------------------------------------------


def test_segments_carry_id_elements_position_and_line():
    segs = segments(sample("managed-care.835"), "managed-care.835")
    assert len(segs) == 30
    assert [s.id for s in segs[:4]] == ["ISA", "GS", "ST", "BPR"]
    assert all(s.line == s.position for s in segs)  # one segment per line in this file
    clp = segs[12]
    assert (clp.id, clp.position, clp.line, clp.ref) == ("CLP", 13, 13, "CLP#13")
    assert clp.elements[:4] == ("5554555444", "1", "800.00", "450.00")
    assert clp.get(4) == "450.00"
    assert clp.get(99) == ""
    assert segs[0].elements[15] == ":"
    assert len(segs[0].elements) == 16


@pytest.mark.parametrize(("name", "repetition"), [("managed-care.835", "^"), ("add-dependent.834", ">")])
def test_delimiters_come_from_the_isa_header(name, repetition):
    d = read_interchange(sample(name), name).delimiters
    assert (d.element, d.repetition, d.component, d.segment) == ("*", repetition, ":", "~")


def test_270_and_271_tokenize_and_split_repetitions():
    inquiry = read_interchange(sample("subscriber-health-benefit-check.270"))
    assert [t.type for t in inquiry.transactions] == ["270"]
    assert inquiry.transactions[0].implementation == "005010X279A1"
    assert len(inquiry.segments) == 17
    response = read_interchange(sample("subscriber-health-benefit-check.271"))
    tx = response.transactions[0]
    assert (tx.type, tx.control_number, len(tx.body)) == ("271", "4321", 20)
    eb = [s for s in tx.body if s.id == "EB"]
    assert len(eb) == 5
    assert response.split_repetitions(eb[2].get(3)) == ["1", "33", "35", "47", "86", "88", "98", "AL", "MH",
                                                        "UC"]
    assert eb[3].get(7) == "10.00"


def test_segments_with_newlines_crlf_or_none_read_the_same():
    text = managed_care()
    flat = text.replace("\n", "")
    crlf = "  " + text.replace("~\n", "~ \r\n\t")
    base = segments(text)
    for variant, has_lines in ((flat, False), (crlf, True)):
        segs = segments(variant)
        assert [(s.id, s.elements) for s in segs] == [(s.id, s.elements) for s in base]
        assert [s.line for s in segs] == ([s.line for s in base] if has_lines else [None] * len(base))
        assert parse_835(variant) == parse_835(text)


def test_other_delimiters_declared_in_the_isa_are_honoured():
    text = managed_care()
    other = text.replace("~", "!").replace(":", "}").replace("^", "{").replace("*", "|")
    d = read_interchange(other).delimiters
    assert (d.element, d.repetition, d.component, d.segment) == ("|", "{", "}", "!")
    assert parse_835(other) == parse_835(text)
    assert parse_835(other)[0].claims[1].service_lines[0].procedure.code == "93555"


def test_rejects_a_file_that_does_not_start_with_isa():
    text = sample("managed-care.835")
    raises_at("ISA#1", None, segments, text[text.index("GS*"):], "x.835")


def test_rejects_an_isa_shorter_than_106_characters():
    text = sample("managed-care.835")
    shorter = edit(text, "*000000005      *", "*000000005     *")  # ISA06 one space short
    err = raises_at("ISA#1", "ISA06", segments, shorter, "x.835")
    assert "106" in str(err)
    assert err.file == "x.835"
    assert err.line == 1
    raises_at("ISA#1", "ISA09", segments, text[:70], "x.835")
    raises_at("ISA#1", "ISA16", segments, text[:105], "x.835")


def test_rejects_an_altered_element_separator_in_the_isa():
    text = sample("managed-care.835")
    raises_at("ISA#1", "ISA01", segments, "ISA|" + text[4:], "x.835")


def test_rejects_a_component_separator_equal_to_the_element_separator():
    text = sample("managed-care.835")
    raises_at("ISA#1", "ISA16", segments, text[:104] + "*" + text[105:], "x.835")


def test_rejects_a_segment_terminator_that_never_occurs():
    text = sample("managed-care.835")
    assert text[105] == "~"
    err = raises_at("ISA#1", "ISA16", segments, text[:105] + "!" + text[106:], "x.835")
    assert "never occurs" in str(err)


def test_rejects_an_element_separator_that_the_body_does_not_use():
    text = sample("managed-care.835")
    body = text[106:].replace("*", "|")  # ISA declares '*', the rest uses '|'
    raises_at("#2", None, segments, text[:106] + body, "x.835")


@pytest.mark.parametrize(("cut_before", "segment", "field"), [
    ("IEA*", "ISA#1", "ISA13"),
    ("GE*", "GS#2", "GS06"),
    ("SE*", "ST#3", "ST02"),
    ("CAS*CO*45", "ST#3", "ST02"),
])
def test_truncated_files_name_the_unclosed_envelope(cut_before, segment, field):
    text = managed_care()
    err = raises_at(segment, field, segments, text[:text.index(cut_before)], "cut.835")
    assert "truncated" in str(err)


def test_truncated_in_the_middle_of_a_segment():
    text = managed_care()
    raises_at("ST#3", "ST02", parse_835, text[:text.index("CAS*CO*45") + 6], source="cut.835")


@pytest.mark.parametrize(("old", "new", "segment", "field"), [
    ("SE*26*112233", "SE*25*112233", "SE#28", "SE01"),
    ("SE*26*112233", "SE*27*112233", "SE#28", "SE01"),
    ("SE*26*112233", "SE*2X*112233", "SE#28", "SE01"),
    ("SE*26*112233", "SE*26*112234", "SE#28", "SE02"),
    ("GE*1*1~", "GE*2*1~", "GE#29", "GE01"),
    ("GE*1*1~", "GE*1*7~", "GE#29", "GE02"),
    ("IEA*1*000000907", "IEA*0*000000907", "IEA#30", "IEA01"),
    ("IEA*1*000000907", "IEA*1*000000908", "IEA#30", "IEA02"),
])
def test_envelope_count_and_control_number_mismatches(old, new, segment, field):
    err = raises_at(segment, field, parse_835, edit(managed_care(), old, new), source="bad.835")
    assert err.line == int(segment.split("#")[1])


def test_segment_outside_a_transaction():
    text = edit(managed_care(), "GE*1*1~", "REF*EV*X~\nGE*1*1~")
    raises_at("REF#29", None, segments, text)


def test_several_transactions_and_groups_in_one_file():
    text = managed_care()
    block = text[text.index("ST*835"):text.index("GE*")]
    two_sets = edit(text, "GE*1*1~", block.replace("112233", "112234") + "GE*2*1~")
    remits = parse_835(two_sets)
    assert [r.control_number for r in remits] == ["112233", "112234"]
    assert all(check_835_balance(r) == [] for r in remits)
    # the positions of the second transaction follow the first
    assert remits[1].claims[0].segment == "CLP#39"

    group = two_sets[two_sets.index("GS*"):two_sets.index("IEA*")]
    second = group.replace("*1147*1*X*", "*1147*2*X*").replace("GE*2*1~", "GE*2*2~")
    two_groups = edit(two_sets, "IEA*1*", second + "IEA*2*")
    ic = read_interchange(two_groups)
    assert [t.gs.get(6) for t in ic.transactions if t.gs] == ["1", "1", "2", "2"]
    assert len(parse_835(two_groups)) == 4
    raises_at("IEA#110", "IEA01", parse_835, two_groups.replace("IEA*2*", "IEA*1*"))


# --- 835 ------------------------------------------------------------------------------------------------


def test_managed_care_sample_has_an_impossible_bpr16_date():
    err = raises_at("BPR#4", "BPR16", parse_835, sample("managed-care.835"), source="managed-care.835")
    assert "20002316" in str(err)
    assert err.line == 4
    assert err.file == "managed-care.835"


def test_managed_care_sample_parses_leniently_with_a_warning():
    [remit] = parse_835(sample("managed-care.835"), source="managed-care.835", lenient_dates=True)
    assert remit.payment_date is None
    assert len(remit.warnings) == 1
    assert "BPR16" in remit.warnings[0]
    assert "BPR#4" in remit.warnings[0]
    assert remit.payment_date_problem == remit.warnings[0]  # the loader takes DTM*405 instead, saying so
    assert remit.production_date == dt.date(2002, 3, 14)
    assert remit.payment_amount == Decimal("945.00")
    assert check_835_balance(remit) == []


def test_managed_care_remittance():
    [remit] = parse_835(managed_care(), source="managed-care.835")
    assert remit.control_number == "112233"
    assert remit.implementation == "005010X221A1"
    assert (remit.handling_code, remit.payment_amount, remit.credit_debit, remit.payment_method) == (
        "I", Decimal("945.00"), "C", "ACH")
    assert remit.payment_date == dt.date(2002, 3, 16)
    assert (remit.trace_number, remit.originating_company_id) == ("7170066655", "1935665544")
    assert (remit.payer_name, remit.payer_id) == ("RUSHMORE LIFE", None)
    assert (remit.payee_name, remit.payee_id_qualifier, remit.payee_id, remit.payee_tax_id) == (
        "ACME MEDICAL CENTER", "XX", "5544667733", "777667755")
    assert remit.production_date == dt.date(2002, 3, 14)
    assert remit.provider_adjustments == []
    assert remit.warnings == []

    first, second = remit.claims
    assert [c.paid for c in remit.claims] == [Decimal("450.00"), Decimal("495.00")]
    assert (first.claim_id, first.status_code, first.charge, first.patient_responsibility) == (
        "5554555444", "1", Decimal("800.00"), Decimal("300.00"))
    assert (first.filing_indicator, first.payer_claim_number, first.segment) == ("12", "94060555410000",
                                                                                 "CLP#13")
    assert (first.patient_last_name, first.patient_first_name, first.patient_id_qualifier,
            first.patient_id) == ("BUDD", "WILLIAM", "MI", "33344555510")
    assert (second.claim_id, second.patient_last_name, second.patient_id) == ("8765432112", "SETTLE",
                                                                              "44455666610")

    # Where the adjustments sit: CO-A2 is claim-level on both claims (50.00 + 55.00); PR-1 (300.00 + 600.00)
    # and CO-45 (50.00) are on the service lines.
    def triples(adjustments):
        return [(a.group_code, a.reason_code, a.amount) for a in adjustments]

    assert triples(first.adjustments) == [("CO", "A2", Decimal("50.00"))]
    assert triples(second.adjustments) == [("CO", "A2", Decimal("55.00"))]
    [line1], [line2] = first.service_lines, second.service_lines
    assert triples(line1.adjustments) == [("PR", "1", Decimal("300.00"))]
    assert triples(line2.adjustments) == [("PR", "1", Decimal("600.00")), ("CO", "45", Decimal("50.00"))]
    totals: Counter[str] = Counter()
    for claim in remit.claims:
        for adj in claim.adjustments + [a for ln in claim.service_lines for a in ln.adjustments]:
            totals[f"{adj.group_code}-{adj.reason_code}"] += adj.amount
    assert totals == {"CO-A2": Decimal("105.00"), "PR-1": Decimal("900.00"), "CO-45": Decimal("50.00")}

    assert (line1.procedure.qualifier, line1.procedure.code, line1.procedure.modifiers) == ("HC", "99211", [])
    assert (line1.charge, line1.paid, line1.units) == (Decimal("800.00"), Decimal("500.00"), Decimal(1))
    assert (line1.service_start, line1.service_end, line1.service_date) == (
        dt.date(2002, 3, 1), dt.date(2002, 3, 4), None)
    assert (line2.procedure.code, line2.paid, line2.segment) == ("93555", Decimal("550.00"), "SVC#23")
    assert check_835_balance(remit) == []


def test_denied_service_lines_sample():
    [remit] = parse_835(sample("denied-service-lines.835"), source="denied-service-lines.835")
    assert (remit.handling_code, remit.payment_amount, remit.payment_method, remit.payment_date) == (
        "H", Decimal(0), "NON", dt.date(2004, 10, 28))
    assert (remit.payee_name, remit.payee_id_qualifier, remit.payee_tax_id) == ("UNKNOWN", "FI", "444313000")
    assert remit.production_date == dt.date(2013, 9, 1)
    [claim] = remit.claims
    assert (claim.claim_id, claim.status_code, claim.charge, claim.paid) == (
        "2005555A", "4", Decimal("915.39"), Decimal(0))
    assert claim.patient_responsibility == Decimal(0)  # CLP05 is empty
    assert (claim.filing_indicator, claim.payer_claim_number) == ("MC", "4276512332")
    assert (claim.patient_last_name, claim.patient_id_qualifier, claim.patient_id) == (
        "BACH", "MR", "00001612")
    assert claim.adjustments == []
    assert claim.remark_codes == []
    lines = claim.service_lines
    assert [ln.procedure.code for ln in lines] == ["T1005"] * 3
    assert [ln.charge for ln in lines] == [Decimal("500.04"), Decimal("127.8"), Decimal("287.55")]
    assert [ln.paid for ln in lines] == [Decimal(0)] * 3
    assert [ln.units for ln in lines] == [Decimal(68), Decimal(16), Decimal(36)]
    assert [[(a.group_code, a.reason_code, a.amount) for a in ln.adjustments] for ln in lines] == [
        [("CO", "16", Decimal("500.04"))],
        [("OA", "A7", Decimal("127.8"))],
        [("OA", "A7", Decimal("287.55"))],
    ]
    assert [ln.remarks for ln in lines] == [[("HE", "N14")]] * 3
    assert [(ln.service_start, ln.service_end) for ln in lines] == [
        (dt.date(2003, 11, 29), dt.date(2003, 11, 29)), (dt.date(2003, 10, 30), dt.date(2003, 10, 30)),
        (dt.date(2003, 10, 31), dt.date(2003, 10, 31))]
    assert check_835_balance(remit) == []


def test_non_numeric_clp04():
    text = edit(managed_care(), "*800.00*450.00*", "*800.00*45O.00*")
    err = raises_at("CLP#13", "CLP04", parse_835, text, source="m.835")
    assert err.line == 13
    assert "45O.00" in str(err)
    assert str(err).startswith("m.835, line 13, segment CLP#13")


@pytest.mark.parametrize("bad", ["20041328", "2004102", "2004-10-28"])
def test_bad_date_in_bpr16(bad):
    text = edit(sample("denied-service-lines.835"), "*20041028~", f"*{bad}~")
    raises_at("BPR#4", "BPR16", parse_835, text)


@pytest.mark.parametrize(("old", "new", "segment", "field"), [
    ("CLP*5554555444*", "CLP**", "CLP#13", "CLP01"),
    ("CLP*5554555444*1*", "CLP*5554555444**", "CLP#13", "CLP02"),
    ("*1*800.00*450.00*", "*1**450.00*", "CLP#13", "CLP03"),
    ("*800.00*450.00*", "*800.00**", "CLP#13", "CLP04"),
    ("BPR*I*945.00*", "BPR*I**", "BPR#4", "BPR02"),
    ("*144444*20020316~", "*144444~", "BPR#4", "BPR16"),
    ("*C*ACH*", "*C*XYZ*", "BPR#4", "BPR04"),
    ("*C*ACH*", "*Q*ACH*", "BPR#4", "BPR03"),
    ("*HC:99211*800.00*500.00~", "*HC:99211*800.00~", "SVC#16", "SVC03"),
    ("*HC:99211*800.00*", "*99211*800.00*", "SVC#16", "SVC01"),
    ("DTM*150*20020301~", "DTM*150*20020230~", "DTM#17", "DTM02"),
    ("CAS*CO*A2*50.00~", "CAS*CO*A2*fifty~", "CAS#14", "CAS03"),
    ("CAS*CO*A2*50.00~", "CAS*CO*A2*50.00**45~", "CAS#14", "CAS06"),
    ("CAS*CO*A2*50.00~", "CAS*CO*A2*50.00***10.00~", "CAS#14", "CAS05"),
])
def test_invalid_or_missing_elements_name_segment_and_field(old, new, segment, field):
    raises_at(segment, field, parse_835, edit(managed_care(), old, new), source="m.835")


def test_missing_bpr16_is_tolerated_leniently_when_dtm405_can_stand_in():
    """Payers' sample files often leave BPR16 out and date the file in DTM*405; strict parsing refuses."""
    text = edit(managed_care(), "*144444*20020316~", "*144444~")
    raises_at("BPR#4", "BPR16", parse_835, text, source="m.835")
    [remit] = parse_835(text, source="m.835", lenient_dates=True)
    assert remit.payment_date is None
    assert remit.production_date == dt.date(2002, 3, 14)
    assert remit.payment_date_problem == ("m.835, line 4, segment BPR#4, field BPR16: BPR16 (check issue or EFT "
                                          "effective date) is missing")
    assert remit.warnings == [remit.payment_date_problem]
    assert check_835_balance(remit) == []

    # No DTM*405 either (or an invalid one): no payment date at all, refused even leniently.
    no_dtm = add_segments(edit(text, "DTM*405*20020314~\n", ""), -1)
    err = raises_at("BPR#4", "BPR16", parse_835, no_dtm, source="m.835", lenient_dates=True)
    assert "is missing, and there is no valid DTM*405" in str(err)
    bad_dtm = edit(text, "DTM*405*20020314~", "DTM*405*20021314~")
    raises_at("BPR#4", "BPR16", parse_835, bad_dtm, source="m.835", lenient_dates=True)


def test_check_payment_without_eft_details():
    """A check: BPR with the amount, C, CHK and the issue date only; BPR05-BPR15 (EFT routing) are not used."""
    bpr = "BPR*I*945.00*C*ACH*CCP*01*888999777*DA*24681012*1935665544**01*111333555*DA*144444*20020316~"
    text = edit(managed_care(), bpr, "BPR*I*945.00*C*CHK************20020315~")
    [remit] = parse_835(text)
    assert (remit.handling_code, remit.payment_amount, remit.credit_debit, remit.payment_method,
            remit.payment_date) == ("I", Decimal("945.00"), "C", "CHK", dt.date(2002, 3, 15))
    assert remit.trace_number == "7170066655"  # TRN02: the check number
    assert remit.warnings == []
    assert check_835_balance(remit) == []


def test_unknown_cas_group_code():
    text = edit(managed_care(), "CAS*CO*45*50.00~", "CAS*XX*45*50.00~")
    err = raises_at("CAS#27", "CAS01", parse_835, text)
    assert "'XX'" in str(err)


def test_unbalanced_bpr02_parses_but_is_reported():
    text = edit(managed_care(), "BPR*I*945.00*", "BPR*I*954.00*")
    [remit] = parse_835(text)
    [problem] = check_835_balance(remit)
    assert "BPR02" in problem
    assert "954.00" in problem
    assert "945.00" in problem


def test_unbalanced_claim_and_service_line_are_reported():
    text = edit(managed_care(), "CAS*CO*A2*50.00~", "CAS*CO*A2*40.00~")
    [problem] = check_835_balance(parse_835(text)[0])
    assert "claim 5554555444 (CLP#13)" in problem
    assert "350.00" in problem
    assert "340.00" in problem

    text = edit(managed_care(), "SVC*HC:93555*1200.00*550.00~", "SVC*HC:93555*1200.00*540.00~")
    [problem] = check_835_balance(parse_835(text)[0])
    assert "service line 93555 (SVC#23)" in problem
    assert "660.00" in problem
    assert "650.00" in problem


def test_several_cas_triplets_in_one_segment():
    text = edit(managed_care(), "CAS*CO*A2*55.00~", "CAS*CO*A2*5.00*1*45*10.00**B1*10**B2*10**B3*10**B4*10~")
    [remit] = parse_835(text)
    adjustments = remit.claims[1].adjustments
    assert [(a.group_code, a.reason_code, a.amount, a.quantity) for a in adjustments] == [
        ("CO", "A2", Decimal("5.00"), Decimal(1)), ("CO", "45", Decimal("10.00"), None),
        ("CO", "B1", Decimal(10), None), ("CO", "B2", Decimal(10), None),
        ("CO", "B3", Decimal(10), None), ("CO", "B4", Decimal(10), None)]
    assert check_835_balance(remit) == []

    seven = edit(managed_care(), "CAS*CO*A2*55.00~", "CAS*CO*A2*5*1*45*10**B1*10**B2*10**B3*10**B4*5**B5*5~")
    raises_at("CAS#21", "CAS20", parse_835, seven)


def test_cas_triplets_with_reversed_amounts_sum_exactly():
    """CO-45 and CO-253 with quantities, and a CAS that reverses part of them; worked by hand: claim
    8765432112 is charged 1200.00 and paid 495.00, so its adjustments must total 705.00 exactly:
    claim level CO-45 100 (qty 1) + CO-253 2.5 + CO-45 -47.5 (reversal) = 55.00; line level PR-1 600 + CO-45 50."""
    text = add_segments(edit(managed_care(), "CAS*CO*A2*55.00~", "CAS*CO*45*100*1*253*2.5~\nCAS*CO*45*-47.5~"), 1)
    [remit] = parse_835(text)
    claim = remit.claims[1]
    assert [(a.group_code, a.reason_code, a.amount, a.quantity) for a in claim.adjustments] == [
        ("CO", "45", Decimal("100"), Decimal(1)), ("CO", "253", Decimal("2.5"), None),
        ("CO", "45", Decimal("-47.5"), None)]
    assert sum(a.amount for a in claim.adjustments) == Decimal("55.00")
    assert check_835_balance(remit) == []
    off = edit(text, "CAS*CO*45*-47.5~", "CAS*CO*45*-47.49~")  # one cent out: the claim no longer balances
    [problem] = check_835_balance(parse_835(off)[0])
    assert "claim 8765432112" in problem
    assert "adjustments total 705.01" in problem


@pytest.mark.parametrize(("old", "new", "segment", "field", "message"), [
    ("CAS*CO*A2*55.00~", "CAS*CO*A2*54.995*1*45*0.005~", "CAS#21", "CAS03", "'54.995' has a fraction of a cent"),
    ("CAS*CO*A2*55.00~", "CAS*CO*A2*55*1*45*0.001~", "CAS#21", "CAS06", "'0.001' has a fraction of a cent"),
    ("*1200.00*495.00*", "*1200.00*495.001*", "CLP#20", "CLP04", "fraction of a cent"),
    ("BPR*I*945.00*", "BPR*I*945.005*", "BPR#4", "BPR02", "fraction of a cent"),
    ("*1200.00*495.00*", "*100000000*495.00*", "CLP#20", "CLP03", "larger than 99999999.99"),
    ("SVC*HC:93555*1200.00*550.00~", "SVC*HC:93555*1200.00*-550.009~", "SVC#23", "SVC03", "fraction of a cent"),
])
def test_monetary_amounts_are_whole_cents(old, new, segment, field, message):
    """X12 5010 monetary amounts (DE 782) have at most 2 decimal places and 10 digits: a fraction of a cent
    would be rounded when stored, so the stored adjustments would no longer add up as the file's do."""
    err = raises_at(segment, field, parse_835, edit(managed_care(), old, new), source="m.835")
    assert message in str(err)


def test_trailing_zeros_in_amounts_are_whole_cents():
    [remit] = parse_835(edit(managed_care(), "CAS*CO*A2*55.00~", "CAS*CO*A2*55.000~"))
    assert remit.claims[1].adjustments[0].amount == Decimal("55.00")


def test_reversal_with_negative_amounts():
    reversal = ("CLP*5554555444*22*-800.00*-450.00*-300.00*12*94060555410000~\n"
                "CAS*CO*A2*-50.00~\n"
                "NM1*QC*1*BUDD*WILLIAM****MI*33344555510~\n"
                "SVC*HC:99211*-800.00*-500.00~\n"
                "CAS*PR*1*-300.00~\n")
    text = edit(managed_care(), "SE*26*", reversal + "SE*26*")
    text = add_segments(edit(text, "BPR*I*945.00*", "BPR*I*495.00*"), 5)
    [remit] = parse_835(text)
    rev = remit.claims[2]
    assert (rev.status_code, rev.charge, rev.paid, rev.patient_responsibility) == (
        "22", Decimal("-800.00"), Decimal("-450.00"), Decimal("-300.00"))
    assert rev.adjustments[0].amount == Decimal("-50.00")
    assert rev.service_lines[0].paid == Decimal("-500.00")
    assert rev.service_lines[0].adjustments[0].amount == Decimal("-300.00")
    assert check_835_balance(remit) == []


def test_plb_with_two_adjustment_pairs():
    text = edit(managed_care(), "SE*26*", "PLB*5544667733*20021231*WO:CLM123*25.00*L6*-5.50~\nSE*26*")
    text = add_segments(text, 1)
    [remit] = parse_835(text)
    assert [(p.provider_id, p.fiscal_period_date, p.reason_code, p.reference, p.amount)
            for p in remit.provider_adjustments] == [
        ("5544667733", dt.date(2002, 12, 31), "WO", "CLM123", Decimal("25.00")),
        ("5544667733", dt.date(2002, 12, 31), "L6", None, Decimal("-5.50"))]
    [problem] = check_835_balance(remit)  # BPR02 still 945.00 but 945.00 - 19.50 = 925.50 is due
    assert "BPR02" in problem
    assert "925.50" in problem
    balanced = edit(text, "BPR*I*945.00*", "BPR*I*925.50*")
    assert check_835_balance(parse_835(balanced)[0]) == []

    bad = edit(text, "*L6*-5.50~", "*L6*-5,50~")
    raises_at("PLB#28", "PLB06", parse_835, bad)
    raises_at("PLB#28", "PLB02", parse_835, edit(text, "*20021231*", "*20021331*"))


def test_service_line_details_and_claim_dates():
    text = edit(managed_care(), "SVC*HC:99211*800.00*500.00~\nDTM*150*20020301~\nDTM*151*20020304~",
                "SVC*HC:99211:25:59*800.00*500.00*0510*2*HC:99212~\nDTM*472*20020302~\nREF*6R*LINE-1~\n"
                "LQ*HE*M15~\nLQ*RX*123~")
    text = edit(text, "NM1*QC*1*BUDD*WILLIAM****MI*33344555510~",
                "NM1*QC*1*BUDD*WILLIAM****MI*33344555510~\nMOA***MA01*MA15~\nDTM*232*20020301~\n"
                "DTM*233*20020304~\nDTM*050*20020305~")
    text = add_segments(text, 2 + 4)
    [remit] = parse_835(text)
    claim = remit.claims[0]
    assert claim.remark_codes == ["MA01", "MA15"]
    assert (claim.statement_start, claim.statement_end, claim.received_date) == (
        dt.date(2002, 3, 1), dt.date(2002, 3, 4), dt.date(2002, 3, 5))
    [line] = claim.service_lines
    assert (line.procedure.code, line.procedure.modifiers, line.revenue_code, line.units) == (
        "99211", ["25", "59"], "0510", Decimal(2))
    assert line.original_procedure is not None
    assert line.original_procedure.code == "99212"
    assert (line.service_date, line.control_number) == (dt.date(2002, 3, 2), "LINE-1")
    assert line.remarks == [("HE", "M15"), ("RX", "123")]
    assert check_835_balance(remit) == []

    raises_at("LQ#24", "LQ01", parse_835, edit(text, "LQ*RX*123~", "LQ*XX*123~"))


def test_parse_835_rejects_other_transactions():
    raises_at("ST#3", "ST01", parse_835, sample("add-dependent.834"))


# --- 834 ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "ins", "lines"), [
    ("add-dependent.834", ("N", "19", "021", "20", "A", "FT"), [("021", "HLT")]),
    ("add-subscriber-coverage.834", ("Y", "18", "001", "22", "A", "FT"), [("021", "DEN")]),
    ("change-subscriber-information.834", ("Y", "18", "001", "25", "A", "FT"), []),
    ("enroll-employee-managed-care.834", ("Y", "18", "021", "20", "A", "FT"), [("021", "HMO")]),
])
def test_834_samples_maintenance_types_and_coverages(name, ins, lines):
    [enrollment] = parse_834(sample(name), source=name)
    assert (enrollment.purpose_code, enrollment.reference, enrollment.created, enrollment.action_code) == (
        "00", "12456", dt.date(1998, 5, 20), "2")
    assert (enrollment.sponsor_name, enrollment.sponsor_id_qualifier, enrollment.sponsor_id) == (
        None, "FI", "999888777")
    assert (enrollment.payer_id_qualifier, enrollment.payer_id) == ("FI", "654456654")
    [member] = enrollment.members
    assert (member.subscriber_indicator, member.relationship_code, member.maintenance_type,
            member.maintenance_reason, member.benefit_status, member.employment_status) == ins
    assert member.is_subscriber == (ins[0] == "Y")
    assert (member.subscriber_id, member.group_policy_number) == ("123456789", "123456001")
    assert [(c.maintenance_type, c.insurance_line) for c in member.coverages] == lines
    # none of the samples sends HD05, so no coverage level and the tier is "other"
    assert all(c.coverage_level is None and c.tier == "other" for c in member.coverages)
    assert enrollment.warnings == []


def test_834_add_dependent_details():
    [enrollment] = parse_834(sample("add-dependent.834"))
    assert enrollment.master_policy_number == "ABCD012354"
    [member] = enrollment.members
    assert (member.last_name, member.first_name, member.middle_name) == ("DOE", "JOHN", "P")
    assert (member.member_id_qualifier, member.member_id) == ("34", "103229876")
    assert (member.birth_date, member.gender) == (dt.date(1977, 8, 16), "M")  # not the school's NM1*M8
    assert member.dates == {"351": dt.date(1998, 5, 15)}
    assert member.coverages[0].benefit_begin == dt.date(1996, 6, 1)
    assert member.coverages[0].benefit_end is None


def test_834_change_keeps_current_and_prior_demographics_apart():
    [member] = parse_834(sample("change-subscriber-information.834"))[0].members
    assert (member.last_name, member.first_name, member.birth_date) == ("DOE", "JAMES", dt.date(1950, 4, 15))
    assert (member.prior_last_name, member.prior_first_name, member.prior_birth_date) == (
        "DOE", "JAMES", dt.date(1950, 4, 16))


def test_834_managed_care_enrollment_details():
    [member] = parse_834(sample("enroll-employee-managed-care.834"))[0].members
    assert (member.last_name, member.first_name, member.member_id) == ("SMITH", "WILLIAM", "202443307")
    assert (member.address_line1, member.city, member.state, member.postal_code) == (
        "1715 SOUTHWIND AVENUE", "ANYTOWN", "PA", "171110000")
    assert (member.birth_date, member.gender) == (dt.date(1970, 6, 14), "M")
    assert member.dates == {"358": dt.date(1996, 5, 23)}
    [coverage] = member.coverages  # the primary care provider NM1*P3 does not replace the member
    assert (coverage.insurance_line, coverage.benefit_begin) == ("HMO", dt.date(1996, 6, 1))


def test_834_subscriber_id_qualifier_zz():
    [member] = parse_834(sample("add-subscriber-coverage.834"))[0].members
    assert (member.member_id_qualifier, member.member_id, member.birth_date) == ("ZZ", "2024433307", None)


def test_834_termination_with_coverage_level_and_dates():
    text = edit(sample("add-dependent.834"), "INS*N*19*021*20*A***FT~", "INS*N*19*024*07*A***FT~")
    text = edit(text, "DTP*351*D8*19980515~", "DTP*357*D8*20021231~\nDTP*303*D8*20021215~\nREF*17*ABC~")
    text = edit(text, "HD*021**HLT~", "HD*024**HLT*GOLD PPO*FAM~")
    text = edit(text, "DTP*348*D8*19960601~", "DTP*348*RD8*19960601-20021231~\nDTP*349*D8*20021231~")
    text = add_segments(text, 3)
    [member] = parse_834(text)[0].members
    assert member.maintenance_type == "024"
    assert (member.eligibility_end, member.maintenance_effective) == (
        dt.date(2002, 12, 31), dt.date(2002, 12, 15))
    assert member.other_ids == {"17": "ABC"}
    [coverage] = member.coverages
    assert (coverage.maintenance_type, coverage.plan_description, coverage.coverage_level, coverage.tier) == (
        "024", "GOLD PPO", "FAM", "family")
    assert (coverage.benefit_begin, coverage.benefit_end) == (dt.date(1996, 6, 1), dt.date(2002, 12, 31))


def test_834_several_members():
    text = sample("add-dependent.834")
    loop = text[text.index("INS*"):text.index("SE*")]
    subscriber = loop.replace("INS*N*19*", "INS*Y*18*").replace("*P***34*103229876", "****34*103229875")
    subscriber = subscriber.replace("HD*021**HLT~", "HD*021**HLT**ECH~")
    text = add_segments(edit(text, "SE*", subscriber + "SE*"), loop.count("~"))
    members = parse_834(text)[0].members
    assert [(m.relationship_code, m.member_id) for m in members] == [("19", "103229876"), ("18", "103229875")]
    assert [c.tier for m in members for c in m.coverages] == ["other", "employee_children"]


@pytest.mark.parametrize(("old", "new", "segment", "field"), [
    ("INS*N*19*021*", "INS*N*19*099*", "INS#8", "INS03"),
    ("INS*N*19*021*", "INS*X*19*021*", "INS#8", "INS01"),
    ("DMG*D8*19770816*M~", "DMG*D8*19771316*M~", "DMG#13", "DMG02"),
    ("DMG*D8*19770816*M~", "DMG*D8*19770816*Q~", "DMG#13", "DMG03"),
    ("DTP*348*D8*19960601~", "DTP*348*D8*1996060~", "DTP#16", "DTP03"),
    ("DTP*348*D8*19960601~", "DTP*348*D6*960601~", "DTP#16", "DTP02"),
    ("HD*021**HLT~", "HD*021~", "HD#15", "HD03"),
    ("BGN*00*12456*19980520*", "BGN*00*12456*19981320*", "BGN#4", "BGN03"),
])
def test_834_invalid_elements_name_segment_and_field(old, new, segment, field):
    text = edit(sample("add-dependent.834"), old, new)
    raises_at(segment, field, parse_834, text, source="add-dependent.834")


def test_parse_834_rejects_other_transactions():
    raises_at("ST#3", "ST01", parse_834, managed_care())


@pytest.mark.parametrize(("hd05", "tier"), [
    ("EMP", "employee_only"), ("IND", "employee_only"), ("ESP", "employee_spouse"),
    ("ECH", "employee_children"), ("FAM", "family"), ("E1D", "other"), ("SPC", "other"), ("CHD", "other"),
    ("", "other"), (None, "other"), (" fam ", "family"),
])
def test_coverage_tier(hd05, tier):
    assert coverage_tier(hd05) == tier
