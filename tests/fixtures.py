"""Small hand-built warehouses whose KPI answers are worked out by hand in the tests."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.engine import Engine

from dashboard.warehouse import schema as s
from dashboard.warehouse.semantic import refresh_marts

D = dt.date
P1, P2 = "111111111", "222222222"
E1, E2 = "GRP1", "GRP2"


def _line(claim_id, line, person, tin, start, charge, *, payer="ACME", claim_type="professional", pos="11",
          bill_type=None, revenue=None, hcpcs="99213", paid=None, allowed=None, plan=None, end=None,
          in_network=None, paid_date=None):
    return {
        "claim_id": claim_id, "claim_line_number": line, "claim_type": claim_type, "person_id": person,
        "member_id": person, "payer": payer, "plan": plan, "claim_start_date": start, "claim_end_date": end or start,
        "claim_line_start_date": start, "claim_line_end_date": end or start,
        "place_of_service_code": pos if claim_type == "professional" else None, "bill_type_code": bill_type,
        "revenue_center_code": revenue, "hcpcs_code": hcpcs, "billing_tin": tin, "charge_amount": charge,
        "paid_amount": paid, "allowed_amount": allowed, "data_source": "fixture", "in_network_flag": in_network,
        "paid_date": paid_date,
    }


def load_practice_fixture(engine: Engine) -> None:
    """Practices P1 and P2, payer ACME; see test_metrics_practice.py for the worked answers."""
    with engine.begin() as c:
        c.execute(s.practice.insert(), [
            {"practice_id": P1, "practice_name": "Fixture Family Medicine", "premium_payment_portal": True},
            {"practice_id": P2, "practice_name": "Fixture Cardiology", "premium_payment_portal": False},
        ])
        c.execute(s.payer.insert(), [{"payer_id": "ACME", "payer_name": "Acme Health", "payer_type": "commercial"}])
        c.execute(s.medical_claim.insert(), [
            _line("C1", 1, "pat1", P1, D(2026, 1, 5), 120),
            _line("C1", 2, "pat1", P1, D(2026, 1, 5), 80),
            _line("C2", 1, "pat2", P1, D(2026, 1, 10), 100),
            _line("C3", 1, "pat3", P1, D(2026, 2, 3), 300),
            _line("C4", 1, "pat4", P1, D(2026, 2, 20), 150),
            _line("C5", 1, "pat5", P1, D(2025, 10, 15), 400),
            _line("D1", 1, "pat6", P2, D(2026, 1, 20), 500),
            # March (issue 11): a desk copay before the 835, a line denied on a paid claim, credit balances
            _line("C6", 1, "pat7", P1, D(2026, 3, 2), 150, hcpcs="99214"),
            _line("C6", 2, "pat7", P1, D(2026, 3, 2), 50, hcpcs="93000"),
            _line("C7", 1, "pat8", P1, D(2026, 3, 3), 100),
            _line("C7", 2, "pat8", P1, D(2026, 3, 3), 20, hcpcs="36415"),
            _line("C8", 1, "pat9", P1, D(2026, 3, 9), 90),
            _line("C9", 1, "pat10", P1, D(2026, 3, 10), 80, hcpcs="99212"),
            # another provider's claim: not a practice of ours, never in practice KPIs
            _line("X1", 1, "pat1", "999999999", D(2026, 1, 5), 1000),
        ])
        ev = []
        for claim, tin, events in (
            ("C1", P1, [("submitted", D(2026, 1, 6)), ("accepted", D(2026, 1, 7))]),
            ("C2", P1, [("submitted", D(2026, 1, 11)), ("rejected", D(2026, 1, 12)), ("submitted", D(2026, 1, 15)),
                        ("accepted", D(2026, 1, 16)), ("appealed", D(2026, 2, 1))]),
            ("C3", P1, [("submitted", D(2026, 2, 4)), ("accepted", D(2026, 2, 5)), ("appealed", D(2026, 2, 25))]),
            ("C4", P1, [("submitted", D(2026, 2, 21)), ("accepted", D(2026, 2, 22))]),
            ("C5", P1, [("submitted", D(2025, 10, 16)), ("accepted", D(2025, 10, 17))]),
            ("D1", P2, [("submitted", D(2026, 1, 21)), ("accepted", D(2026, 1, 22))]),
            ("C6", P1, [("submitted", D(2026, 3, 11)), ("accepted", D(2026, 3, 12))]),
            ("C7", P1, [("submitted", D(2026, 3, 4)), ("accepted", D(2026, 3, 5))]),
            ("C8", P1, [("submitted", D(2026, 3, 10)), ("accepted", D(2026, 3, 11))]),
            ("C9", P1, [("submitted", D(2026, 3, 11)), ("accepted", D(2026, 3, 12))]),
        ):
            for seq, (kind, day) in enumerate(events, start=1):
                ev.append({"claim_id": claim, "event_seq": seq, "practice_id": tin, "event_type": kind,
                           "event_date": day, "source": "277CA" if kind in ("accepted", "rejected") else "837"})
        c.execute(s.claim_status_event.insert(), ev)
        c.execute(s.remittance.insert(), [
            {"remittance_id": "R0", "practice_id": P1, "payer_id": "ACME", "payer_name": "Acme Health",
             "trace_number": "T0", "method": "ACH", "payment_date": D(2025, 11, 20), "amount": 0},
            {"remittance_id": "R1", "practice_id": P1, "payer_id": "ACME", "payer_name": "Acme Health",
             "trace_number": "T1", "method": "ACH", "payment_date": D(2026, 1, 27), "amount": 120},
            {"remittance_id": "R2", "practice_id": P1, "payer_id": "ACME", "payer_name": "Acme Health",
             "trace_number": "T2", "method": "CHK", "payment_date": D(2026, 2, 20), "amount": 70},
            {"remittance_id": "RP2", "practice_id": P2, "payer_id": "ACME", "payer_name": "Acme Health",
             "trace_number": "T3", "method": "ACH", "payment_date": D(2026, 2, 10), "amount": 352.50},
            {"remittance_id": "R3", "practice_id": P1, "payer_id": "ACME", "payer_name": "Acme Health",
             "trace_number": "T4", "method": "ACH", "payment_date": D(2026, 3, 24), "amount": 194},
            {"remittance_id": "R4", "practice_id": P1, "payer_id": "ACME", "payer_name": "Acme Health",
             "trace_number": "T5", "method": "CHK", "payment_date": D(2026, 3, 31), "amount": 64},
        ])
        payments = [("CP5", "R0", P1, "C5", "1", 400, 0, 400), ("CP1", "R1", P1, "C1", "1", 200, 120, 30),
                    ("CP2", "R1", P1, "C2", "1", 100, 0, 0), ("CP2b", "R2", P1, "C2", "1", 100, 70, 0),
                    ("CP3", "R2", P1, "C3", "1", 300, 0, 0), ("CPD", "RP2", P2, "D1", "1", 500, 350, 0),
                    ("CP7", "R3", P1, "C7", "1", 120, 70, 0), ("CP8", "R3", P1, "C8", "1", 90, 60, 20),
                    ("CP9", "R3", P1, "C9", "1", 80, 64, 0), ("CP9b", "R4", P1, "C9", "1", 80, 64, 0)]
        c.execute(s.claim_payment.insert(), [
            {"claim_payment_id": i, "remittance_id": r, "practice_id": p, "claim_id": cl, "status_code": st,
             "charge_amount": ch, "paid_amount": pd_, "patient_responsibility": pr, "payer_claim_number": f"ACME-{i}"}
            for i, r, p, cl, st, ch, pd_, pr in payments
        ])
        adjustments = [("CP5", P1, "PR", "1", 400), ("CP1", P1, "CO", "45", 50), ("CP1", P1, "PR", "1", 30),
                       ("CP2", P1, "CO", "16", 100), ("CP2b", P1, "CO", "45", 30), ("CP3", P1, "CO", "50", 300),
                       ("CPD", P2, "CO", "45", 150), ("CP8", P1, "CO", "45", 10), ("CP8", P1, "PR", "2", 20),
                       ("CP9", P1, "CO", "45", 16), ("CP9b", P1, "CO", "45", 16)]
        line_adjustments = [("CP7", 1, "CO", "45", 30), ("CP7", 2, "CO", "97", 20)]  # 36415 bundled: denied
        c.execute(s.claim_adjustment.insert(), [
            {"claim_payment_id": cp, "line_number": line, "adjustment_seq": i, "practice_id": P1 if p is None else p,
             "group_code": g, "carc": carc, "amount": amt}
            for i, (cp, p, line, g, carc, amt) in enumerate(
                [(cp, p, 0, g, carc, amt) for cp, p, g, carc, amt in adjustments]
                + [(cp, None, line, g, carc, amt) for cp, line, g, carc, amt in line_adjustments], start=1)
        ])
        # 835 PLB: ACME adds 2.50 of interest (L6, negative) to P2's payment: BPR02 = 350 − (−2.50) = 352.50
        c.execute(s.provider_adjustment.insert(), [
            {"remittance_id": "RP2", "adjustment_seq": 1, "practice_id": P2, "provider_id": P2,
             "fiscal_period_date": D(2026, 12, 31), "reason_code": "L6", "amount": -2.50}])
        c.execute(s.service_line_payment.insert(), [
            {"claim_payment_id": "CP7", "line_number": 1, "practice_id": P1, "procedure_code": "99213",
             "charge_amount": 100, "paid_amount": 70},
            {"claim_payment_id": "CP7", "line_number": 2, "practice_id": P1, "procedure_code": "36415",
             "charge_amount": 20, "paid_amount": 0},
        ])
        # remark codes: MA130 on C2's denial (claim level), M15 on C7's bundled line
        c.execute(s.remark_code.insert(), [
            {"claim_payment_id": "CP2", "line_number": 0, "remark_seq": 1, "practice_id": P1, "qualifier": "HE",
             "code": "MA130"},
            {"claim_payment_id": "CP7", "line_number": 2, "remark_seq": 1, "practice_id": P1, "qualifier": "HE",
             "code": "M15"}])
        c.execute(s.patient_payment.insert(), [
            {"patient_payment_id": "PP1", "practice_id": P1, "claim_id": "C5", "payment_date": D(2026, 1, 15),
             "amount": 100, "channel": "portal"},
            {"patient_payment_id": "PP2", "practice_id": P1, "claim_id": "C1", "payment_date": D(2026, 2, 10),
             "amount": 30, "channel": "card"},
            {"patient_payment_id": "PP3", "practice_id": P1, "claim_id": "C5", "payment_date": D(2026, 2, 25),
             "amount": -9, "channel": "check"},
            {"patient_payment_id": "PP4", "practice_id": P1, "claim_id": "C6", "payment_date": D(2026, 3, 2),
             "amount": 20, "channel": "card"},
            {"patient_payment_id": "PP5", "practice_id": P1, "claim_id": "C8", "payment_date": D(2026, 3, 27),
             "amount": 50, "channel": "portal"},
        ])
        c.execute(s.claim_write_off.insert(), [
            {"write_off_id": "W1", "practice_id": P1, "claim_id": "C3", "write_off_date": D(2026, 3, 15),
             "amount": 300, "reason": "denial"},
            {"write_off_id": "W2", "practice_id": P1, "claim_id": "C5", "write_off_date": D(2026, 4, 20),
             "amount": 309, "reason": "bad_debt"},
        ])
        c.execute(s.eligibility_check.insert(), [
            {"check_id": f"E{i}", "practice_id": P1, "service_date": day, "requested_at": dt.datetime(2026, 1, 1),
             "status": status}
            for i, (day, status) in enumerate([(D(2026, 1, 5), "active"), (D(2026, 1, 10), "inactive"),
                                               (D(2026, 2, 3), "active"), (D(2026, 2, 20), "pending")])
        ])
    with engine.begin() as c:
        refresh_marts(c)


def _member(person, subscriber, relation, group, plan, start, end, tier):
    return (
        {"person_id": person, "member_id": person, "subscriber_id": subscriber, "subscriber_relation": relation,
         "gender": "female", "birth_date": D(1980, 1, 1), "enrollment_start_date": start,
         "enrollment_end_date": end, "payer": "ACME", "payer_type": "commercial", "plan": plan,
         "group_id": group, "group_name": f"Employer {group}", "first_name": "F", "last_name": person,
         "data_source": "fixture"},
        {"person_id": person, "member_id": person, "enrollment_start_date": start, "tier_code": tier},
    )


def load_employer_fixture(engine: Engine) -> None:
    """Employers GRP1 and GRP2; see test_metrics_employer.py for the worked answers."""
    members = [
        _member("A", "A", "self", E1, "PPO1", D(2026, 1, 1), D(2026, 3, 31), "EMP"),
        _member("B", "B", "self", E1, "PPO1", D(2026, 1, 15), D(2026, 1, 20), "ESP"),
        _member("B2", "B", "spouse", E1, "PPO1", D(2026, 1, 15), D(2026, 1, 20), "ESP"),
        _member("C", "C", "self", E1, "PPO1", D(2025, 12, 1), D(2026, 2, 28), "EMP"),
        _member("C", "C", "self", E1, "PPO1", D(2026, 3, 1), D(2099, 12, 31), "EMP"),
        _member("D", "D", "self", E2, "HMO2", D(2026, 1, 1), D(2026, 12, 31), "EMP"),
    ]
    with engine.begin() as c:
        c.execute(s.employer.insert(), [{"employer_id": E1, "employer_name": "Employer One"},
                                        {"employer_id": E2, "employer_name": "Employer Two"}])
        c.execute(s.eligibility.insert(), [m[0] for m in members])
        c.execute(s.member_coverage_tier.insert(), [m[1] for m in members])
        c.execute(s.medical_claim.insert(), [
            _line("M1", 1, "A", "555555555", D(2026, 1, 10), 150, paid=100, allowed=120, plan="PPO1",
                  in_network=True, paid_date=D(2026, 1, 30)),
            # one line out of network puts the stay out of network; its last line is paid in March
            _line("M2", 1, "A", "666666666", D(2026, 2, 3), 40000, claim_type="institutional", bill_type="111",
                  revenue="0120", hcpcs=None, paid=30000, allowed=32500, plan="PPO1", end=D(2026, 2, 8),
                  in_network=True, paid_date=D(2026, 2, 27)),
            _line("M2", 2, "A", "666666666", D(2026, 2, 3), 40000, claim_type="institutional", bill_type="111",
                  revenue="0250", hcpcs=None, paid=30000, allowed=32500, plan="PPO1", end=D(2026, 2, 8),
                  in_network=False, paid_date=D(2026, 3, 5)),
            _line("M3", 1, "B", "666666666", D(2026, 2, 5), 900, claim_type="institutional", bill_type="131",
                  revenue="0450", hcpcs="99284", paid=500, allowed=600, plan="PPO1"),
            _line("M4", 1, "D", "555555555", D(2026, 1, 12), 120, paid=80, allowed=90, plan="HMO2"),
        ])
        c.execute(s.pharmacy_claim.insert(), [
            {"claim_id": "RX1", "claim_line_number": 1, "person_id": "C", "member_id": "C", "payer": "ACME",
             "plan": "PPO1", "dispensing_date": D(2026, 3, 10), "paid_date": D(2026, 3, 12), "paid_amount": 40,
             "allowed_amount": 50, "data_source": "fixture"},
        ])
    with engine.begin() as c:
        refresh_marts(c)


PRIVACY_EMPLOYERS = ("GRPA", "GRPB", "GRPC")


def load_privacy_fixture(engine: Engine) -> None:
    """Three employers built to have small cells everywhere a de-identified report can show one: a large
    employer (GRPA) with a two-subscriber employee + spouse tier, a few inpatient stays and some adds and
    terms; a middle one (GRPB) with a handful of high-cost claimants; a tiny one (GRPC, 5 people).
    Deterministic; January to March 2026 (claims of people who left in February run on into March)."""
    import random

    rng = random.Random(11)
    people = random.Random(12)
    members, lines, rx = [], [], []
    sizes = {"GRPA": (("PPO", "EMP", 24), ("PPO", "ESP", 2), ("PPO", "FAM", 6), ("HMO", "EMP", 14),
                      ("HMO", "ECH", 4)),
             "GRPB": (("PPO", "EMP", 12), ("PPO", "ESP", 5), ("PPO", "FAM", 3)),
             "GRPC": (("PPO", "EMP", 3), ("PPO", "ESP", 1))}
    size_of = {"EMP": 1, "ESP": 2, "ECH": 3, "FAM": 4}
    n = 0
    for group, tiers in sizes.items():
        for plan, tier, subscribers in tiers:
            for _ in range(subscribers):
                n += 1
                sub = f"P{n:03d}"
                start = D(2026, 1, 1) if rng.random() < 0.8 else D(2026, 2, 1)
                end = D(2026, 2, 28) if rng.random() < 0.15 else D(2026, 12, 31)
                for k in range(size_of[tier]):
                    person = sub if k == 0 else f"{sub}-{k}"
                    relation = "self" if k == 0 else ("spouse" if k == 1 and tier in ("ESP", "FAM") else "child")
                    elig, tier_row = _member(person, sub, relation, group, plan, start, end, tier)
                    # ages and genders from their own generator, so the claims drawn below stay as they were
                    elig.update(birth_date=D(people.randint(1955, 2024), people.randint(1, 12), 15),
                                gender=people.choice(("female", "male")))
                    members.append((elig, tier_row))
    claim = 0
    for elig, _ in members:
        person, group = elig["person_id"], elig["group_id"]
        for month in (1, 2, 3):
            day = D(2026, month, 10)
            enrolled = elig["enrollment_start_date"] <= day <= elig["enrollment_end_date"]
            if not enrolled and not (month == 3 and rng.random() < 0.5):
                continue
            if rng.random() < 0.55:
                claim += 1
                paid = rng.randint(60, 160)
                lines.append(_line(f"K{claim}", 1, person, "555555555", day, paid * 2, paid=paid,
                                   allowed=paid + 20, plan=elig["plan"]))
            if rng.random() < 0.45:
                claim += 1
                paid = rng.randint(10, 300)
                rx.append({"claim_id": f"K{claim}", "claim_line_number": 1, "person_id": person,
                           "member_id": person, "payer": "ACME", "plan": elig["plan"], "dispensing_date": day,
                           "paid_date": day, "paid_amount": paid, "allowed_amount": paid + 5,
                           "data_source": "fixture"})
            if rng.random() < (0.10 if group == "GRPB" else 0.03):
                claim += 1
                paid = rng.choice((32_000, 55_000, 120_000))
                lines.append(_line(f"K{claim}", 1, person, "666666666", day, paid * 1.5,
                                   claim_type="institutional", bill_type="111", revenue="0120", hcpcs=None,
                                   paid=paid, allowed=paid + 1000, plan=elig["plan"], end=D(2026, month, 14)))
            if rng.random() < 0.06:
                claim += 1
                lines.append(_line(f"K{claim}", 1, person, "666666666", day, 1200, claim_type="institutional",
                                   bill_type="131", revenue="0450", hcpcs="99284", paid=700, allowed=800,
                                   plan=elig["plan"]))
    with engine.begin() as c:
        c.execute(s.employer.insert(), [{"employer_id": e, "employer_name": f"Employer {e}"}
                                        for e in PRIVACY_EMPLOYERS])
        c.execute(s.eligibility.insert(), [m[0] for m in members])
        c.execute(s.member_coverage_tier.insert(), [m[1] for m in members])
        c.execute(s.medical_claim.insert(), lines)
        c.execute(s.pharmacy_claim.insert(), rx)
    with engine.begin() as c:
        refresh_marts(c)
