"""Apply X12 834 enrollment maintenance to eligibility spans (Tuva ``eligibility``, data_source
``x12-834``), coverage tiers and the ``enrollment_change`` log.

Who is who:

* employer (``group_id``) = the member's REF*1L group number, else the sponsor's N1*P5 N104; its name is
  N1*P5 N102 (a new group creates the employer);
* subscriber = REF*0F (required on every member); the subscriber's ``member_id`` is REF*0F; a
  dependent's is NM109 when NM108 is ZZ (mutually defined), else REF*23, else REF*0F plus a digest of the
  dependent's NM109 or name and birth date. Social security numbers are never stored;
* payer = N1*IN N102 (else N104); plan = HD04, else HD03 (insurance line).

What each maintenance type does (INS03 for the member, HD01 for one coverage; files apply in order):

* ``021`` addition, ``030`` audit: open a span from DTP*348 (else DTP*356 / DTP*303) to DTP*349, or open
  ended (2099-12-31). The same span again replaces itself; an earlier open span of the same plan is
  closed the day before;
* ``024`` termination: the span of that plan (every open span of the member when INS03 = 024 has no HD)
  ends on DTP*349 (else DTP*357 / DTP*303);
* ``025`` reinstatement: the latest span of that plan is reopened (to DTP*349 or open ended); when DTP*348
  starts after a gap, a new span starts there instead;
* ``001`` change: name, birth date, gender and address replace those of the member's spans; an HD with
  a new HD05 coverage level changes the tier from DTP*303 (splitting the span) or, without a date, for
  the whole current span.

Anything that cannot be applied (a termination or change for a member with no span, a missing date)
rejects the whole load, naming the file, segment and field.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.errors import LoadError
from dashboard.warehouse import schema as s
from dashboard.warehouse.loaders.common import FileResult, already_loaded, record_load, sha256_of
from dashboard.warehouse.loaders.remittance import read_x12_text
from dashboard.warehouse.x12 import Coverage, EnrollmentFile, MemberChange, parse_834

SOURCE = "x12-834"
OPEN_END = dt.date(2099, 12, 31)
RELATIONS = {"18": "Self", "01": "Spouse", "19": "Child", "53": "Life partner", "15": "Ward"}
GENDERS = {"M": "male", "F": "female", "U": "unknown"}
DAY = dt.timedelta(days=1)
ELIGIBILITY_COLUMNS = tuple(c.name for c in s.eligibility.columns)
PERSON_FIELDS = ("first_name", "middle_name", "last_name", "birth_date", "gender", "address", "city", "state",
                 "zip_code")


@dataclass
class Span:
    """One eligibility row being edited, plus its coverage tier."""

    row: dict
    tier: str | None

    @property
    def start(self) -> dt.date:
        return self.row["enrollment_start_date"]

    @property
    def end(self) -> dt.date:
        return self.row["enrollment_end_date"]


class _Applier:
    """Applies one file's member changes to the spans of the people it names."""

    def __init__(self, conn: Connection, file_name: str, spans: dict[str, list[Span]]) -> None:
        self.conn, self.file_name, self.spans = conn, file_name, spans
        self.changes: list[dict] = []
        self.employers: dict[str, str | None] = {}
        self.plans: dict[str, tuple[str, str]] = {}
        self.counts = {"added": 0, "terminated": 0, "reinstated": 0, "changed": 0}

    def error(self, message: str, segment: str, field: str | None = None) -> LoadError:
        return LoadError(message, file=self.file_name, segment=segment, field=field)

    # --- identity ------------------------------------------------------------------------------

    def employer_of(self, file: EnrollmentFile, m: MemberChange) -> str:
        group = m.group_policy_number or file.sponsor_id or file.master_policy_number
        if not group:
            raise self.error("no group: neither REF*1L on the member nor an N1*P5 sponsor id", m.segment, "REF*1L")
        self.employers.setdefault(group, file.sponsor_name)
        return group

    def member_id_of(self, m: MemberChange) -> str:
        if not m.subscriber_id:
            raise self.error("the member has no subscriber number (REF*0F)", m.segment, "REF*0F")
        if m.is_subscriber:
            return m.subscriber_id
        if m.member_id_qualifier == "ZZ" and m.member_id:
            return m.member_id
        if m.other_ids.get("23"):
            return m.other_ids["23"]
        basis = m.member_id or f"{m.last_name}|{m.first_name}|{m.birth_date}"
        if not (m.member_id or m.last_name):
            raise self.error("a dependent needs NM109 or a name to be told apart", m.segment, "NM1*IL")
        return f"{m.subscriber_id}-{hashlib.sha256(basis.encode()).hexdigest()[:8]}"

    # --- changes -------------------------------------------------------------------------------

    def apply(self, file: EnrollmentFile, m: MemberChange) -> None:
        group = self.employer_of(file, m)
        member_id = self.member_id_of(m)
        payer = file.payer_name or file.payer_id or "unknown"
        spans = self.spans.setdefault(member_id, [])
        self._demographics(spans, m, group, member_id)
        if not m.coverages:
            if m.maintenance_type == "024":
                self._terminate_all(spans, m, group, member_id)
            elif m.maintenance_type == "025":
                self._reinstate_all(spans, m, group, member_id)
            elif m.maintenance_type in ("021", "030"):
                raise self.error("an addition needs an HD (health coverage) loop", m.segment, "HD")
            elif not spans:
                raise self.error(f"change for member {member_id}, who has no enrollment from an 834 yet; load "
                                 "their addition first", m.segment, "INS03")
            return
        for cov in m.coverages:
            plan = cov.plan_description or cov.insurance_line or "unknown"
            self.plans.setdefault(plan, (group, payer))
            kind = cov.maintenance_type
            if kind in ("021", "030"):
                self._add(spans, m, cov, group, member_id, payer, plan)
            elif kind == "024":
                self._terminate(spans, m, cov, group, member_id, plan)
            elif kind == "025":
                self._reinstate(spans, m, cov, group, member_id, payer, plan)
            else:
                self._change_coverage(spans, m, cov, group, member_id, plan)

    def _log(self, m: MemberChange, group: str, member_id: str, action: str, *, cov: Coverage | None = None,
             plan: str | None = None, effective: dt.date | None = None) -> None:
        self.changes.append({
            "segment": cov.segment if cov else m.segment, "employer_id": group, "person_id": member_id,
            "subscriber_id": m.subscriber_id, "relationship_code": m.relationship_code,
            "maintenance_type": cov.maintenance_type if cov else m.maintenance_type,
            "maintenance_reason": m.maintenance_reason, "insurance_line": cov.insurance_line if cov else None,
            "plan": plan, "coverage_level": cov.coverage_level if cov else None, "effective_date": effective,
            "action": action})

    def _new_row(self, m: MemberChange, group: str, member_id: str, payer: str, plan: str, start: dt.date,
                 end: dt.date) -> dict:
        known = self.spans.get(member_id, [])
        person = {k: v for k, v in max(known, key=lambda sp: sp.start).row.items() if k in PERSON_FIELDS} \
            if known else {}
        row = {k: None for k in ELIGIBILITY_COLUMNS}
        row.update(person)
        row.update({"person_id": member_id, "member_id": member_id, "subscriber_id": m.subscriber_id,
               "enrollment_start_date": start, "enrollment_end_date": end, "payer": payer,
               "payer_type": "commercial", "plan": plan, "group_id": group, "group_name": self.employers.get(group),
               "subscriber_relation": RELATIONS.get(m.relationship_code, "Other"), "data_source": SOURCE,
               "file_name": self.file_name})
        row.update(self._person_fields(m))
        return row

    @staticmethod
    def _person_fields(m: MemberChange) -> dict:
        fields = {"first_name": m.first_name, "middle_name": m.middle_name, "last_name": m.last_name,
                  "birth_date": m.birth_date, "gender": GENDERS.get(m.gender or ""),
                  "address": " ".join(x for x in (m.address_line1, m.address_line2) if x) or None,
                  "city": m.city, "state": m.state, "zip_code": m.postal_code}
        return {k: v for k, v in fields.items() if v is not None}

    def _demographics(self, spans: list[Span], m: MemberChange, group: str, member_id: str) -> None:
        fields = self._person_fields(m)
        changed = sorted({k for sp in spans for k, v in fields.items() if sp.row.get(k) != v})
        for span in spans:
            span.row.update(fields)
        if changed:
            self.counts["changed"] += 1
            self._log(m, group, member_id, "demographics changed: " + ", ".join(changed))

    def _start_date(self, m: MemberChange, cov: Coverage) -> dt.date:
        start = cov.benefit_begin or m.eligibility_begin or m.maintenance_effective
        if start is None:
            raise self.error("an addition needs a start date (DTP*348 on the HD, or DTP*356 / DTP*303)",
                             cov.segment, "DTP*348")
        return start

    def _add(self, spans, m, cov, group, member_id, payer, plan) -> None:
        start = self._start_date(m, cov)
        end = cov.benefit_end or m.eligibility_end or OPEN_END
        if end < start:
            raise self.error(f"coverage ends ({end}) before it begins ({start})", cov.segment, "DTP*349")
        same_plan = [sp for sp in spans if sp.row["plan"] == plan and sp.row["payer"] == payer]
        for sp in list(same_plan):
            if sp.start == start:
                spans.remove(sp)  # the same addition again: replace it
            elif sp.start < start <= sp.end:
                sp.row["enrollment_end_date"] = start - DAY  # re-enrolment closes the earlier span
        tier = cov.coverage_level or next((sp.tier for sp in same_plan if sp.tier), None)
        spans.append(Span(self._new_row(m, group, member_id, payer, plan, start, end), tier))
        self.counts["added"] += 1
        self._log(m, group, member_id, "span opened", cov=cov, plan=plan, effective=start)

    def _end_date(self, m: MemberChange, cov: Coverage | None) -> dt.date:
        end = (cov.benefit_end if cov else None) or m.eligibility_end or m.maintenance_effective
        if end is None:
            raise self.error("a termination needs an end date (DTP*349 on the HD, or DTP*357 / DTP*303)",
                             cov.segment if cov else m.segment, "DTP*349" if cov else "DTP*357")
        return end

    def _close(self, candidates: list[Span], end: dt.date, where: str, what: str) -> Span:
        """End the latest span that has begun by ``end`` and is still open on it."""
        live = [sp for sp in candidates if sp.start <= end <= sp.end]
        if not live:
            later = [sp for sp in candidates if sp.start > end]
            why = f"is before {what} began ({min(sp.start for sp in later)})" if later else \
                f"is for {what}, which has no enrollment span open then"
            raise self.error(f"termination on {end} {why}", where, "DTP*349")
        span = max(live, key=lambda sp: sp.start)
        span.row["enrollment_end_date"] = end
        return span

    def _terminate(self, spans, m, cov, group, member_id, plan) -> None:
        end = self._end_date(m, cov)
        self._close([sp for sp in spans if sp.row["plan"] == plan], end, cov.segment,
                    f"member {member_id} plan {plan}")
        self.counts["terminated"] += 1
        self._log(m, group, member_id, "span closed", cov=cov, plan=plan, effective=end)

    def _terminate_all(self, spans, m, group, member_id) -> None:
        end = self._end_date(m, None)
        open_plans = {sp.row["plan"] for sp in spans if sp.end >= end}
        if not open_plans:
            raise self.error(f"termination on {end} for member {member_id}, who has no enrollment span open then",
                             m.segment, "INS03")
        for plan in sorted(open_plans):
            self._close([sp for sp in spans if sp.row["plan"] == plan], end, m.segment, f"member {member_id}")
            self._log(m, group, member_id, "span closed", plan=plan, effective=end)
        self.counts["terminated"] += 1

    def _reinstate(self, spans, m, cov, group, member_id, payer, plan) -> None:
        same = [sp for sp in spans if sp.row["plan"] == plan]
        if not same:
            raise self.error(f"reinstatement for member {member_id} plan {plan}, which was never enrolled",
                             cov.segment, "HD01")
        latest = max(same, key=lambda sp: sp.start)
        end = cov.benefit_end or OPEN_END
        begin = cov.benefit_begin
        if begin is not None and begin > latest.end + DAY:
            spans.append(Span(self._new_row(m, group, member_id, payer, plan, begin, end), latest.tier))
        else:
            latest.row["enrollment_end_date"] = end
        self.counts["reinstated"] += 1
        self._log(m, group, member_id, "span reopened", cov=cov, plan=plan, effective=begin or latest.start)

    def _reinstate_all(self, spans, m, group, member_id) -> None:
        if not spans:
            raise self.error(f"reinstatement for member {member_id}, who was never enrolled", m.segment, "INS03")
        for plan in sorted({sp.row["plan"] for sp in spans}):
            latest = max((sp for sp in spans if sp.row["plan"] == plan), key=lambda sp: sp.start)
            latest.row["enrollment_end_date"] = m.eligibility_end or OPEN_END
            self._log(m, group, member_id, "span reopened", plan=plan, effective=latest.start)
        self.counts["reinstated"] += 1

    def _change_coverage(self, spans, m, cov, group, member_id, plan) -> None:
        same = [sp for sp in spans if sp.row["plan"] == plan]
        if not same:
            raise self.error(f"coverage change for member {member_id} plan {plan}, which is not enrolled",
                             cov.segment, "HD01")
        self.counts["changed"] += 1
        if not cov.coverage_level:
            self._log(m, group, member_id, "no span change", cov=cov, plan=plan)
            return
        effective = cov.benefit_begin or m.maintenance_effective
        current = max(same, key=lambda sp: sp.start)
        if effective is None or effective <= current.start:
            current.tier = cov.coverage_level
        elif effective <= current.end:
            new_row = dict(current.row, enrollment_start_date=effective)
            current.row["enrollment_end_date"] = effective - DAY
            spans.append(Span(new_row, cov.coverage_level))
        else:
            raise self.error(f"tier change on {effective} after the coverage ended ({current.end})", cov.segment,
                             "DTP*303")
        self._log(m, group, member_id, "tier changed", cov=cov, plan=plan, effective=effective)


def _member_ids(files: list[EnrollmentFile], applier: _Applier) -> set[str]:
    return {applier.member_id_of(m) for f in files for m in f.members}


def _existing_spans(conn: Connection, member_ids: set[str]) -> dict[str, list[Span]]:
    e, t = s.eligibility, s.member_coverage_tier
    out: dict[str, list[Span]] = {}
    ids = sorted(member_ids)
    for i in range(0, len(ids), 1000):
        rows = conn.execute(
            sa.select(e, t.c.tier_code)
            .outerjoin(t, sa.and_(t.c.person_id == e.c.person_id, t.c.member_id == e.c.member_id,
                                  t.c.enrollment_start_date == e.c.enrollment_start_date))
            .where(e.c.data_source == SOURCE, e.c.person_id.in_(ids[i:i + 1000]))
        ).mappings().all()
        for row in rows:
            values = {k: v for k, v in row.items() if k != "tier_code"}
            out.setdefault(row["person_id"], []).append(Span(values, row["tier_code"]))
    return out


def _write(conn: Connection, applier: _Applier, digest: str) -> int:
    e, t = s.eligibility, s.member_coverage_tier
    ids = sorted(applier.spans)
    for i in range(0, len(ids), 1000):
        chunk = ids[i:i + 1000]
        # Tiers have no data_source: remove only those of this source's spans.
        conn.execute(t.delete().where(t.c.person_id.in_(chunk), sa.exists().where(
            e.c.person_id == t.c.person_id, e.c.member_id == t.c.member_id,
            e.c.enrollment_start_date == t.c.enrollment_start_date, e.c.data_source == SOURCE)))
        conn.execute(e.delete().where(e.c.data_source == SOURCE, e.c.person_id.in_(chunk)))
    rows, tiers = [], {}
    for spans in applier.spans.values():
        for sp in spans:
            rows.append(sp.row)
            key = (sp.row["person_id"], sp.row["member_id"], sp.start)
            if sp.tier and key not in tiers:  # one tier per span start: the first plan's (medical first)
                tiers[key] = {"person_id": key[0], "member_id": key[1], "enrollment_start_date": key[2],
                              "tier_code": sp.tier}
    if rows:
        columns = {c.name for c in e.columns}
        conn.execute(e.insert(), [{k: v for k, v in r.items() if k in columns} for r in rows])
    taken = set()
    keys = sorted({k[0] for k in tiers})
    for i in range(0, len(keys), 1000):
        taken |= {tuple(r) for r in conn.execute(sa.select(t.c.person_id, t.c.member_id, t.c.enrollment_start_date)
                                                 .where(t.c.person_id.in_(keys[i:i + 1000])))}
    fresh = [v for k, v in tiers.items() if k not in taken]  # a span of another source keeps its tier
    if fresh:
        conn.execute(t.insert(), fresh)
    for group, name in applier.employers.items():
        if not conn.execute(sa.select(s.employer.c.employer_id).where(s.employer.c.employer_id == group)).first():
            conn.execute(s.employer.insert().values(employer_id=group, employer_name=name or f"Group {group}"))
    for plan, (group, payer) in applier.plans.items():
        if not conn.execute(sa.select(s.plan.c.plan_id).where(s.plan.c.plan_id == plan)).first():
            conn.execute(s.plan.insert().values(plan_id=plan, employer_id=group, plan_name=plan, payer=payer))
    if applier.changes:
        conn.execute(s.enrollment_change.insert(), [
            {"change_id": f"{digest[:16]}-{n}", "source_file": applier.file_name, **change}
            for n, change in enumerate(applier.changes, start=1)])
    return len(rows)


def load_834_files(conn: Connection, paths: Sequence[Path], *,
                   progress: Callable[[str], None] | None = None) -> list[FileResult]:
    """Parse every file first (grammar errors reject the load before anything is written), then apply
    them in the given order inside the caller's transaction."""
    parsed = []
    for path in paths:
        if progress:
            progress(f"checking {path.name}")
        parsed.append((path, sha256_of(path), parse_834(read_x12_text(path), source=path.name)))
    results = []
    for path, digest, files in parsed:
        result = FileResult(file=path.name, source=SOURCE)
        if already_loaded(conn, source=SOURCE, sha256=digest):
            result.skipped = True
            results.append(result)
            continue
        if progress:
            progress(f"applying {path.name}")
        probe = _Applier(conn, path.name, {})
        applier = _Applier(conn, path.name, _existing_spans(conn, _member_ids(files, probe)))
        for file in files:
            for member in file.members:
                applier.apply(file, member)
        spans = _write(conn, applier, digest)
        result.rows = {**{k: v for k, v in applier.counts.items() if v}, "eligibility spans written": spans}
        dates = [f.created for f in files if f.created]
        # An 834 touches the employers (plan sponsors) whose members it changed.
        record_load(conn, source=SOURCE, file_name=path.name, sha256=digest, rows=len(applier.changes),
                    data_as_of=max(dates) if dates else None, practices=(),
                    employers={*applier.employers, *(c["employer_id"] for c in applier.changes)})
        results.append(result)
    return results
