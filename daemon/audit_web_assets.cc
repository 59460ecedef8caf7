// The audit page's files as raw string literals. Kept dependency-free on purpose (no framework,
// no build step): the page must load on an air-gapped on-call laptop from the daemon alone.
#include "daemon/audit_web_assets.h"

namespace tracepager::daemon {
namespace {

constexpr std::string_view kIndexHtml = R"tp(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tracepager: routing decisions</title>
<link rel="stylesheet" href="ui/app.css">
</head>
<body data-state="loading">
<header>
  <h1>tracepager</h1>
  <span class="subtitle">routing decisions and pages</span>
  <form id="filters" autocomplete="off">
    <label>since
      <select id="f-since">
        <option value="1h">1 hour</option>
        <option value="6h">6 hours</option>
        <option value="1d">1 day</option>
        <option value="7d">7 days</option>
        <option value="30d">30 days</option>
        <option value="" selected>all</option>
      </select>
    </label>
    <label>service <input id="f-service" size="12"></label>
    <label>team <input id="f-team" size="12"></label>
    <label>alert <input id="f-alert" size="12"></label>
    <label>decision
      <select id="f-decision">
        <option value="">any</option>
        <option value="routed">routed</option>
        <option value="fallback">fallback</option>
      </select>
    </label>
    <label><input type="checkbox" id="f-disagreement"> naive differs</label>
    <button type="submit">refresh</button>
  </form>
</header>
<form id="auth" hidden>
  <p>The decisions API needs the daemon's bearer token. It is kept in this tab only.</p>
  <label>token <input type="password" id="auth-token" size="40"></label>
  <button type="submit">use token</button>
</form>
<main>
  <section id="list-pane" aria-label="decisions">
    <table id="decisions">
      <thead><tr><th>time (UTC)</th><th>decision</th><th>paged</th><th>culprit</th>
        <th>alerting service</th><th>alert</th><th>pages</th></tr></thead>
      <tbody id="decision-rows"></tbody>
    </table>
    <p id="list-status" class="status">loading...</p>
  </section>
  <section id="detail" aria-label="decision">
    <p class="status">Select a decision.</p>
  </section>
</main>
<script src="ui/app.js"></script>
</body>
</html>
)tp";

constexpr std::string_view kAppCss = R"tp(:root {
  --bg: #fbfbfa; --fg: #1d1f21; --muted: #6a6f75; --line: #d9dcdf; --panel: #ffffff;
  --fail: #c0392b; --fail-bg: #fdecea; --ok: #1e7d4f; --warn: #a66300; --accent: #2a5db0;
  --bar: #8fa9d6;
}
@media (prefers-color-scheme: dark) {
  :root { --bg: #17191c; --fg: #e3e5e8; --muted: #9aa0a6; --line: #33373c; --panel: #1f2226;
    --fail: #ff7b6b; --fail-bg: #3a2020; --ok: #5fd49a; --warn: #f0b35a; --accent: #8ab4f8;
    --bar: #4f6a99; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 0.4em 1.2em;
  padding: 0.6em 1em; border-bottom: 1px solid var(--line); background: var(--panel); }
header h1 { font-size: 1.2em; margin: 0; }
.subtitle { color: var(--muted); }
#filters { display: flex; flex-wrap: wrap; gap: 0.4em 0.9em; align-items: center; margin-left: auto; }
#filters label { color: var(--muted); }
input, select, button { font: inherit; }
#auth { margin: 1em; padding: 0.8em; border: 1px solid var(--warn); background: var(--panel); }
main { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1.15fr); gap: 1em;
  padding: 1em; align-items: start; }
@media (max-width: 1100px) { main { grid-template-columns: minmax(0, 1fr); } }
section { background: var(--panel); border: 1px solid var(--line); border-radius: 4px; padding: 0.6em; overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.25em 0.5em; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 0.9em; }
tr.decision-row { cursor: pointer; }
#decisions { font-size: 0.93em; }
#decisions td.mono { white-space: nowrap; }
tr.decision-row:hover, tr.decision-row:focus { background: var(--bg); outline: none; }
tr.decision-row.selected { background: var(--bg); box-shadow: inset 3px 0 0 var(--accent); }
.badge { display: inline-block; padding: 0 0.45em; border-radius: 3px; font-size: 0.85em;
  border: 1px solid var(--line); margin-right: 0.3em; white-space: nowrap; }
.badge.routed { color: var(--ok); border-color: var(--ok); }
.badge.fallback { color: var(--warn); border-color: var(--warn); }
.badge.naive { color: var(--accent); border-color: var(--accent); }
.badge.failed { color: var(--fail); border-color: var(--fail); }
.status { color: var(--muted); }
.error { color: var(--fail); }
h2 { font-size: 1.25em; margin: 0.2em 0; }
h3 { font-size: 1em; margin: 1em 0 0.3em; }
.why { margin: 0.2em 0 0.6em; }
.meta { color: var(--muted); margin: 0.2em 0; }
.mono, .tree, .timeline .label { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: 0.92em; }
ul.tree, ul.tree ul { list-style: none; margin: 0; padding-left: 1.3em; }
ul.tree { padding-left: 0.2em; }
ul.tree li { position: relative; margin: 0.15em 0; }
ul.tree ul li::before { content: ""; position: absolute; left: -0.9em; top: 0.75em; width: 0.7em;
  border-top: 1px solid var(--line); }
ul.tree ul { border-left: 1px solid var(--line); margin-left: 0.3em; }
.tree-node .svc { font-weight: 600; }
.tree-node .op { color: var(--muted); margin-left: 0.5em; }
.tree-node .reason { color: var(--fail); margin-left: 0.5em; }
.tree-node .timing { color: var(--muted); margin-left: 0.5em; }
.tree-node .mark { color: var(--accent); margin-left: 0.5em; font-weight: 600; }
.tree-node.failed > .svc { color: var(--fail); }
.timeline { margin: 0.4em 0 0.8em; }
.timeline .row { display: grid; grid-template-columns: 16em 1fr; gap: 0.5em; align-items: center; }
.timeline .label { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.timeline .track { position: relative; height: 1.1em; background: var(--bg); border-radius: 2px; }
.timeline .bar { position: absolute; top: 0.15em; height: 0.8em; min-width: 2px; background: var(--bar); border-radius: 2px; }
.timeline .bar.failed { background: var(--fail); }
.timeline .axis { display: flex; justify-content: space-between; color: var(--muted); font-size: 0.85em; margin-left: 16.5em; }
.notes { color: var(--muted); margin: 0.2em 0; padding-left: 1.2em; }
.outcome-accepted { color: var(--ok); }
.outcome-rejected, .outcome-expired, .outcome-no_target, .outcome-nobody_paged { color: var(--fail); font-weight: 600; }
)tp";

constexpr std::string_view kAppJs = R"tp('use strict';
// tracepager audit page. Everything is built with textContent: alert labels and span names come
// from outside and must never be parsed as HTML.
(function () {
  const TOKEN_KEY = 'tracepager.token';
  const state = { token: sessionStorage.getItem(TOKEN_KEY) || '', selected: null };
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v; else e.setAttribute(k, String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  async function api(path) {
    const headers = { 'Accept': 'application/json' };
    if (state.token) headers['Authorization'] = 'Bearer ' + state.token;
    const res = await fetch(path, { headers, cache: 'no-store' });
    if (res.status === 401) {
      $('auth').hidden = false;
      throw new Error('the API needs a bearer token');
    }
    let body = {};
    try { body = await res.json(); } catch (e) { /* an empty or non-JSON answer */ }
    if (!res.ok) throw new Error(body.reason || ('HTTP ' + res.status));
    return body;
  }

  const shortTime = (t) => t ? t.replace('T', ' ').slice(0, 19) : '-';
  const ms = (ns) => (ns / 1e6).toFixed(1) + 'ms';
  const pct = (x) => Math.round(x * 100) + '%';

  function culpritText(d) {
    const c = (d.culprits || []).find((x) => x.primary);
    if (!c) return '-';
    return d.decision === 'routed' ? c.service + ' ' + pct(c.share) : c.service;
  }

  const FAILED = new Set(['rejected', 'expired', 'no_target', 'nobody_paged']);
  function pagesText(d) {
    if (d.nobody_paged) return 'NOBODY PAGED';
    const triggers = (d.deliveries || []).filter((p) => p.action === 'trigger');
    const ok = triggers.filter((p) => p.outcome === 'accepted').length;
    const failed = triggers.filter((p) => FAILED.has(p.outcome)).length;
    if (!ok && !failed) return d.pages_planned ? d.pages_planned + ' pending' : '-';
    return [ok ? ok + ' accepted' : '', failed ? failed + ' failed' : ''].filter(Boolean).join(', ');
  }

  function query() {
    const q = new URLSearchParams({ limit: '200' });
    const add = (name, value) => { if (value) q.set(name, value); };
    add('since', $('f-since').value);
    add('service', $('f-service').value.trim());
    add('team', $('f-team').value.trim());
    add('alert', $('f-alert').value.trim());
    add('decision', $('f-decision').value);
    if ($('f-disagreement').checked) q.set('disagreement', 'true');
    return q.toString();
  }

  async function loadList() {
    const status = $('list-status');
    status.className = 'status';
    status.textContent = 'loading...';
    let data;
    try {
      data = await api('api/v1/decisions?' + query());
    } catch (e) {
      status.className = 'status error';
      status.textContent = String(e.message || e);
      document.body.dataset.state = 'error';
      return;
    }
    renderList(data);
    const wanted = decodeURIComponent(location.hash.slice(1));
    const first = data.decisions.length ? data.decisions[0].id : null;
    const id = wanted || first;
    if (id) {
      await select(id);
    } else {
      $('detail').replaceChildren(el('p', { class: 'status' }, 'No decision to show.'));
      document.body.dataset.state = 'ready';
    }
  }

  function renderList(data) {
    const rows = $('decision-rows');
    rows.replaceChildren();
    for (const d of data.decisions) {
      const tr = el('tr', {
        class: 'decision-row ' + d.decision + (d.disagreement ? ' disagreement' : ''),
        'data-decision-id': d.id, tabindex: '0', title: d.id,
      },
      el('td', { class: 'mono' }, shortTime(d.time)),
      el('td', {}, el('span', { class: 'badge ' + d.decision }, d.decision),
        d.disagreement ? el('span', { class: 'badge naive',
          title: 'the naive rule would have paged ' + (d.naive_teams.join(', ') || 'nobody') },
        'naive differs') : null),
      el('td', {}, d.teams.join(', ') || '-'),
      el('td', {}, culpritText(d)),
      el('td', {}, d.alerting_service || '-'),
      el('td', {}, (d.alert.name || d.alert.identity || '-') +
        (d.alert.grouped ? ' (+' + d.alert.grouped + ')' : '')),
      el('td', {}, pagesText(d)));
      tr.addEventListener('click', () => { location.hash = encodeURIComponent(d.id); });
      tr.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter') location.hash = encodeURIComponent(d.id);
      });
      rows.append(tr);
    }
    const n = data.decisions.length;
    $('list-status').textContent = n === 0 ? 'No decisions match.' :
      n + (data.matched > n ? ' of ' + data.matched : '') + ' decision' + (n === 1 ? '' : 's') +
      (data.warnings && data.warnings.length ? '; ' + data.warnings.length + ' unreadable line(s) skipped' : '');
  }

  async function select(id) {
    state.selected = id;
    for (const tr of document.querySelectorAll('tr.decision-row')) {
      tr.classList.toggle('selected', tr.dataset.decisionId === id);
    }
    const pane = $('detail');
    try {
      const data = await api('api/v1/decisions/' + encodeURIComponent(id));
      if (state.selected !== id) return;  // another click won
      renderDetail(data);
      document.body.dataset.state = 'ready';
    } catch (e) {
      pane.replaceChildren(el('p', { class: 'status error' }, String(e.message || e)));
      document.body.dataset.state = 'error';
    }
  }

  // One trace's culprit paths merged into a tree: steps are keyed by span and service (a
  // virtual peer's step repeats its call span's id), so shared prefixes are drawn once.
  function buildTree(trace) {
    const nodes = new Map();
    const roots = [];
    for (const c of trace.culprits || []) {
      let parent = null;
      for (const step of c.spans || []) {
        const key = step.span_id + '|' + step.service;
        let node = nodes.get(key);
        if (!node) {
          node = { step, children: [], marks: [] };
          nodes.set(key, node);
          (parent ? parent.children : roots).push(node);
        }
        parent = node;
      }
      if (parent) parent.marks.push('culprit ' + c.service + ' (' + c.role + ')');
    }
    return { roots, nodes: [...nodes.values()] };
  }

  function renderTree(tree) {
    const top = el('ul', { class: 'tree' });
    // Iterative: paths can be thousands of spans deep.
    const stack = tree.roots.slice().reverse().map((n) => [n, top]);
    while (stack.length) {
      const [node, list] = stack.pop();
      const s = node.step;
      const li = el('li', {
        class: 'tree-node' + (s.failed ? ' failed' : ''), 'data-span-id': s.span_id,
        'data-service': s.service,
      },
      el('span', { class: 'svc' }, s.service),
      el('span', { class: 'op' }, s.operation),
      s.failed ? el('span', { class: 'reason' }, 'FAILED: ' + (s.reason || 'error')) : null,
      el('span', { class: 'timing' }, 'at +' + ms(s.start_offset_ns) + ' for ' + ms(s.duration_ns)),
      node.marks.map((m) => el('span', { class: 'mark' }, '\u2190 ' + m)));
      list.append(li);
      if (node.children.length) {
        const sub = el('ul');
        li.append(sub);
        for (let i = node.children.length - 1; i >= 0; i--) stack.push([node.children[i], sub]);
      }
    }
    return top;
  }

  function renderTimeline(tree) {
    const steps = tree.nodes.map((n) => n.step).sort((a, b) => a.start_offset_ns - b.start_offset_ns);
    if (!steps.length) return null;
    const start = Math.min(...steps.map((s) => s.start_offset_ns));
    const end = Math.max(...steps.map((s) => s.start_offset_ns + s.duration_ns));
    const total = Math.max(end - start, 1);
    const box = el('div', { class: 'timeline' });
    for (const s of steps) {
      const bar = el('div', {
        class: 'bar' + (s.failed ? ' failed' : ''),
        title: s.service + ' ' + s.operation + (s.failed ? ': ' + (s.reason || 'error') : '') +
          ' (+' + ms(s.start_offset_ns) + ', ' + ms(s.duration_ns) + ')',
      });
      bar.style.left = ((s.start_offset_ns - start) / total * 100) + '%';
      bar.style.width = (s.duration_ns / total * 100) + '%';
      box.append(el('div', { class: 'row' + (s.failed ? ' failed' : '') },
        el('span', { class: 'label' }, s.service + ' \u00b7 ' + s.operation),
        el('div', { class: 'track' }, bar)));
    }
    box.append(el('div', { class: 'axis' }, el('span', {}, '+' + ms(start)), el('span', {}, '+' + ms(end))));
    return box;
  }

  function renderDeliveries(record, deliveries) {
    const table = el('table', { class: 'deliveries' },
      el('thead', {}, el('tr', {}, ['action', 'team', 'target', 'outcome', 'attempts', 'last answer']
        .map((h) => el('th', {}, h)))));
    const body = el('tbody');
    const done = new Set();
    for (const p of deliveries) {
      done.add(p.action + '|' + p.team);
      const last = (p.attempts || [])[p.attempts.length - 1] || {};
      body.append(el('tr', { class: 'delivery' },
        el('td', {}, p.action),
        el('td', {}, p.team, p.fallback_for ? ' (for ' + p.fallback_for + ')' : ''),
        el('td', {}, p.target.kind + (p.target.name ? ' "' + p.target.name + '"' : ''),
          p.target.redacted ? el('div', { class: 'meta mono' }, p.target.redacted) : null),
        el('td', { class: 'outcome-' + p.outcome }, p.outcome,
          p.accepted ? el('div', { class: 'meta' }, shortTime(p.accepted)) : null,
          p.rerouted_to ? el('div', { class: 'meta' }, 'rerouted to ' + p.rerouted_to) : null),
        el('td', {}, String((p.attempts || []).length)),
        el('td', {}, last.http_status ? 'HTTP ' + last.http_status : (last.error ? 'no answer' : '-'),
          last.error ? el('div', { class: 'meta' }, last.error) : null)));
    }
    for (const p of record.pages || []) {
      if (done.has(p.action + '|' + p.team)) continue;
      body.append(el('tr', { class: 'delivery pending' }, el('td', {}, p.action), el('td', {}, p.team),
        el('td', {}, p.target_kind + (p.target_name ? ' "' + p.target_name + '"' : '')),
        el('td', { class: 'status' }, 'no outcome yet'), el('td', {}, '-'), el('td', {}, '-')));
    }
    if (!body.children.length) return el('p', { class: 'status' }, 'No page planned.');
    table.append(body);
    return table;
  }

  function renderDetail(data) {
    const r = data.decision;
    const route = r.route;
    const alert = r.alert || {};
    const pane = $('detail');
    const parts = [];
    parts.push(el('h2', { class: 'page-line' }, 'PAGE ' + (route.teams.join(', ') || '(nobody)') + ' ',
      el('span', { class: 'badge ' + route.decision }, route.decision)));
    parts.push(el('p', { class: 'why' }, route.reason));
    parts.push(el('p', { class: 'meta' }, route.symptom + ' alert on ' + (route.alerting_service || '?') +
      ': ' + (alert.name || alert.identity || '(unnamed)') + (alert.status ? ' [' + alert.status + ']' : '') +
      (alert.source ? ' from ' + alert.source : '') + ', received ' + shortTime(alert.received)));
    parts.push(el('p', { class: 'meta mono' }, 'decision ' + r.id));
    const naive = route.naive || { teams: [], culprits: [] };
    if (r.disagreement || (route.changed_by || []).length) {
      parts.push(el('p', { class: 'naive' }, el('span', { class: 'badge naive' }, 'naive'),
        'the naive rule would have paged ' + (naive.teams.join(', ') || 'nobody') +
        (naive.culprits.length ? ' via ' + naive.culprits.map((c) => c.service).join(', ') : '') +
        ((route.changed_by || []).length ? '; changed by ' + route.changed_by.join(', ') : '')));
    }
    if ((route.culprits || []).length) {
      parts.push(el('h3', {}, 'culprits'));
      parts.push(el('table', { class: 'culprits' },
        el('thead', {}, el('tr', {}, ['service', 'team', 'share', 'role', 'why'].map((h) => el('th', {}, h)))),
        el('tbody', {}, route.culprits.map((c) => el('tr', {},
          el('td', {}, c.service + (c.virtual ? ' (uninstrumented)' : '')),
          el('td', {}, c.team || '-', c.paged ? '' : ' (not paged)'),
          el('td', {}, pct(c.share)), el('td', {}, c.role), el('td', {}, c.why))))));
    }
    for (const t of route.traces || []) {
      const tree = buildTree(t);
      parts.push(el('section', { class: 'trace', 'data-trace-id': t.trace_id },
        el('h3', {}, 'trace ', el('span', { class: 'mono' }, t.trace_id),
          t.alerting_service_found ? '' : ' (alerting service not in this trace)'),
        tree.roots.length ? renderTree(tree) : el('p', { class: 'status' }, 'No failing path in this trace.'),
        renderTimeline(tree),
        (t.notes || []).length ? el('ul', { class: 'notes' }, t.notes.map((n) => el('li', {}, n))) : null));
    }
    parts.push(el('h3', {}, 'deliveries'));
    parts.push(renderDeliveries(r, data.deliveries || []));
    const fetchInfo = (r.fetch && r.fetch.traces) || [];
    const errors = fetchInfo.filter((f) => f.error);
    const tm = r.timings_ms || {};
    parts.push(el('p', { class: 'meta' }, 'traces asked ' + fetchInfo.length + ', used ' +
      fetchInfo.filter((f) => f.used).length + '; timings: queue ' + (tm.queue_wait || 0) + 'ms, fetch ' +
      (tm.fetch || 0) + 'ms, route ' + (tm.route || 0) + 'ms, total ' + (tm.total || 0) + 'ms'));
    if (errors.length) {
      parts.push(el('ul', { class: 'notes error' }, errors.map((f) => el('li', {}, f.trace_id + ': ' + f.error))));
    }
    pane.replaceChildren(...parts);
    pane.dataset.decisionId = r.id;
  }

  $('filters').addEventListener('submit', (ev) => { ev.preventDefault(); loadList(); });
  for (const id of ['f-since', 'f-decision', 'f-disagreement']) $(id).addEventListener('change', loadList);
  $('auth').addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.token = $('auth-token').value.trim();
    sessionStorage.setItem(TOKEN_KEY, state.token);
    $('auth').hidden = true;
    loadList();
  });
  window.addEventListener('hashchange', () => {
    const id = decodeURIComponent(location.hash.slice(1));
    if (id) select(id);
  });
  loadList();
})();
)tp";

}  // namespace

const std::vector<StaticAsset>& AuditWebAssets() {
  static const std::vector<StaticAsset> kAssets = {
      {"/", "text/html; charset=utf-8", kIndexHtml},
      {"/ui/app.js", "text/javascript; charset=utf-8", kAppJs},
      {"/ui/app.css", "text/css; charset=utf-8", kAppCss},
  };
  return kAssets;
}

}  // namespace tracepager::daemon
