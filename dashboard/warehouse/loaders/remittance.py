"""Load X12 835 remittance advice into remittance, claim_payment, claim_adjustment, service_line_payment,
remark_code and provider_adjustment.

Rules, in the order they are checked (any failure rejects the whole load, naming file, segment and field):

* the file is an X12 interchange whose transactions are all 835s (grammar: :mod:`dashboard.warehouse.x12`);
* the payee is a practice (see :func:`_payee_practice`): REF*TJ (or N1*PE with FI) gives its TIN, the
  practice id; a TIN not seen before creates the practice, named after N1*PE. An NPI alone (N1*PE with XX,
  common in payers' files) maps to the practice with that billing NPI, or creates one keyed ``NPI<npi>``;
  each creation is reported in the load's summary;
* the payment has a date: BPR16, or when BPR16 is missing or not a valid date, DTM*405 (production date)
  with a warning naming file, line, segment and field, since payers' files often leave BPR16 out or send
  garbage there (the LinuxForHealth sample has ``20002316``);
* every monetary amount is whole cents (the parser refuses fractions), so stored amounts add up exactly;
* the 835 balances (BPR02 = Σ CLP04 − Σ PLB; per claim CLP03 − CLP04 = Σ CAS; per line SVC02 − SVC03 =
  Σ CAS) unless the caller accepts unbalanced files, in which case each problem becomes a warning.

A remittance is keyed by payee TIN, payer and TRN02 trace number: loading it again (the same file, or the
same payment re-sent in another file) replaces it, so nothing is counted twice. Claim payments are
matched to claims by CLP01 = medical_claim.claim_id within the practice; unmatched ones are kept and the
remittances report counts them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.errors import LoadError
from dashboard.warehouse import schema as s
from dashboard.warehouse.loaders.common import (
    FileResult,
    already_loaded,
    delete_in_batches,
    record_load,
    sha256_of,
)
from dashboard.warehouse.loaders.transaction import touch
from dashboard.warehouse.x12 import Remittance, check_835_balance, parse_835

SOURCE = "x12-835"
TABLES = (s.remittance, s.claim_payment, s.claim_adjustment, s.service_line_payment, s.remark_code,
          s.provider_adjustment)


def read_x12_text(path: Path) -> str:
    """The file as text; X12 is ASCII, so anything that is not text is rejected here."""
    data = path.read_bytes()
    if not data.strip():
        raise LoadError("the file is empty", file=path.name)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoadError(f"not a text file (byte {exc.start} is not UTF-8/ASCII)", file=path.name) from None


def _payment_date(remit: Remittance, file_name: str, warnings: list[str]) -> dt.date:
    """BPR16, or DTM*405 when (lenient) parsing found BPR16 missing or invalid, with a warning saying where."""
    if remit.payment_date is not None:
        return remit.payment_date
    if remit.production_date is None:  # parse_835 refuses this already; never store a remittance without date
        raise LoadError(remit.payment_date_problem or "BPR16 (payment date) is missing", file=file_name)
    warnings.append(f"{remit.payment_date_problem}; the payment date is taken from DTM*405 (production date) "
                    f"{remit.production_date.isoformat()}")
    return remit.production_date


#: A payee known only by its NPI has no TIN to key its practice; ``NPI`` + the NPI can never equal a 9-digit
#: TIN, and the same NPI always gives the same id, so later files for that NPI find the practice again.
NPI_PRACTICE_PREFIX = "NPI"


def npi_practice_id(npi: str) -> str:
    """The id of a practice created from a payee known only by its NPI."""
    return NPI_PRACTICE_PREFIX + npi


def valid_npi(npi: str) -> bool:
    """10 digits, the last a Luhn check digit over ``80840`` + the first nine (the NPI standard)."""
    if len(npi) != 10 or not npi.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed("80840" + npi)):
        digit = int(ch) * (2 if i % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0


def _payee_practice(conn: Connection, remit: Remittance, file_name: str) -> tuple[str, str | None]:
    """The practice an 835 pays and, when the load created it or mapped it unusually, a line for its report.

    * A TIN (REF*TJ, or N1*PE with FI) is the practice id, as everywhere in the warehouse; one not seen before
      creates the practice. Except: if the payee's NPI already has a practice created from that NPI alone,
      the payments go there, so that one payee's payments never split across two practices; if the TIN's
      practice exists too, which one is meant is ambiguous and the file is refused.
    * An NPI alone (N1*PE with XX) maps to the one practice whose billing NPI it is; with none, the practice
      is created from the payee (name, NPI) as ``NPI<npi>``; with several, the file is refused.
    """
    p = s.practice
    npi = remit.payee_id if remit.payee_id_qualifier == "XX" and remit.payee_id else None
    tin = remit.payee_tax_id or (remit.payee_id if remit.payee_id_qualifier == "FI" else None)
    tin = tin.replace("-", "").strip() if tin else None
    name = remit.payee_name or "no name"

    def located(message: str) -> LoadError:
        # N104 (the payee's id) of the N1*PE segment; an 835 without N1*PE is located at its ST
        if remit.payee_segment is None:
            return LoadError(message, file=file_name, segment=remit.segment)
        return remit.payee_segment.error(message, file_name, 4)

    def exists(practice_id: str) -> bool:
        return conn.execute(sa.select(p.c.practice_id).where(p.c.practice_id == practice_id)).first() is not None

    if tin:
        if npi and exists(npi_practice_id(npi)):
            by_npi = npi_practice_id(npi)
            if exists(tin):
                raise located(f"the payee's tax id {tin} (REF*TJ) and NPI {npi} belong to two practices, {tin} and "
                              f"{by_npi} (created earlier from that NPI alone); merge them before loading this file")
            return by_npi, str(located(f"payee NPI {npi} with tax id {tin} maps to practice {by_npi}, created "
                                       "earlier from that NPI alone"))
        if _create_practice(conn, tin, remit, npi):
            return tin, (f"new practice {tin} ({name}) created from the payee; grant users access to it on the "
                         "admin page")
        return tin, None
    if npi:
        found = set(conn.execute(sa.select(p.c.practice_id).where(p.c.billing_npi == npi)).scalars())
        if exists(npi_practice_id(npi)):  # even if its billing NPI was edited since
            found.add(npi_practice_id(npi))
        if len(found) == 1:
            return found.pop(), None
        if found:
            raise located(f"the payee has no tax id (REF*TJ) and NPI {npi} is the billing NPI of several practices "
                          f"({', '.join(sorted(found))})")
        if not valid_npi(npi):
            raise located(f"the payee has no tax id (REF*TJ) and N104 {npi!r} is not a valid NPI (10 digits ending "
                          "in a check digit), so no practice can be created for it")
        practice_id = npi_practice_id(npi)
        _create_practice(conn, practice_id, remit, npi)
        return practice_id, str(located(
            f"new practice {practice_id} ({name}) created from the payee's NPI {npi}: the file has no tax id "
            "(REF*TJ) to key it by; later files for this NPI map to it. Grant users access to it on the admin page"))
    raise located("the payee (N1*PE) has neither a tax id (REF*TJ, or N103 FI) nor an NPI (N103 XX)")


def _remittance_id(practice_id: str, payer: str, trace: str) -> str:
    key = f"{practice_id}|{payer}|{trace}".encode()
    return "835-" + hashlib.sha256(key).hexdigest()[:24]


def _create_practice(conn: Connection, practice_id: str, remit: Remittance, npi: str | None) -> bool:
    """Create the payee's practice unless it exists; True when created."""
    p = s.practice
    if conn.execute(sa.select(p.c.practice_id).where(p.c.practice_id == practice_id)).first():
        return False
    conn.execute(p.insert().values(
        practice_id=practice_id, practice_name=(remit.payee_name or f"Practice {practice_id}").title(),
        billing_npi=npi, premium_payment_portal=False))
    # A new practice needs its marts built; record_load touches the payees too, but creation must not
    # depend on that.
    touch(conn, practices=[practice_id])
    return True


def _ensure_payer(conn: Connection, remit: Remittance) -> None:
    if not remit.payer_id:
        return
    p = s.payer
    if not conn.execute(sa.select(p.c.payer_id).where(p.c.payer_id == remit.payer_id)).first():
        conn.execute(p.insert().values(payer_id=remit.payer_id, payer_name=remit.payer_name or remit.payer_id))


def _rows(remit: Remittance, *, remittance_id: str, practice_id: str, payment_date: dt.date,
          file_name: str) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {t.name: [] for t in TABLES}
    rows["remittance"].append({
        "remittance_id": remittance_id, "practice_id": practice_id, "payer_id": remit.payer_id,
        "payer_name": remit.payer_name, "trace_number": remit.trace_number,
        "payer_identifier": remit.originating_company_id, "method": remit.payment_method,
        "payment_date": payment_date, "amount": remit.payment_amount, "credit_debit": remit.credit_debit,
        "source_file": file_name,
    })
    for n, claim in enumerate(remit.claims, start=1):
        cp_id = f"{remittance_id}-{n}"
        first_line_date = next((ln.service_date or ln.service_start for ln in claim.service_lines
                                if ln.service_date or ln.service_start), None)
        name = ", ".join(x for x in (claim.patient_last_name, claim.patient_first_name) if x) or None
        rows["claim_payment"].append({
            "claim_payment_id": cp_id, "remittance_id": remittance_id, "practice_id": practice_id,
            "claim_id": claim.claim_id, "status_code": claim.status_code, "charge_amount": claim.charge,
            "paid_amount": claim.paid, "patient_responsibility": claim.patient_responsibility,
            "filing_indicator": claim.filing_indicator, "payer_claim_number": claim.payer_claim_number,
            "received_date": claim.received_date, "service_date": claim.statement_start or first_line_date,
            "patient_name": name,
        })
        lines = [(0, claim.adjustments, [("HE", code) for code in claim.remark_codes])]
        lines += [(i, ln.adjustments, ln.remarks) for i, ln in enumerate(claim.service_lines, start=1)]
        for line_number, adjustments, remarks in lines:
            for seq, adj in enumerate(adjustments, start=1):
                rows["claim_adjustment"].append({
                    "claim_payment_id": cp_id, "line_number": line_number, "adjustment_seq": seq,
                    "practice_id": practice_id, "group_code": adj.group_code, "carc": adj.reason_code,
                    "amount": adj.amount, "quantity": adj.quantity})
            for seq, (qualifier, code) in enumerate(remarks, start=1):
                rows["remark_code"].append({
                    "claim_payment_id": cp_id, "line_number": line_number, "remark_seq": seq,
                    "practice_id": practice_id, "qualifier": qualifier, "code": code})
        for i, ln in enumerate(claim.service_lines, start=1):
            rows["service_line_payment"].append({
                "claim_payment_id": cp_id, "line_number": i, "practice_id": practice_id,
                "procedure_qualifier": ln.procedure.qualifier, "procedure_code": ln.procedure.code,
                "modifiers": ":".join(ln.procedure.modifiers) or None, "charge_amount": ln.charge,
                "paid_amount": ln.paid, "units": ln.units, "service_date": ln.service_date or ln.service_start,
                "control_number": ln.control_number})
    for seq, plb in enumerate(remit.provider_adjustments, start=1):
        rows["provider_adjustment"].append({
            "remittance_id": remittance_id, "adjustment_seq": seq, "practice_id": practice_id,
            "provider_id": plb.provider_id, "fiscal_period_date": plb.fiscal_period_date,
            "reason_code": plb.reason_code, "reference": plb.reference, "amount": plb.amount})
    return rows


def _delete_remittances(conn: Connection, remittance_ids: list[str]) -> None:
    """Remove earlier copies of these remittances and everything that hangs off them."""
    cp = s.claim_payment
    old_payments = conn.execute(sa.select(cp.c.claim_payment_id).where(cp.c.remittance_id.in_(remittance_ids)))\
        .scalars().all()
    for table in (s.claim_adjustment, s.service_line_payment, s.remark_code):
        delete_in_batches(conn, table, table.c.claim_payment_id, old_payments)
    for table in (s.claim_payment, s.provider_adjustment, s.remittance):
        delete_in_batches(conn, table, table.c.remittance_id, remittance_ids)


def _parse_file(path: Path, *, allow_unbalanced: bool) -> tuple[list[Remittance], list[str]]:
    remits = parse_835(read_x12_text(path), source=path.name, lenient_dates=True)
    warnings: list[str] = []
    for remit in remits:
        # Only BPR16 may be repaired (from DTM*405); any other bad date rejects the file.
        bad = [w for w in remit.warnings if w != remit.payment_date_problem]
        if bad:
            raise LoadError(bad[0], file=path.name)
        problems = check_835_balance(remit)
        if problems and not allow_unbalanced:
            raise LoadError("the 835 does not balance: " + "; ".join(problems), file=path.name,
                            segment=remit.segment)
        warnings += [f"does not balance: {p}" for p in problems]
    return remits, warnings


def load_835_files(conn: Connection, paths: Sequence[Path], *, progress: Callable[[str], None] | None = None,
                   allow_unbalanced: bool = False) -> list[FileResult]:
    """Parse and check every file first, then write them all in the caller's transaction."""
    parsed = []
    for path in paths:
        if progress:
            progress(f"checking {path.name}")
        remits, warnings = _parse_file(path, allow_unbalanced=allow_unbalanced)
        parsed.append((path, sha256_of(path), remits, warnings))
    results = []
    seen: dict[str, str] = {}
    for path, digest, remits, warnings in parsed:
        result = FileResult(file=path.name, source=SOURCE)
        if already_loaded(conn, source=SOURCE, sha256=digest):
            result.skipped = True
            results.append(result)
            continue
        if progress:
            progress(f"writing {path.name}")
        result.warnings = list(warnings)
        rows: dict[str, list[dict]] = {t.name: [] for t in TABLES}
        ids = []
        for remit in remits:
            practice_id, note = _payee_practice(conn, remit, path.name)
            if note:
                result.warnings.append(note)
            payer_key = remit.payer_id or remit.payer_name or remit.originating_company_id or ""
            remittance_id = _remittance_id(practice_id, payer_key, remit.trace_number or remit.control_number)
            if remittance_id in seen:
                raise LoadError(f"payment with trace number {remit.trace_number} appears twice in this load "
                                f"(also in {seen[remittance_id]})", file=path.name, segment=remit.segment)
            seen[remittance_id] = path.name
            _ensure_payer(conn, remit)
            payment_date = _payment_date(remit, path.name, result.warnings)
            for name, table_rows in _rows(remit, remittance_id=remittance_id, practice_id=practice_id,
                                          payment_date=payment_date, file_name=path.name).items():
                rows[name] += table_rows
            ids.append(remittance_id)
        _delete_remittances(conn, ids)
        for table in TABLES:
            if rows[table.name]:
                conn.execute(table.insert(), rows[table.name])
            result.rows[table.name] = len(rows[table.name])
        unmatched = _unmatched_claims(conn, rows["claim_payment"])
        if unmatched:
            result.warnings.append(f"{unmatched} of {len(rows['claim_payment'])} claim payment(s) match no claim "
                                   "in medical_claim; they are kept and shown as unmatched")
        dates = [r["payment_date"] for r in rows["remittance"]]
        # An 835 touches its payee practices only (its claims are matched within the payee's practice).
        record_load(conn, source=SOURCE, file_name=path.name, sha256=digest,
                    rows=sum(len(v) for v in rows.values()), data_as_of=max(dates) if dates else None,
                    practices={r["practice_id"] for r in rows["remittance"]}, employers=())
        results.append(result)
    return results


def _unmatched_claims(conn: Connection, payments: list[dict]) -> int:
    if not payments:
        return 0
    mc = s.medical_claim
    keys = {(p["practice_id"], p["claim_id"]) for p in payments}
    found = set()
    for practice_id in {k[0] for k in keys}:
        ids = [k[1] for k in keys if k[0] == practice_id]
        for i in range(0, len(ids), 1000):
            found |= {(practice_id, c) for c in conn.execute(
                sa.select(mc.c.claim_id).distinct()
                .where(mc.c.billing_tin == practice_id, mc.c.claim_id.in_(ids[i:i + 1000]))).scalars()}
    return len(keys - found)
