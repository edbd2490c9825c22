"""Pages and callbacks declare who may use them here; this module enforces it for every request.

* :func:`page` registers a Dash page whose layout first resolves the user's scope and checks the
  page's audience; a user outside it gets a "no access" panel, never the page.
* :func:`callback` records a callback with its audience; :func:`register_callbacks` attaches every
  recorded callback to a Dash app wrapped so that it runs only for a logged-in user whose scope
  includes the audience, receiving that :class:`~dashboard.access.Scope` as its first argument.
* :func:`is_registered_output` lets the request gate refuse any callback that was not declared here
  (deny by default), apart from Dash's own page router.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

import dash
import dash_bootstrap_components as dbc
from dash import html
from dash.exceptions import PreventUpdate

from dashboard import access
from dashboard.errors import AccessDenied, DashboardError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PageSpec:
    module: str
    path: str
    title: str
    audience: str
    order: int
    nav: bool = True  # listed in the navbar and on the home page (a claim's own page is reached from lists)


@dataclass(frozen=True)
class CallbackSpec:
    key: str
    audience: str
    args: tuple
    kwargs: dict
    func: Callable


PAGES: dict[str, PageSpec] = {}
CALLBACKS: dict[str, CallbackSpec] = {}
# Client-side callbacks (browser-only, e.g. telling a grid to fetch again): no server function, no data.
CLIENTSIDE: dict[str, tuple[str, tuple, dict]] = {}
ROUTER_PREFIX = "_pages"  # ids of Dash's own page router callback


def no_access(message: str = "You do not have access to this page.") -> html.Div:
    return html.Div(dbc.Alert(message, color="warning", id="no-access"), className="p-4")


def page(module: str, *, path: str, title: str, audience: str, layout: Callable, order: int = 50,
         path_template: str | None = None) -> None:
    """Register a Dash page visible to ``audience`` (practice | employer | admin | any). A page with a
    ``path_template`` (``/practice/claims/<claim_id>``) gets the path's variables as layout arguments and is not
    listed in the navbar."""

    @functools.wraps(layout)
    def guarded_layout(**kwargs):
        try:
            scope = access.current_scope()
            if audience != "any":
                access.require_audience(scope, audience)
        except AccessDenied:
            return no_access()
        _audit_page_view(path, scope)
        try:
            return layout(scope, **kwargs)
        except DashboardError as exc:
            return no_access(str(exc))

    PAGES[module] = PageSpec(module, path, title, audience, order, nav=path_template is None)
    dash.register_page(module, path=path, path_template=path_template, title=f"{title} · Claims Analytics",
                       name=title, layout=guarded_layout)


def _audit_page_view(path: str, scope: access.Scope) -> None:
    """Who opened which page with which scope (ids of practices/employers only, never PHI)."""
    from flask import current_app, request

    from dashboard.auth import service

    service.audit(current_app.extensions["dashboard"].app_db, "page.view", user_id=scope.user_id,
                  email=scope.email, ip=request.remote_addr, detail={
                      "page": path, "role": scope.role,
                      "practices": "all" if scope.practice_ids is None else sorted(scope.practice_ids),
                      "employers": "all" if scope.employer_ids is None else sorted(scope.employer_ids)})


def callback(*args, audience: str, **kwargs) -> Callable:
    """Declare a Dash callback usable by ``audience``; the function receives the scope first."""

    def decorate(func: Callable) -> Callable:
        key = f"{func.__module__}.{func.__qualname__}"
        CALLBACKS[key] = CallbackSpec(key, audience, args, kwargs, func)
        return func

    return decorate


def clientside(code: str, *args, **kwargs) -> None:
    """Declare a client-side callback (JavaScript ``code``). It runs in the browser only: the request gate
    refuses its output on the server like any client-side output, and it may not read or return data."""
    outputs = [a for a in args if isinstance(a, dash.Output)]
    CLIENTSIDE[" ".join(str(o) for o in outputs)] = (code, args, kwargs)


def _single_output(spec: CallbackSpec) -> bool:
    outputs = [a for a in spec.args if isinstance(a, dash.Output)]
    return len(outputs) == 1 and not isinstance(spec.kwargs.get("output"), list)


def _guard(spec: CallbackSpec) -> Callable:
    @functools.wraps(spec.func)
    def guarded(*args, **kwargs):
        try:
            scope = access.current_scope()
            if spec.audience != "any":
                access.require_audience(scope, spec.audience)
            return spec.func(scope, *args, **kwargs)
        except AccessDenied:
            log.info("callback %s refused", spec.key)
            raise PreventUpdate from None
        except DashboardError as exc:
            if _single_output(spec):
                return dbc.Alert(str(exc), color="danger", className="m-2")
            raise PreventUpdate from None

    guarded.dashboard_callback = spec.key
    return guarded


def register_callbacks(app: dash.Dash) -> None:
    for spec in CALLBACKS.values():
        app.callback(*spec.args, **spec.kwargs)(_guard(spec))
    for code, args, kwargs in CLIENTSIDE.values():
        app.clientside_callback(code, *args, **kwargs)


def is_registered_output(app: dash.Dash, output: str) -> bool:
    """True when ``output`` names a callback declared through :func:`callback` or :func:`clientside`, or
    Dash's router."""
    if output not in app.callback_map:
        return False
    if output.lstrip(".").startswith(ROUTER_PREFIX):
        return True
    if "callback" not in app.callback_map[output] and output in CLIENTSIDE:
        return True
    func = app.callback_map[output].get("callback")
    while func is not None:
        if getattr(func, "dashboard_callback", None) in CALLBACKS:
            return True
        func = getattr(func, "__wrapped__", None)
    return False


def nav_pages(scope: access.Scope) -> list[PageSpec]:
    def visible(p: PageSpec) -> bool:
        if not p.nav:
            return False
        if p.audience == "any":
            return p.path != "/" and any(scope.can_view(a) for a in access.AUDIENCES)
        return scope.can_view(p.audience)

    return sorted((p for p in PAGES.values() if visible(p)), key=lambda p: p.order)


def component_props(tree: object, found: dict[str, dict] | None = None) -> dict[str, dict]:
    """Every component's props by id in a Dash layout as JSON (a router or callback answer): what a browser
    would hold, for tools and tests that call callbacks as the browser does."""
    found = {} if found is None else found
    if isinstance(tree, dict):
        props = tree.get("props")
        if isinstance(props, dict) and isinstance(props.get("id"), str):
            found[props["id"]] = props
        for value in tree.values():
            component_props(value, found)
    elif isinstance(tree, list):
        for value in tree:
            component_props(value, found)
    return found
