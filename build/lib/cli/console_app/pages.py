"""The console's HTML. Every value put in a page goes through ``h``, which escapes it unless it is
``Safe`` (markup this module made): a reason quoting ``<script>`` or ``[/b]`` shows as text."""

from __future__ import annotations

import html
import string
from collections.abc import Iterable
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from cli.console_app.data import OUTCOMES, Overview, RecordView
from erpsync.flows.catalog import NAMES
from erpsync.state.failures import Failure


class Safe(str):
    """Markup already escaped (adding text to it escapes the text)."""

    def __add__(self, other: str) -> Safe:
        return Safe(str.__add__(self, other if isinstance(other, Safe) else html.escape(other)))


class _Escaping(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> str:
        return value if isinstance(value, Safe) else html.escape(format(value, format_spec), quote=True)


def h(template: str, **values: Any) -> Safe:
    """``template.format(**values)`` with every value escaped (``Safe`` ones as they are)."""
    return Safe(_Escaping().format(template, **values))


def join(parts: Iterable[Safe]) -> Safe:
    return Safe("".join(parts))


def when(value: Any) -> str:
    return str(value or "").split("#", 1)[0][:19].replace("T", " ")


def seconds(s: float) -> str:
    return "-" if s <= 0 else str(timedelta(seconds=round(s)))


def url(path: str, **query: Any) -> str:
    q = {k: v for k, v in query.items() if v not in (None, "")}
    return path + ("?" + urlencode(q) if q else "")


PAGES = (("/", "Overview"), ("/failures", "Failures"), ("/record", "Record"), ("/settings", "Settings"))


def layout(title: str, active: str, where: str, body: Safe, msg: str = "", err: str = "") -> str:
    nav = join(h('<a href="{p}" class="{c}">{n}</a>', p=p, c="on" if p == active else "", n=n) for p, n in PAGES)
    notes = (h('<div class="msg" role="status">{m}</div>', m=msg) if msg else Safe("")) + (
        h('<div class="err" role="alert">{e}</div>', e=err) if err else Safe("")
    )
    return h(
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title} - erpsync console</title>'
        '<link rel="stylesheet" href="/static/console.css"><script src="/static/console.js"></script></head>'
        '<body><header><strong>erpsync console</strong>{nav}<span class="where">{where}</span></header>'
        "<main><h1>{title}</h1>{notes}{body}</main></body></html>",
        title=title,
        nav=nav,
        where=where,
        notes=notes,
        body=body,
    )


def chart(series: dict[str, list[int]], labels: list[str], name: str, bar: int = 9, height: int = 44) -> Safe:
    """Stacked bars (synced at the bottom, then retrying, then failed), one per bucket, as inline SVG."""
    n = len(labels)
    top = max(1, *(sum(series[o][i] for o in OUTCOMES) for i in range(n)))
    groups = []
    for i in range(n):
        y, rects = float(height), []
        for o in ("synced", "retrying", "failed"):
            v = series[o][i]
            if v:
                tall = max(1.5, v / top * (height - 2))
                y -= tall
                rects.append(
                    h(
                        '<rect class="{o}" x="{x}" y="{y:.1f}" width="{w}" height="{t:.1f}"/>',
                        o=o,
                        x=i * (bar + 1),
                        y=y,
                        w=bar,
                        t=tall,
                    )
                )
        tip = f"{labels[i]}: " + ", ".join(f"{series[o][i]} {o}" for o in OUTCOMES)
        groups.append(h("<g><title>{tip}</title>{r}</g>", tip=tip, r=join(rects)))
    width = n * (bar + 1)
    return h(
        '<svg class="chart" width="{w}" height="{hh}" viewBox="0 0 {w} {hh}" role="img" aria-label="{name}">'
        '<line x1="0" y1="{hh}" x2="{w}" y2="{hh}" stroke="#999"/>{g}</svg>',
        w=width,
        hh=height,
        name=name,
        g=join(groups),
    )


def overview_page(ov: Overview, where: str) -> str:
    hours = [f"{23 - i} h ago" if i < 23 else "this hour" for i in range(24)]
    days = [f"{6 - i} days ago" if i < 6 else "last 24 h" for i in range(7)]
    rows = []
    for flow in ov.hours:
        hs, ds = ov.hours[flow], ov.days[flow]
        n_open = ov.open_failures.get(flow, 0)
        rows.append(
            h(
                '<tr data-flow="{f}"><th>{f}</th><td>{c24}</td>{t24}<td>{c7}</td>{t7}'
                '<td class="{cls}"><a href="{link}">{n}</a></td></tr>',
                f=flow,
                c24=chart(hs, hours, f"{flow}, last 24 hours"),
                t24=join(h('<td class="n">{v}</td>', v=sum(hs[o])) for o in OUTCOMES),
                c7=chart(ds, days, f"{flow}, last 7 days"),
                t7=join(h('<td class="n">{v}</td>', v=sum(ds[o])) for o in OUTCOMES),
                cls="n open" if n_open else "n",
                link=url("/failures", flow=flow),
                n=n_open,
            )
        )
    key = Safe(
        '<p class="key">Attempts per hour and per day:<span class="synced"></span>synced'
        '<span class="retrying"></span>retrying<span class="failed"></span>failed</p>'
    )
    flows = h(
        '{key}<table id="flows"><tr><th>flow</th><th>last 24 hours</th><th>synced</th><th>failed</th>'
        "<th>retrying</th><th>last 7 days</th><th>synced</th><th>failed</th><th>retrying</th>"
        "<th>open failures</th></tr>{rows}</table>",
        key=key,
        rows=join(rows),
    )
    brk = join(
        h(
            '<tr><th>{c}</th><td>{k}</td><td class="{cls}">{s}</td><td>{d}</td><td class="n">{t}</td></tr>',
            c=b["connection"],
            k=b["kind"],
            cls="open" if b["open_for"] > 0 else "",
            s=f"open for {seconds(b['open_for'])} more" if b["open_for"] > 0 else "closed",
            d=seconds(b["down_for"]),
            t=b["trips"],
        )
        for b in ov.breakers
    )
    qs = join(
        h(
            '<tr><th>{f}</th><td class="n">{w}</td><td class="n">{i}</td><td class="n">{d}</td>'
            '<td class="{cls}">{fq}</td></tr>',
            f=q["flow"],
            w=q["waiting"],
            i=q["in_flight"],
            d=q["delayed"],
            cls="n open" if q["failed_queue"] else "n",
            fq=q["failed_queue"],
        )
        for q in ov.queues
    )
    body = h(
        '{flows}<h2>Breakers</h2><table id="breakers"><tr><th>connection</th><th>system</th><th>state</th>'
        "<th>down for</th><th>trips</th></tr>{brk}</table>"
        '<h2>Queues</h2><table id="queues"><tr><th>flow</th><th>waiting</th><th>in flight</th>'
        "<th>delayed (retries)</th><th>failed queue</th></tr>{qs}</table>"
        "<p>Read at {now} UTC.</p>",
        flows=flows,
        brk=brk,
        qs=qs,
        now=when(ov.now.isoformat()),
    )
    return layout("Overview", "/", where, body, err="; ".join(ov.problems))


def _options(values: Iterable[str], chosen: str | None, blank: str) -> Safe:
    first = h('<option value="">{b}</option>', b=blank)
    return first + join(
        h('<option value="{v}"{s}>{v}</option>', v=v, s=Safe(" selected" if v == chosen else "")) for v in values
    )


def failures_page(
    rows: list[Failure],
    resolved: list[Failure],
    *,
    flow: str | None,
    error_type: str | None,
    error_types: list[str],
    csrf: str,
    where: str,
    msg: str = "",
    err: str = "",
) -> str:
    back = url("/failures", flow=flow, error_type=error_type)
    filters = h(
        '<form method="get" action="/failures" class="actions" id="filters">'
        '<label>flow <select name="flow">{fo}</select></label>'
        '<label>error type <select name="error_type">{eo}</select></label>'
        '<button type="submit">Filter</button></form>',
        fo=_options(NAMES, flow, "every flow"),
        eo=_options(error_types, error_type, "every error type"),
    )
    trs = join(
        h(
            '<tr data-key="{key}"><td><input type="checkbox" name="key" value="{key}" aria-label="select {id}"></td>'
            '<td>{flow}</td><td><a href="{link}">{id}</a></td><td>{src}</td><td>{tgt}</td><td>{et}</td>'
            '<td class="n">{n}</td><td>{first}</td><td>{last}</td><td class="reason">{reason}</td>'
            '<td><button name="retry_one" value="{key}">Retry</button> '
            '<button name="skip_one" value="{key}">Skip</button></td></tr>',
            key=f.key,
            flow=f.flow,
            link=url("/record", flow=f.flow, id=f.id, source=f.source),
            id=f.id,
            src=f"{f.source} {f.id}",
            tgt=f"{f.target} {f.target_id}" if f.target_id else f"{f.target} (not there)",
            et=f.error_type,
            n=f.failures,
            first=when(f.first_failed_at),
            last=when(f.last_failed_at),
            reason=f.reason[:600],
        )
        for f in rows
    )
    redrive = (
        h('<button name="act" value="redrive">Send every open failure of {f} back to its queue</button>', f=flow)
        if flow
        else Safe("")
    )
    desk = h(
        '<form method="post" action="/failures" id="desk"><input type="hidden" name="csrf" value="{csrf}">'
        '<input type="hidden" name="back" value="{back}"><input type="hidden" name="flow" value="{flow}">'
        '<table id="failures"><tr><th><input type="checkbox" id="select-all" aria-label="select all"></th>'
        "<th>flow</th><th>record</th><th>source</th><th>target</th><th>error type</th><th>failures</th>"
        "<th>first failed</th><th>last failed</th><th>reason</th><th></th></tr>{trs}</table>"
        '<div class="actions"><label>note <input type="text" name="note" placeholder="why (needed to skip)"></label>'
        '<button name="act" value="retry">Retry selected</button><button name="act" value="skip">Skip selected'
        "</button>{redrive}</div></form>",
        csrf=csrf,
        back=back,
        flow=flow or "",
        trs=trs,
        redrive=redrive,
    )
    count = h('<p id="count">{n} open failure{s}.</p>', n=len(rows), s="" if len(rows) == 1 else "s")
    done = join(
        h(
            '<tr><td>{at}</td><td>{flow}</td><td><a href="{link}">{id}</a></td><td>{res}</td><td>{by}</td>'
            '<td class="reason">{note}</td><td class="reason">{reason}</td></tr>',
            at=when(f.resolved_at),
            flow=f.flow,
            link=url("/record", flow=f.flow, id=f.id, source=f.source),
            id=f.id,
            res=f.resolution,
            by=f.resolved_by,
            note=f.note,
            reason=f.reason[:200],
        )
        for f in resolved
    )
    body = h(
        '{filters}{count}{desk}<h2>Recently resolved</h2><table id="resolved"><tr><th>at</th><th>flow</th>'
        "<th>record</th><th>how</th><th>by</th><th>note</th><th>last reason</th></tr>{done}</table>",
        filters=filters,
        count=count,
        desk=desk,
        done=done,
    )
    return layout("Failures", "/failures", where, body, msg, err)


def record_page(view: RecordView | None, flow: str, id: str, csrf: str, where: str, err: str = "") -> str:
    ask = h(
        '<form method="get" action="/record" class="actions"><label>flow <select name="flow">{fo}</select></label>'
        '<label>record id <input type="text" name="id" value="{id}"></label><button type="submit">Show</button></form>',
        fo=_options(NAMES, flow, "choose a flow"),
        id=id,
    )
    if view is None:
        return layout("Record", "/record", where, ask, err=err)
    b = view.binding
    if b is None or not b.other_id:
        pending = h(" (a create was started {at})", at=when(_iso(b.updated_at))) if b is not None else Safe("")
        bound = h(
            '<p id="binding">{s} {id} has no record on {t} yet{p}.</p>',
            s=view.source,
            id=view.id,
            t=view.target,
            p=pending,
        )
    else:
        bound = h(
            '<p id="binding">{s} {id} is {t} <strong>{other}</strong> ({status}, updated {at}).</p>',
            s=view.source,
            id=view.id,
            t=view.target,
            other=b.other_id,
            status=b.status,
            at=when(_iso(b.updated_at)),
        )
    f = view.failure
    failure = (
        h(
            '<div class="err" id="failure"><strong>Open failure</strong> ({et}, failed {n} time{s}, first {first}, '
            'last {last}): <span class="reason">{reason}</span>'
            '<form method="post" action="/failures" class="inline"><input type="hidden" name="csrf" value="{csrf}">'
            '<input type="hidden" name="back" value="{back}"> <button name="retry_one" value="{key}">Retry</button>'
            "</form><p>Correlation id {cid}. The notice as queued:</p><pre>{req}</pre></div>",
            et=f.error_type,
            n=f.failures,
            s="" if f.failures == 1 else "s",
            first=when(f.first_failed_at),
            last=when(f.last_failed_at),
            reason=f.reason,
            csrf=csrf,
            back=url("/record", flow=view.flow, id=view.id, source=view.source),
            key=f.key,
            cid=f.correlation_id or "-",
            req=f.request or "-",
        )
        if f
        else Safe('<p id="failure">No open failure.</p>')
    )
    trs = join(
        h(
            '<tr><td>{at}</td><td class="{o}">{o}</td><td class="n">{a}</td><td class="n">{ms}</td><td>{tid}</td>'
            '<td>{et}</td><td class="reason">{m}</td></tr>',
            at=when(r.get("at")),
            o=r.get("outcome", ""),
            a=r.get("attempt", ""),
            ms=r.get("duration_ms", ""),
            tid=r.get("target_id", ""),
            et=r.get("error_type", ""),
            m=r.get("message", ""),
        )
        for r in view.rows
    )
    body = h(
        '{ask}<h2>{flow} {id}</h2>{bound}{failure}<h2>Every attempt ({n})</h2><table id="history"><tr><th>at</th>'
        "<th>outcome</th><th>try</th><th>ms</th><th>target id</th><th>error type</th><th>message</th></tr>"
        "{trs}</table>",
        ask=ask,
        flow=view.flow,
        id=view.id,
        bound=bound,
        failure=failure,
        n=len(view.rows),
        trs=trs,
    )
    return layout(f"Record {view.flow} {view.id}", "/record", where, body, err=err)


def _iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).isoformat() if epoch else ""


def _changes(changes: list[Any]) -> Safe:
    return join(
        h(
            "<li><code>{k}</code>: {b} &rarr; {a}</li>",
            k=c.key,
            b=_value(c.as_json()["before"]),
            a=_value(c.as_json()["after"]),
        )
        for c in changes
    )


def _value(v: Any) -> str:
    import json

    return "(unset)" if v is None else json.dumps(v)


def settings_page(view: dict[str, Any], where: str, a: str = "", b: str = "") -> str:
    history = join(
        h(
            '<tr><td class="n">{v}</td><td>{at}</td><td>{who}</td><td>{what}</td><td><ul>{ch}</ul></td></tr>',
            v=v.version,
            at=when(v.at),
            who=v.actor,
            what=v.action + (f" to version {v.rolled_back_to}" if v.rolled_back_to else ""),
            ch=_changes(v.changes()),
        )
        for v in view["history"]
    )
    compare = h(
        '<form method="get" action="/settings" class="actions">Compare version <input type="number" min="1" '
        'name="a" value="{a}"> with <input type="number" min="1" name="b" value="{b}"> '
        '<button type="submit">Diff</button></form>',
        a=a,
        b=b,
    )
    if view["compare"]:
        (va, vb), changes = view["compare"]
        compare += h(
            '<div id="diff"><h3>Version {va} to {vb}</h3><ul>{ch}</ul></div>',
            va=va,
            vb=vb,
            ch=_changes(changes) or Safe("<li>no difference</li>"),
        )
    body = h(
        "<p>Version {v} is in force (change it with <code>erpsync settings set</code>; "
        "running workers pick a change up within a minute).</p>{compare}"
        '<h2>History</h2><table id="history"><tr><th>version</th><th>at</th><th>who</th><th>what</th>'
        '<th>changes</th></tr>{history}</table><h2>Current settings</h2><pre id="current">{cur}</pre>',
        v=view["version"],
        compare=compare,
        history=history,
        cur=view["current"],
    )
    return layout("Settings", "/settings", where, body, err=view["error"])


def error_page(message: str, where: str) -> str:
    return layout("Something went wrong", "", where, h("<p>Reload the page to try again.</p>"), err=message)
