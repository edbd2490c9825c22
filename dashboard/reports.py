"""The report catalog: every table the product shows, exports or prints, in one list.

A report is a metric (or a join of metrics) plus its columns, its audience and, for employer
reports, its suppression rule. Pages, the CSV export route and ``dashboard report`` all call
:func:`run_report` (claim-level reports: :func:`report_page` and :func:`export_report`, over the same rows), so
they cannot disagree about a number or about who may see it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from dashboard import access, entities, exports, paging
from dashboard import deidentified as di
from dashboard.errors import AccessDenied, BadInput, NotFound
from dashboard.metrics import builder as rb
from dashboard.metrics import cost_drivers as cd
from dashboard.metrics import denial_risk as dr
from dashboard.metrics import employer as em
from dashboard.metrics import employer_trend as et
from dashboard.metrics import practice as pm
from dashboard.metrics import remittance as rm
from dashboard.metrics.filters import Filters
from dashboard.metrics.kpis import KPIS, PRACTICE_KPIS
from dashboard.report_cache import ReportCache, data_version, file_version
from dashboard.warehouse import schema as s
from dashboard.warehouse.engine import require_schema


@dataclass(frozen=True)
class Report:
    name: str
    title: str
    audience: str  # practice | employer | admin
    columns: tuple[str, ...]
    build: Callable[[Connection, Filters], pd.DataFrame]
    description: str
    money: tuple[str, ...] = ()
    rates: tuple[str, ...] = ()
    # how the report is built for de-identified viewers (employer users); None: not shown to them
    privacy: di.Protection | None = None
    # rows are claims, claim lines or payments (trace numbers): kept in each process only, never in the
    # shared (Redis) report cache, so no claim row leaves the process (dashboard.report_cache.shareable)
    claim_level: bool = False
    # a parameterised report's options: name -> the values it takes, the first the default (Filters.options)
    options: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # a report composed of other frames (by name, RAW_FRAMES): run_report gives it those frames through the report
    # cache, so a page's sections share them; ``build`` is the same composition without a cache
    compose: Callable[[Filters, Callable[[str, Filters], pd.DataFrame]], pd.DataFrame] | None = None


_MONEY_KPIS = ("charges", "payments", "payer_payments", "patient_payments", "refunds", "contractual_adjustments",
               "ar_balance", "credit_balances",
               "provider_adjustments", "payer_cash")  # 835 PLB, and the cash: payer_payments − provider_adjustments
# practice KPI columns, in the registry's order (a KPI added there is a column here)
_PRACTICE_KPI_COLUMNS = tuple(k.name for k in PRACTICE_KPIS)
_ADJ_COLUMNS = ("practice_id", "month", "payer", "group_code", "carc", "reason", "category", "claims", "amount")

def _composed(compose: Callable[[Filters, Callable[[str, Filters], pd.DataFrame]], pd.DataFrame]
              ) -> Callable[[Connection, Filters], pd.DataFrame]:
    """A composed report's ``build``: its composition over RAW_FRAMES read on ``conn``, with no cache."""
    return lambda conn, f: compose(f, lambda name, g: RAW_FRAMES[name](conn, g))


# the full view of the composed employer reports (employer users': dashboard.deidentified, over published frames)
_TREND = functools.partial(et.employer_trend, deidentified=False)
_COST_DRIVERS = functools.partial(cd.cost_drivers, deidentified=False)
_BUILDER = functools.partial(rb.build, deidentified=False)

CATALOG: dict[str, Report] = {r.name: r for r in (
    Report("practice-kpis", "Practice KPIs by month", "practice",
           ("practice_id", "month", *_MONEY_KPIS, *_PRACTICE_KPI_COLUMNS),
           pm.practice_kpis, "Charges, payments, A/R and every revenue-cycle KPI per practice and month.",
           money=_MONEY_KPIS),
    Report("practice-summary", "Practice KPIs for the period", "practice",
           ("practice_id", *_MONEY_KPIS, *_PRACTICE_KPI_COLUMNS),
           pm.practice_summary, "Each KPI over the whole period (Σ numerator ÷ Σ denominator); A/R at its end.",
           money=_MONEY_KPIS),
    Report("ar-aging", "A/R aging", "practice", ("practice_id", "payer", "bucket", "open_claims", "balance"),
           pm.ar_aging, "Open balances at the end of the period by payer and age from date of service.",
           money=("balance",)),
    Report("open-claims", "Open claims (A/R)", "practice", pm.OPEN_CLAIMS_PAGED, pm.open_claims,
           "Each claim with a balance owed at the end of the period, by party (its payer, or Patient), with its "
           "age from the date of service: the claims behind A/R and its aging.", money=("balance",),
           claim_level=True),
    Report("first-denials", "Claims denied on their first 835", "practice", pm.FIRST_DENIALS_PAGED,
           pm.first_denials, "The claims behind the denial rate: each claim whose first 835, paid in the period, "
           "denied it in full or in part, and where it stands now (latest outcome and denial codes, appeal, what "
           "the payer paid and still owes).", money=("charge", "payer_paid", "payer_balance"), claim_level=True),
    Report("denial-worklist", "Denial worklist (open denials)", "practice", pm.DENIAL_WORKLIST_PAGED,
           pm.denial_worklist,
           "Claims whose latest 835 denied them, in full or in part, that the payer still owes on: most recoverable "
           "first while the appeal window is open (the denial's date + the payer's appeal days), then appealed, "
           "then expired; with the denial codes, the reason and the remark's meaning. As the claims stand now, "
           "days counted to the end of the period.", money=("denied_amount", "recoverable"), claim_level=True),
    Report("ar-follow-up", "A/R follow-up (no payer answer)", "practice", pm.AR_FOLLOW_UP_PAGED, pm.ar_follow_up,
           "Claims sent to a payer that has not answered (no 835) for at least its follow-up days, oldest and "
           "largest first. As the claims stand now, days counted to the end of the period.",
           money=("charge", "balance"), claim_level=True),
    Report("unmatched-payments", "Unmatched payments", "practice", pm.UNMATCHED_PAYMENTS_PAGED,
           pm.unmatched_payments, "835 money paid in the period that does not match the books: claim payments whose "
           "CLP01 names no claim of the practice (no such claim), and claims paid without a denial whose total paid "
           "differs from what the claim record expects (underpaid or overpaid, the difference signed).",
           money=("paid", "expected", "difference"), claim_level=True),
    Report("eligibility-pending", "Eligibility to check", "practice", pm.ELIGIBILITY_PENDING_PAGED,
           pm.eligibility_pending, "Visits within 30 days either side of the period's end whose latest 270/271 "
           "check has no answer yet, failed, or found the coverage inactive, the soonest visit first.",
           claim_level=True),
    Report("claim-lifecycle", "Claim lifecycle by payer", "practice",
           ("practice_id", "payer", *pm.LIFECYCLE_STAGES, *pm.LIFECYCLE_DAYS), pm.claim_lifecycle,
           "The claims first sent in the period, as they stand now: submitted, accepted (277CA), adjudicated, "
           "paid, denied on the first 835, appealed, overturned; and the median days of each stage (charge lag, "
           "to acceptance, to adjudication, to payment), by payer."),
    Report("denial-risk", "Denial risk of unanswered claims", "practice",
           ("practice_id", "claim_id", "payer", "service_date", "submitted_date", "charge", "balance", "risk",
            "base_rate", "risk_band", "reasons"), dr.denial_risk,
           "Each claim sent and not yet answered, scored by a model learned from its practice's own first "
           "adjudications (payer, procedure, modifier, place of service, lines, diagnoses, eligibility check): the "
           "chance its first 835 denies it, the practice's base rate, and the reasons in words. Highest first.",
           money=("charge", "balance"), rates=("risk", "base_rate"), claim_level=True),
    Report("worklist-summary", "Worklists: claims and dollars", "practice",
           ("practice_id", "worklist", "claims", "amount", "due_soon"), pm.worklist_summary,
           "Rows and dollars on each worklist (denial-worklist: recoverable; ar-follow-up: owed by payers; "
           "unmatched-payments: the money not matching; eligibility-pending: visits, no dollars; patient-balances: "
           "owed by patients) and those due soon: an appeal window closing within 14 days, a follow-up twice "
           "overdue, a payment for no claim on the books, a visit within 7 days, a patient balance over 90 days.",
           money=("amount",)),
    Report("adjustments", "Adjustments (CAS)", "practice", _ADJ_COLUMNS, pm.adjustments,
           "Every 835 CAS adjustment by month, payer, group code and reason code.", money=("amount",)),
    Report("denials", "Denials", "practice", _ADJ_COLUMNS, pm.denials,
           "835 adjustments that are denials (not contractual, not patient cost share).", money=("amount",)),
    Report("denied-claims", "Denial worklist", "practice",
           ("practice_id", "claim_id", "payer", "payment_date", "claim_status", "claim_charge", "claim_paid",
            "line_number", "procedure_code", "group_code", "carc", "carc_reason", "amount", "remark_codes",
            "matched"),
           pm.denied_claims, "Each denial adjustment with its claim, service line and remark codes (line 0 = "
           "claim level).", money=("claim_charge", "claim_paid", "amount"), claim_level=True),
    Report("remittances", "Remittances (835 payments)", "practice",
           ("practice_id", "trace_number", "payer", "payment_date", "method", "amount", "claims",
            "unmatched_claims", "claim_payments", "provider_adjustments", "difference"),
           pm.remittances, "ERA payments with trace numbers and the claims they pay, reconciled: amount (BPR02) = "
           "claim_payments (Σ CLP04) − provider_adjustments (Σ PLB), difference 0.00 when the 835 balances.",
           money=("amount", "claim_payments", "provider_adjustments", "difference"), claim_level=True),
    Report("provider-adjustments", "Provider-level adjustments (PLB)", "practice", rm.COLUMNS,
           rm.provider_adjustments, "835 PLB adjustments by payment month, payer and reason code (L6 interest, WO "
           "overpayment recovery, FB forwarding balance, …): positive amounts are withheld from the payment, "
           "negative ones added to it.", money=("amount",)),
    Report("payer-mix", "Payer mix", "practice", ("practice_id", "payer", "claims", "charges", "share_of_charges"),
           pm.payer_mix, "Share of gross charges by payer.", money=("charges",), rates=("share_of_charges",)),
    Report("eligibility-checks", "Eligibility checks (270/271)", "practice",
           ("practice_id", "month", "checks", "verified", "pending", "inactive", "errors", "verification_rate"),
           pm.eligibility_checks, "Insurance verification by month of service, with pending checks.",
           rates=("verification_rate",)),
    Report("patient-balances", "Patient balances", "practice", ("practice_id", "bucket", "open_claims", "balance"),
           pm.patient_balances, "Patient responsibility still open, by age.", money=("balance",)),
    Report("credit-balances", "Credit balances", "practice",
           ("practice_id", "claim_id", "owed_to", "service_date", "credit_since", "amount"), pm.credit_balances,
           "Claims in credit at the end of the period (refunds or corrections owed to the payer or the patient), "
           "kept out of A/R.", money=("amount",), claim_level=True),
    Report("payment-methods", "Payment method mix", "practice",
           ("practice_id", "month", "method", "method_name", "payments", "amount", "share_of_amount"),
           pm.payment_methods, "835 payments by month and method (BPR04: EFT, check, wire, virtual card, none), their "
           "count, dollars and share of the month's dollars.", money=("amount",), rates=("share_of_amount",)),
    Report("payment-channel-fees", "Payment-channel fees", "practice",
           ("practice_id", "month", "eft_payments", "fee_rate", "fee_cap", "fee"), pm.payment_channel_fees,
           "Premium payment-portal fees: 0.5% of EFT payments, capped at $2,000 a month per TIN, unless the "
           "practice's own terms say otherwise (dashboard fees set).",
           money=("eft_payments", "fee_cap", "fee"), rates=("fee_rate",)),
    Report("employer-summary", "Employer summary for the period", "employer",
           ("employer_id", "members", "subscribers", "member_months", "subscriber_months", "claims_months", "paid",
            "allowed", "pmpm_paid", "pmpm_allowed", "pepm_paid", "in_network_share", "inpatient_admissions",
            "inpatient_days", "average_length_of_stay", "high_cost_claimants"),
           em.employer_summary, "Enrollment at the end of the period; spend, PMPM and PEPM over its months with "
           "claims data (claims_months), in-network share, admissions and average length of stay.",
           money=("paid", "allowed", "pmpm_paid", "pmpm_allowed", "pepm_paid"), privacy=di.SUMMARY),
    Report("claims-completion", "Claims lag and completion", "employer",
           ("employer_id", "month", "status", "months_of_runout", "completion", "member_months", "paid",
            "estimated_paid", "pmpm_paid", "estimated_pmpm_paid", "claims_lag_days"),
           em.claims_completion, "Each incurred month's run-out: completion estimated from the claims' own lag "
           "(chain ladder), paid to date and the estimated ultimate paid and PMPM; complete at ≥ 95%.",
           money=("paid", "estimated_paid", "pmpm_paid", "estimated_pmpm_paid"), privacy=di.COMPLETION),
    Report("network", "Spend in and out of network", "employer",
           ("employer_id", "month", "network", "paid", "allowed", "claims", "members_with_claims", "share_of_paid"),
           em.network, "Paid and allowed by network (the claim lines' in-network flag), claims in enrolled months.",
           money=("paid", "allowed"), rates=("share_of_paid",), privacy=di.NETWORK),
    Report("enrollment", "Enrollment", "employer",
           ("employer_id", "month", "plan", "tier", "members", "subscribers", "adds", "terms", "member_months"),
           em.enrollment, "Members, subscribers, adds and terms by plan and coverage tier.",
           privacy=di.ENROLLMENT),
    Report("demographics", "Members by age band and gender", "employer",
           ("employer_id", "month", "age_band", "gender", "members", "subscribers"), em.demographics,
           "Members and subscribers enrolled in each month by age band (age on the month's first day) and gender.",
           privacy=di.DEMOGRAPHICS),
    Report("enrollment-changes", "834 enrollment changes by reason", "employer",
           ("employer_id", "month", "change", "maintenance_type", "maintenance_reason", "reason", "people"),
           em.enrollment_changes, "834 maintenances by month of their effective date, type (INS03) and reason "
           "(INS04, in words): the people each concerned. Only 834 loads record these.",
           privacy=di.ENROLLMENT_CHANGES),
    Report("spend", "Spend and PMPM by service category", "employer",
           ("employer_id", "month", "service_category", "paid", "allowed", "member_months", "pmpm_paid",
            "pmpm_allowed", "claims", "members_with_claims"),
           em.spend, "Paid and allowed per member per month, by Tuva service category.",
           money=("paid", "allowed", "pmpm_paid", "pmpm_allowed"), privacy=di.SPEND),
    Report("spend-outside-enrollment", "Spend outside enrollment", "employer",
           ("employer_id", "month", "paid", "allowed", "claims", "members_with_claims"),
           em.spend_outside_enrollment, "Claims in months without enrollment (not in PMPM).",
           money=("paid", "allowed"), privacy=di.OUTSIDE),
    Report("utilization", "Utilization per 1,000", "employer",
           ("employer_id", "month", "measure", "events", "members_with_events", "member_months", "per_1000"),
           em.utilization, "Events per 1,000 members per year (events ÷ member months × 12,000).",
           privacy=di.UTILIZATION),
    Report("employer-trend", "Current period against its base", "employer", et.COLUMNS,
           _composed(_TREND),
           "PMPM (total, medical, pharmacy, each service category), PEPM, utilization per 1,000, average length "
           "of stay and members in the period against the base period of equal length just before it: the change "
           "in the measure's unit and in %, and the paid dollars behind each PMPM; over the months with claims "
           "data, Σ ÷ Σ.", money=("paid", "base_paid"), rates=("change_pct",), privacy=di.TREND,
           compose=_TREND),
    Report("cost-drivers", "Cost drivers", "employer", cd.COLUMNS,
           _composed(_COST_DRIVERS),
           "Paid, PMPM and share of the period's paid by service category 2, condition group (CCSR body system of "
           "the primary diagnosis), place of service and billing organisation, against the base period of equal "
           "length before it; and the share of each calendar year's paid that went to members over $50k.",
           money=("paid", "pmpm_paid", "base_paid", "base_pmpm_paid", "pmpm_change"),
           rates=("share_of_paid", "pmpm_change_pct"), privacy=di.COST_DRIVERS,
           compose=_COST_DRIVERS),
    Report("builder", "Report builder", "employer", rb.COLUMNS,
           _composed(_BUILDER),
           "One measure (measure=) by one grouping (by=) over the period, against a comparison period (compare=: "
           "prior, the period of equal length before; year, the same months a year earlier; none), the selected "
           "employers together; a grouping that does not carry the measure gives no rows. Money and events over the "
           "months with claims data, Σ ÷ Σ.",
           money=(), rates=("change_pct",), privacy=di.BUILDER,
           options={"measure": tuple(rb.MEASURES), "by": tuple(rb.GROUPINGS), "compare": tuple(rb.COMPARISONS)},
           compose=_BUILDER),
    Report("high-cost-claimants", "High-cost claimants", "employer",
           ("employer_id", "period", "band", "claimants", "paid", "pct_of_paid"), em.high_cost_claimants,
           "Members by total paid over the calendar (plan) year of the selection's last month, in "
           "$50k/$100k/$500k/$1M bands.",
           money=("paid",), rates=("pct_of_paid",), privacy=di.HIGH_COST),
)}


def get_report(name: str) -> Report:
    try:
        return CATALOG[name]
    except KeyError:
        raise NotFound(f"unknown report {name!r}; reports: {', '.join(CATALOG)}") from None


def reports_for(scope: access.Scope) -> list[Report]:
    return [r for r in CATALOG.values() if scope.can_view(r.audience)]


def _data_as_of_visible(conn: Connection, scope: access.Scope):
    """Which data_load rows ``scope`` may learn of: None for full access (all), False for none, else a
    predicate: loads whose data_load_scope names one of the scope's practices or employers, or 'all'.
    A load without scope rows (made before they existed) is for admins only: its tenants are unknown."""
    if scope.full_access:
        return None
    dl, dls = s.data_load, s.data_load_scope
    matches = [dls.c.kind == "all"]
    for kind, ids in (("practice", scope.practice_ids), ("employer", scope.employer_ids)):
        if ids is None:
            matches.append(dls.c.kind == kind)
        elif ids:
            matches.append(sa.and_(dls.c.kind == kind, dls.c.entity_id.in_(sorted(ids))))
    return sa.exists().where(dls.c.load_id == dl.c.load_id, sa.or_(*matches))


def data_as_of(conn: Connection, *, scope: access.Scope) -> dt.date:
    """The 'data as of' date for ``scope``: the newest as-of date of the loads it may see (every load for
    full access, else those that touched its practices or employers), else today. Scoped, because it is
    the default end of every report period and so shows in filters and export file names: another
    tenant's newer load must not move it."""
    query = sa.select(sa.func.max(s.data_load.c.data_as_of))
    visible = _data_as_of_visible(conn, scope)
    if visible is False:
        return dt.date.today()
    if visible is not None:
        query = query.where(visible)
    value = conn.execute(query).scalar()
    if isinstance(value, dt.datetime):
        value = value.date()
    return value or dt.date.today()


def data_as_of_by_source(conn: Connection, *, scope: access.Scope) -> dict[str, dt.date]:
    """The newest 'data as of' date of each load source (demo, tuva, x12-835, x12-834) among the loads
    ``scope`` may see (see :func:`data_as_of`): a practice manager never learns of another practice's 835."""
    dl = s.data_load
    visible = _data_as_of_visible(conn, scope)
    if visible is False:
        return {}
    query = sa.select(dl.c.source, sa.func.max(sa.func.coalesce(dl.c.data_as_of, sa.cast(dl.c.loaded_at, sa.Date))))
    if visible is not None:
        query = query.where(visible)
    rows = conn.execute(query.group_by(dl.c.source).order_by(dl.c.source)).all()
    return {source: (value.date() if isinstance(value, dt.datetime) else value) for source, value in rows if value}


@dataclass(frozen=True)
class ReportResult:
    report: Report
    filters: Filters
    frame: pd.DataFrame


class _Reader:
    """One request's view of the warehouse. It opens a connection only when something must be read; for a
    DuckDB file the schema check, the known ids, each scope's 'data as of' and the data version are kept per
    file version in the report cache, so a request answered from the cache opens no file at all."""

    def __init__(self, engine: Engine, cache: ReportCache | None) -> None:
        self.engine, self.cache = engine, cache
        self.url = engine.url.render_as_string()
        self.stamp = file_version(engine.url) if cache is not None else None
        self._stack = contextlib.ExitStack()
        self._conn: Connection | None = None

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            self._conn = self._stack.enter_context(self.engine.connect())
        return self._conn

    def memo(self, name: Hashable, compute: Callable[[Connection], object]) -> object:
        if self.cache is None or self.stamp is None:
            return compute(self.conn)
        return self.cache.memo((self.url, self.stamp, name), lambda: compute(self.conn))

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()


def freshness(*, scope: access.Scope, engine: Engine, cache: ReportCache | None = None) -> dict[str, dt.date]:
    """:func:`data_as_of_by_source` for the navbar of every page, kept per warehouse file version (a DuckDB
    warehouse is then not even opened on a warm request)."""
    with _Reader(engine, cache) as reader:
        return reader.memo(("as_of_by_source", scope.role, scope.practice_ids, scope.employer_ids),
                           lambda conn: data_as_of_by_source(conn, scope=scope))


def default_end(conn: Connection, *, scope: access.Scope, audience: str, as_of: dt.date | None = None) -> dt.date:
    """The last month of a period nobody chose: for employer reports the latest month whose claims are complete
    (estimated ≥ 95% paid, see dashboard.metrics.employer.Completion), so the default period never ends in
    run-out; otherwise, and when there are no paid claims, the as-of month of the scope's own loads."""
    as_of = (as_of or data_as_of(conn, scope=scope)).replace(day=1)  # a caller that has it passes it
    if audience == "employer":
        complete = em.completion(conn, employer_ids=scope.employer_ids).complete_through()
        if complete is not None:
            return min(complete, as_of)
    return as_of


def resolve_options(report: Report, options: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    """``options`` checked against what ``report`` declares, the defaults filled in: an unknown name or value is
    BadInput naming what it takes (a report without options takes none)."""
    options = {k: v for k, v in (options or {}).items() if v not in (None, "")}
    unknown = sorted(set(options) - set(report.options))
    if unknown:
        raise BadInput(f"report {report.name} takes no option {unknown[0]!r}"
                       + (f"; options: {', '.join(report.options)}" if report.options else ""))
    chosen = []
    for name, values in sorted(report.options.items()):
        value = options.get(name, values[0])
        if value not in values:
            raise BadInput(f"{name} must be one of {', '.join(values)}, got {value!r}")
        chosen.append((name, value))
    return tuple(chosen)


def _resolve(reader: _Reader, scope: access.Scope, *, start, end, practice, employer,
             audience: str = "practice") -> Filters:
    """The filters a scope gets for a request (run_report and report_page resolve alike): months parsed,
    ids checked against the scope (and, for full access, against the ids that exist), the default end from
    :func:`default_end`."""
    reader.memo("schema", lambda conn: require_schema(conn) or True)
    practices = employers = None
    if scope.full_access:  # the one lookup of what exists (dashboard.entities), as the admin form and CLI use
        known = reader.memo("entities", lambda conn: entities.known(conn, reader.cache))
        practices, employers = set(known.practices), set(known.employers)
    last = reader.memo(("default_end", audience, scope.role, scope.practice_ids, scope.employer_ids),
                       lambda conn: default_end(conn, scope=scope, audience=audience))  # the scope's data only
    return access.resolve_filters(
        scope, start=start, end=end, practice=practice, employer=employer,
        known_practices=practices, known_employers=employers, default_end=last,
    )


def run_report(name: str, *, scope: access.Scope, engine: Engine, start: str | dt.date | None = None,
               end: str | dt.date | None = None, practice: Iterable[str] | str | None = None,
               employer: Iterable[str] | str | None = None, cache: ReportCache | None = None,
               options: Mapping[str, str] | None = None) -> ReportResult:
    """Run a report for a scope: checks the audience, resolves the filters through
    :mod:`dashboard.access` (and a parameterised report's ``options``), runs the metric (or takes it from
    ``cache``, keyed by the resolved filters) and, for de-identified viewers, suppresses small cells."""
    report = get_report(name)
    access.require_audience(scope, report.audience)
    with _Reader(engine, cache) as reader:
        filters = _resolve(reader, scope, start=start, end=end, practice=practice, employer=employer,
                           audience=report.audience)
        # after the scope: another tenant's id is refused before anything is said of the options
        filters = replace(filters, options=resolve_options(report, options))
        version = reader.memo("version", data_version) if cache is not None else None

        def raw(metric: str, f: Filters) -> pd.DataFrame:
            def build() -> pd.DataFrame:
                if metric.endswith(SHAPED):  # one entry per report: the raw frame it is shaped from is not kept
                    report_ = CATALOG[metric.removesuffix(SHAPED)]
                    return shape(report_, RAW_FRAMES[report_.name](reader.conn, f))
                return RAW_FRAMES[metric](reader.conn, f)

            if cache is None:
                return build()
            return cache.frame((reader.url, metric, f, version), build)

        if scope.deidentified:
            if report.privacy is None:  # deny by default: a report without a protection is not theirs
                raise AccessDenied("this report is not available to de-identified viewers")

            def protected() -> pd.DataFrame:
                return shape(report, report.privacy.build(filters, raw))

            if cache is None:
                return ReportResult(report, filters, protected())
            # What suppression publishes is a function of the resolved filters and the data alone (the canonical
            # grid: every viewer asking for the same employers and months sees the same cells), so the finished
            # frame is kept in this process under those and the data version; it never reaches the shared tier.
            key = (reader.url, "protected", report.name, filters, version)
            return ReportResult(report, filters, cache.memo(key, protected).copy())
        if report.compose is not None:  # its parts through the cache: the page's other sections read them too
            def composed() -> pd.DataFrame:
                return shape(report, report.compose(filters, raw))

            if cache is None:
                return ReportResult(report, filters, composed())
            return ReportResult(report, filters, cache.frame((reader.url, f"{report.name}{SHAPED}", filters, version),
                                                             composed))
        # everyone else reads the finished frame, so a warm request costs a copy
        return ReportResult(report, filters, raw(f"{report.name}{SHAPED}", filters))


SHAPED = ":shaped"  # a RAW_FRAMES name with this suffix: the report's frame as run_report returns it


def shape(report: Report, frame: pd.DataFrame) -> pd.DataFrame:
    """Order the columns, format months as YYYY-MM, round money to cents, rates to 4 places and KPIs as
    the registry says; a de-identified frame keeps its ``suppressed`` column."""
    frame = frame.copy()
    for col in report.columns:
        if col not in frame.columns:
            frame[col] = None
    frame = frame[[*report.columns, *(["suppressed"] if "suppressed" in frame.columns else [])]]
    if "month" in frame.columns:
        frame["month"] = [v.strftime("%Y-%m") if isinstance(v, dt.date) else v for v in frame["month"]]
    for col in (c for c in report.money if c in frame.columns):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").round(2)
    for col in (c for c in report.rates if c in frame.columns):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").round(4)
    for col in (c for c in frame.columns if c in KPIS):  # a KPI is rounded as the registry says
        frame[col] = pd.to_numeric(frame[col], errors="coerce").round(KPIS[col].decimals)
    return frame.reset_index(drop=True)


# The frames reports are built from, by name: every catalog report, and the month totals that
# de-identified period totals are summed from.
RAW_FRAMES: dict[str, Callable[[Connection, Filters], pd.DataFrame]] = {
    **{name: report.build for name, report in CATALOG.items()},
    "month-totals": em.month_totals,
    "cost-driver-cells": em.cost_driver_cells,
    "enrollment-flow": em.enrollment_flow,
}
# a composed report reads its parts under these names (RAW_FRAMES is every catalog report's build and these)


# --- one page of a report (the grids' server-side row model) ------------------------------------------------

@dataclass(frozen=True)
class ClaimRows:
    """How a claim-level report is read in the warehouse (over a claim-grain mart), never whole in memory:
    a page at a time (ORDER BY/LIMIT/OFFSET and a count) for the grids, every row written by the warehouse
    for a CSV."""

    page: Callable[..., tuple[pd.DataFrame, int]]
    columns: tuple[str, ...]  # the columns a page can be sorted and filtered on
    rows: Callable[[Filters], sa.Subquery]  # the scope's and period's rows, unordered
    order: tuple[str, ...]  # the report's own order; it identifies a row
    descending: tuple[str, ...] = ()  # columns of that order ranked high first (a worklist's ranking)


PAGED_IN_SQL: dict[str, ClaimRows] = {
    "denied-claims": ClaimRows(pm.denied_claims_page, pm.DENIED_CLAIMS_PAGED, pm.denied_claims_rows,
                               pm.DENIED_CLAIMS_ORDER),
    "denial-worklist": ClaimRows(pm.denial_worklist_page, pm.DENIAL_WORKLIST_PAGED, pm.denial_worklist_rows,
                                 pm.DENIAL_WORKLIST_ORDER, pm.DENIAL_WORKLIST_DESCENDING),
    "ar-follow-up": ClaimRows(pm.ar_follow_up_page, pm.AR_FOLLOW_UP_PAGED, pm.ar_follow_up_rows, pm.AR_FOLLOW_UP_ORDER),
    "unmatched-payments": ClaimRows(pm.unmatched_payments_page, pm.UNMATCHED_PAYMENTS_PAGED,
                                    pm.unmatched_payments_rows, pm.UNMATCHED_PAYMENTS_ORDER),
    "eligibility-pending": ClaimRows(pm.eligibility_pending_page, pm.ELIGIBILITY_PENDING_PAGED,
                                     pm.eligibility_pending_rows, pm.ELIGIBILITY_PENDING_ORDER),
    "first-denials": ClaimRows(pm.first_denials_page, pm.FIRST_DENIALS_PAGED, pm.first_denials_rows,
                               pm.FIRST_DENIALS_ORDER),
    "open-claims": ClaimRows(pm.open_claims_page, pm.OPEN_CLAIMS_PAGED, pm.open_claims_rows, pm.OPEN_CLAIMS_ORDER),
    "remittances": ClaimRows(pm.remittances_page, pm.REMITTANCES_PAGED, pm.remittances_rows, pm.REMITTANCES_ORDER),
}


@dataclass(frozen=True)
class ReportPage:
    report: Report
    filters: Filters
    frame: pd.DataFrame  # at most paging.MAX_ROWS rows, shaped like run_report's
    row_count: int  # rows matching the column filters, over every page


def sortable_columns(report: Report, *, deidentified: bool = False) -> tuple[str, ...]:
    """The columns :func:`report_page` can sort and filter ``report`` on."""
    if report.name in PAGED_IN_SQL:
        return PAGED_IN_SQL[report.name].columns
    return (*report.columns, *(("suppressed",) if deidentified and report.privacy is not None else ()))


def report_page(name: str, *, scope: access.Scope, engine: Engine, start: str | dt.date | None = None,
                end: str | dt.date | None = None, practice: Iterable[str] | str | None = None,
                employer: Iterable[str] | str | None = None, sort: Sequence[paging.Sort] = (),
                filters: Sequence[paging.ColumnFilter] = (), offset: int = 0, limit: int = paging.MAX_ROWS,
                cache: ReportCache | None = None, options: Mapping[str, str] | None = None) -> ReportPage:
    """Rows ``offset`` … ``offset + limit`` (at most paging.MAX_ROWS) of a report for a scope, sorted and
    filtered on the server. Aggregate reports are paged from :func:`run_report`'s frame (the same scope
    checks, cache and suppression: a de-identified viewer filters and sorts published cells only); the
    claim-level reports run their page in SQL, after the same audience check and filter resolution."""
    report = get_report(name)
    if report.name not in PAGED_IN_SQL:
        result = run_report(name, scope=scope, engine=engine, start=start, end=end, practice=practice,
                            employer=employer, cache=cache, options=options)
        frame, total = paging.frame_page(result.frame, sort=sort, filters=filters, offset=offset, limit=limit)
        return ReportPage(report, result.filters, frame, total)
    _require_claim_rows(scope, report)
    with _Reader(engine, cache) as reader:
        resolved = _resolve(reader, scope, start=start, end=end, practice=practice, employer=employer,
                           audience=report.audience)

        def page() -> tuple[pd.DataFrame, int]:
            return PAGED_IN_SQL[report.name].page(reader.conn, resolved, sort=tuple(sort), filters=tuple(filters),
                                                  offset=offset, limit=limit)

        if cache is None:
            frame, total = page()
        else:  # a memo stays in this process: claim rows never reach the shared tier
            version = reader.memo("version", data_version)
            key = (reader.url, "page", report.name, resolved, tuple(sort), tuple(filters), offset, limit, version)
            frame, total = cache.memo(key, page)
    return ReportPage(report, resolved, shape(report, frame.copy()), total)


def _require_claim_rows(scope: access.Scope, report: Report) -> None:
    access.require_audience(scope, report.audience)
    access.require_claim_rows(scope)  # as in run_report: claim rows have no protection, so never theirs


# --- a whole report as CSV ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReportExport:
    report: Report
    filters: Filters
    rows: int
    body: Iterator[bytes]  # the CSV (exports' rules), read as it is sent


def export_report(name: str, *, scope: access.Scope, engine: Engine, start: str | dt.date | None = None,
                  end: str | dt.date | None = None, practice: Iterable[str] | str | None = None,
                  employer: Iterable[str] | str | None = None, filters: Sequence[paging.ColumnFilter] = (),
                  cache: ReportCache | None = None, options: Mapping[str, str] | None = None) -> ReportExport:
    """A report as CSV for a scope, the rows :func:`run_report` gives (and of those, the ones the column
    ``filters`` keep, as its grid filters them): aggregate reports from its frame (the same cache and
    suppression); claim-level reports written by the warehouse from the rows their grid pages, so a million-row
    export costs the server neither the time nor the memory of a frame."""
    report = get_report(name)
    if report.name not in PAGED_IN_SQL:
        result = run_report(name, scope=scope, engine=engine, start=start, end=end, practice=practice,
                            employer=employer, cache=cache, options=options)
        frame = paging.frame_filter(result.frame, filters).reset_index(drop=True) if filters else result.frame
        body = (chunk.encode() for chunk in exports.iter_csv(frame, money=report.money))
        return ReportExport(report, result.filters, len(frame), body)
    _require_claim_rows(scope, report)
    claim_rows = PAGED_IN_SQL[report.name]
    with _Reader(engine, cache) as reader:
        resolved = _resolve(reader, scope, start=start, end=end, practice=practice, employer=employer,
                           audience=report.audience)
        rows = claim_rows.rows(resolved)
        if filters:
            where = paging.sql_where({name: rows.c[name] for name in claim_rows.columns}, filters)
            rows = sa.select(rows).where(*where).subquery("filtered")
        count = reader.conn.execute(sa.select(sa.func.count()).select_from(rows)).scalar_one()
    body = exports.iter_query_csv(engine, rows, columns=report.columns, order=claim_rows.order, money=report.money,
                                  descending=claim_rows.descending)
    return ReportExport(report, resolved, int(count), body)
