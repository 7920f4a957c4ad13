"use strict";
// pytest-halo report page. Every text from the data goes through textContent: trace content is
// untrusted, and nothing from it is ever parsed as HTML, used as a URL or executed.
(function () {
  const D = JSON.parse(document.getElementById("halo-data").textContent);
  const ROW = 24;
  const state = { category: "", status: "", query: "", selected: null, trace: null, span: null };
  const byId = new Map(D.modes.map((m) => [m.id, m]));
  const groupOf = new Map(D.groups.map((g) => [g.n, g]));

  function el(tag, props, ...kids) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = String(v);
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(node.dataset, v);
      else if (k === "style") Object.assign(node.style, v);  // the CSSOM: the CSP allows no style attributes
      else node.setAttribute(k, String(v));
    }
    for (const kid of kids.flat()) if (kid !== null && kid !== undefined && kid !== false)
      node.appendChild(typeof kid === "string" || typeof kid === "number" ? document.createTextNode(String(kid)) : kid);
    return node;
  }
  const svgNS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, text) {
    const node = document.createElementNS(svgNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }
  function put(node, ...kids) {  // replaceChildren, skipping the absent parts (it would print "null")
    node.replaceChildren(...kids.flat().filter((k) => k !== null && k !== undefined && k !== false));
  }
  const pct = (x) => (x === null || x === undefined ? "—" : (100 * x).toFixed(1) + "%");
  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------------ header
  function renderHeader() {
    const h = D.headline, g = D.gate;
    const head = $("headline");
    put(head,
      el("h1", { text: "pytest-halo" }),
      el("span", { id: "tests-line", text: h.run_unit === "tests" ? `${h.failing} of ${h.tests} tests failed` : `${h.runs} runs` }),
      el("span", { class: "badge " + g.badge, id: "gate-badge", text: g.badge_text }),
      el("span", { id: "changes", class: "muted" }, g.baseline
        ? ["new", "regressed", "emerging", "persisting", "resolved", "not_rerun"].filter((k) => g.counts[k])
            .map((k) => el("span", { class: "st-" + k, text: `${g.counts[k]} ${k === "not_rerun" ? "not re-run" : k} ` }))
        : ["record a baseline with ", el("code", { text: "pytest --halo --halo-baseline FILE --halo-update-baseline" }),
           " and later runs are gated against it"]),
      D.llm ? el("span", { id: "llm-cost", class: "muted",
                           text: `LLM ${D.llm.model}: ${D.llm.requests} requests, ${D.llm.tokens_in + D.llm.tokens_out} tokens` +
                                 (D.llm.cost_usd !== null ? `, $${Number(D.llm.cost_usd).toFixed(4)}` : "") }) : null,
      el("span", { class: "spacer" }),
      el("button", { id: "theme", text: "light/dark", onclick: toggleTheme }),
    );
  }
  function toggleTheme() {
    const root = document.documentElement;
    const dark = root.dataset.theme ? root.dataset.theme === "dark" : matchMedia("(prefers-color-scheme: dark)").matches;
    root.dataset.theme = dark ? "light" : "dark";
  }

  // ------------------------------------------------------------------ left: filters and modes
  function visibleModes() {
    const q = state.query.toLowerCase();
    return D.modes.filter((m) => (!state.category || m.category === state.category) &&
      (!state.status || m.status === state.status) &&
      (!q || m.title.toLowerCase().includes(q) || m.id.includes(q) || spanMatches(m, q)));
  }
  function spanMatches(m, q) {
    for (const e of m.evidence) {
      const t = D.traces[e.trace_id];
      if (t && t.spans.some((s) => s.search.includes(q))) return true;
    }
    return false;
  }
  function renderFilters() {
    const cats = [...new Set(D.modes.map((m) => m.category))].sort();
    const statuses = [...new Set(D.modes.map((m) => m.status))].sort();
    $("filters").replaceChildren(
      el("input", { type: "search", id: "search", placeholder: "search modes and spans  ( / )",
                    oninput: (e) => { state.query = e.target.value; renderModes(); } }),
      el("select", { id: "category", onchange: (e) => { state.category = e.target.value; renderModes(); } },
         el("option", { value: "", text: "all categories" }), cats.map((c) => el("option", { value: c, text: c }))),
      el("select", { id: "status", onchange: (e) => { state.status = e.target.value; renderModes(); } },
         el("option", { value: "", text: "any status" }), statuses.map((s) => el("option", { value: s, text: s }))),
    );
  }
  const CHUNK = 200;
  function renderModes() {  // one box per root cause, its facets (each a mode with its own card) inside
    const list = $("modes");
    const modes = visibleModes();
    const visible = new Set(modes.map((m) => m.id));
    const shown = D.groups.map((g) => [g, g.members.filter((id) => visible.has(id)).map((id) => byId.get(id))])
      .filter(([, ms]) => ms.length);
    list.replaceChildren(el("div", { class: "muted" },
      el("span", { id: "mode-count", text: `${modes.length} of ${D.modes.length} failure modes` }), " ",
      el("span", { id: "cause-count", text: `in ${shown.length} of ${D.groups.length} root causes` })));
    let next = 0;
    const more = () => {  // lazy: a thousand modes render a chunk of cards at a time
      for (let cards = 0; next < shown.length && cards < CHUNK; next++) {
        const [g, ms] = shown[next];
        list.appendChild(causeBox(g, ms));
        cards += ms.length;
      }
      const left = shown.slice(next).reduce((n, [, ms]) => n + ms.length, 0);
      if (left) list.appendChild(el("button", { class: "more", text: `show more (${left} modes left)`,
        onclick: (e) => { e.target.remove(); more(); } }));
    };
    more();
  }
  function causeBox(g, ms) {
    const single = g.members.length === 1;
    return el("div", { class: "cause" + (single ? " single" : ""), dataset: { cause: String(g.n), lead: g.lead } },
      single ? null : el("div", { class: "cause-head", onclick: () => go({ mode: g.lead }) },
        el("div", { class: "title" }, el("span", { class: "ref", text: `${g.n}. ` }), g.title),
        el("div", { class: "meta" }, `${g.members.length} facets: ${g.facets.join(", ")} · ${g.words}`,
           g.statuses.flatMap((st) => [" · ", el("span", { class: "st-" + st, text: st })]),
           g.verified ? "" : " · unverified (LLM)")),
      ms.map((m) => modeCard(m, single)));
  }
  function modeCard(m, single) {
    return el("div", { class: "mode" + (single ? "" : " facet") + (state.selected === m.id ? " selected" : ""), tabindex: "0",
                       dataset: { id: m.id, cause: String(m.group) },
                       onclick: () => go({ mode: m.id }), onkeydown: (e) => { if (e.key === "Enter") go({ mode: m.id }); } },
      el("div", { class: "title" }, el("span", { class: "ref", text: single ? `${m.ref}. ` : `${m.ref} ` }),
         single ? null : el("span", { class: "facet-label", text: `${m.facet}: ` }), m.title),
      el("div", { class: "meta" }, el("span", { class: "st-" + m.status, text: m.status }), ` · ${m.category} · ${m.words}`,
         m.verified ? "" : " · unverified (LLM)"));
  }

  // ------------------------------------------------------------------ right: overview
  function renderOverview() {
    const right = $("right");
    put(right,
      el("section", {}, el("h2", { text: "Prevalence per mode: now vs baseline" }), chart()),
      el("section", {}, el("h2", { text: "Tests × modes" }), matrix()),
      el("p", { class: "muted" }, "Keys: ", el("span", { class: "kbd", text: "j" }), "/", el("span", { class: "kbd", text: "k" }),
         " next/previous mode, ", el("span", { class: "kbd", text: "Enter" }), " open, ",
         el("span", { class: "kbd", text: "Esc" }), " back, ", el("span", { class: "kbd", text: "/" }), " search."),
    );
  }
  function chart() {
    const modes = D.modes.slice(0, 40);
    const w = 640, rowH = 22, left = 260, h = rowH * modes.length + 24;
    const max = Math.max(0.01, ...modes.map((m) => Math.max(m.prevalence, m.baseline_prevalence || 0)));
    const s = svg("svg", { width: w, height: h, id: "chart", role: "img", "aria-label": "prevalence per mode" });
    modes.forEach((m, i) => {
      const y = 4 + i * rowH;
      const g = svg("g", { class: "bar", "data-id": m.id, "data-now": m.prevalence, "data-base": m.baseline_prevalence ?? "" });
      g.appendChild(svg("text", { x: 0, y: y + 13 }, m.ref + ". " + (m.title.length > 38 ? m.title.slice(0, 37) + "…" : m.title)));
      if (m.baseline_prevalence !== null) g.appendChild(svg("rect", { class: "bar-base", x: left, y: y + 11, height: 7,
        width: Math.max(1, (w - left - 60) * m.baseline_prevalence / max) }));
      g.appendChild(svg("rect", { class: "bar-now", x: left, y: y + 2, height: 9, width: Math.max(1, (w - left - 60) * m.prevalence / max) }));
      g.appendChild(svg("text", { x: w - 55, y: y + 13 }, pct(m.prevalence)));
      g.addEventListener("click", () => go({ mode: m.id }));
      s.appendChild(g);
    });
    if (D.modes.length > modes.length) s.appendChild(svg("text", { x: 0, y: h - 4 }, `… ${D.modes.length - modes.length} more modes in the list`));
    return s;
  }
  function matrix() {
    const modes = D.modes.slice(0, 30);
    const tests = D.tests.slice(0, 300);
    const t = el("table", { class: "matrix", id: "matrix" });
    t.appendChild(el("tr", {}, el("th", { text: "test" }), modes.map((m) => el("th", { title: m.title, text: m.ref }))));
    for (const test of tests) {
      const row = el("tr", { dataset: { test: test.nodeid } },
        el("td", { class: "test " + (test.outcome === "failed" || test.outcome === "error" ? "fail" : "pass"), title: test.nodeid, text: test.nodeid }));
      for (const m of modes) {
        const hit = m.tests.includes(test.nodeid);
        const cls = hit ? (test.outcome === "passed" ? "hit-passed" : test.outcome === "failed" || test.outcome === "error" ? "hit-failed" : "hit-other") : "";
        row.appendChild(el("td", { class: cls, dataset: hit ? { mode: m.id } : null, title: hit ? m.title : null }));
      }
      t.appendChild(row);
    }
    const notes = [];
    if (D.tests.length > tests.length) notes.push(`${D.tests.length - tests.length} more tests not shown`);
    if (D.modes.some((m) => !m.tests_complete)) notes.push("modes with more tests than evidence kept show only their evidence tests");
    return el("div", {}, t, notes.length ? el("p", { class: "muted", text: notes.join("; ") }) : null);
  }

  // ------------------------------------------------------------------ right: one mode
  function renderMode(m) {
    const right = $("right");
    put(right,
      el("button", { text: "← overview", onclick: () => go({}) }),
      el("h2", { id: "mode-title", text: m.title }),
      el("p", {}, el("span", { class: "st-" + m.status, text: m.status }), ` · ${m.category} · source ${m.source} · `,
         el("code", { text: m.id }), m.verified ? "" : " · unverified: an LLM pattern no signature expresses; never gated"),
      el("p", { id: "mode-words", text: m.words_long }),
      rootCause(m),
      m.description ? el("p", { text: m.description }) : null,
      m.example ? el("pre", { text: m.example }) : null,
      m.suggested_fix ? el("section", {}, el("h3", { text: "Suggested fix" }), el("p", { text: m.suggested_fix })) : null,
      m.locations.length ? el("section", {}, el("h3", { text: "Where in the code" }),
        el("ul", {}, m.locations.map((l) => el("li", {}, el("code", { text: `${l.path}:${l.line}` }), " — " + l.why)))) : null,
      m.reproduce ? el("section", {}, el("h3", { text: "Reproduce" }), el("pre", { text: m.reproduce })) : null,
      el("section", {}, el("h3", { text: "Evidence" }),
        el("ul", { id: "evidence" }, m.evidence.map((e) => el("li", {},
          el("button", { class: "open-trace", dataset: { trace: e.trace_id, span: e.span_id },
                         text: e.test || e.trace_id, onclick: () => go({ mode: m.id, trace: e.trace_id, span: e.span_id }) }),
          D.traces[e.trace_id] ? "" : el("span", { class: "muted", text: " (trace not embedded)" }))))),
      el("section", { id: "trace" }),
    );
  }

  function rootCause(m) {  // the mode's siblings: one defect seen as several modes in the same runs
    const g = groupOf.get(m.group);
    if (!g || g.members.length < 2) return null;
    return el("section", { id: "root-cause" }, el("h3", { text: `Root cause ${g.n}: ${g.title}` }),
      el("p", { class: "muted", text: `${g.members.length} modes in the same runs, each with its own id and evidence; seen ${g.words}.` }),
      el("ul", {}, g.members.map((id) => byId.get(id)).filter(Boolean).map((x) => el("li", {},
        x.id === m.id ? el("strong", { text: `${x.ref} ${x.facet}: ${x.title}` })
          : el("button", { class: "facet-link", dataset: { mode: x.id }, text: `${x.ref} ${x.facet}: ${x.title}`,
                           onclick: () => go({ mode: x.id }) })))));
  }

  // ------------------------------------------------------------------ trace viewer (virtualized waterfall)
  function renderTrace(traceId, spanId) {
    const host = $("trace");
    const t = D.traces[traceId];
    if (!host) return;
    if (!t) { host.replaceChildren(el("p", { class: "muted", text: "This trace is not embedded in the page." })); return; }
    const spans = t.spans;
    const t0 = Math.min(...spans.map((s) => s.start)), t1 = Math.max(...spans.map((s) => s.start + s.dur));
    const total = Math.max(t1 - t0, 0.001);
    const wf = el("div", { id: "waterfall", dataset: { trace: traceId, spans: String(spans.length) } });
    const inner = el("div", { style: { height: `${spans.length * ROW}px`, position: "relative" } });
    wf.appendChild(inner);
    const detail = el("div", { id: "span-detail" });
    put(host,
      el("h3", { text: `Trace ${traceId}` + (t.test ? ` · ${t.test}` : "") + ` · ${spans.length} spans` + (t.truncated ? ` (+${t.truncated} not embedded)` : "") }),
      el("input", { type: "search", id: "span-search", placeholder: "search spans",
                    oninput: (e) => { const q = e.target.value.toLowerCase(); const i = spans.findIndex((s) => q && s.search.includes(q));
                                      if (i >= 0) scrollToRow(i, true); } }),
      wf, detail);
    function row(i) {
      const s = spans[i];
      const r = el("div", { class: "row" + (s.id === spanId ? " evidence" : "") + (state.span === s.id ? " sel" : ""),
                            style: { top: `${i * ROW}px` }, dataset: { span: s.id }, onclick: () => { state.span = s.id; showSpan(s); paint(); } },
        el("div", { class: "label", style: { paddingLeft: `${6 + 12 * s.depth}px` }, title: s.name },
           el("span", { class: s.err ? "err-text" : "", text: s.name })),
        el("div", { class: "lane" }, el("div", { class: `span-bar cat-${s.cat}` + (s.err ? " err" : ""),
           style: { left: `${(100 * (s.start - t0)) / total}%`, width: `${Math.max(0.2, (100 * s.dur) / total)}%` },
           title: `${s.dur.toFixed(1)} ms` })));
      return r;
    }
    function paint() {
      const top = wf.scrollTop, h = wf.clientHeight || 420;
      const first = Math.max(0, Math.floor(top / ROW) - 10), last = Math.min(spans.length, Math.ceil((top + h) / ROW) + 10);
      inner.replaceChildren(...Array.from({ length: last - first }, (_, k) => row(first + k)));
    }
    function scrollToRow(i, select) {
      wf.scrollTop = Math.max(0, i * ROW - 4 * ROW);
      if (select) { state.span = spans[i].id; showSpan(spans[i]); }
      paint();
    }
    function showSpan(s) {
      const dl = el("dl", { class: "attrs" });
      const add = (k, v) => { if (v !== null && v !== undefined && v !== "") { dl.appendChild(el("dt", { text: k })); dl.appendChild(el("dd", { text: v })); } };
      add("span_id", s.id); add("category", s.cat); add("duration", s.dur.toFixed(1) + " ms"); add("error", s.error);
      add("tool", s.tool); add("tool arguments", s.args); add("tool result", s.result); add("model", s.model);
      add("agent", s.agent); add("output", s.output);
      const attrs = el("details", {}, el("summary", { text: `${Object.keys(s.attrs).length} attributes` }));
      const adl = el("dl", { class: "attrs" });
      for (const [k, v] of Object.entries(s.attrs)) { adl.appendChild(el("dt", { text: k })); adl.appendChild(el("dd", { text: v })); }
      attrs.appendChild(adl);
      detail.replaceChildren(el("h3", { text: s.name }), dl, attrs);
    }
    wf.addEventListener("scroll", paint);
    const target = spans.findIndex((s) => s.id === spanId);
    if (target >= 0) { state.span = spanId; scrollToRow(target, true); } else paint();
    host.scrollIntoView({ block: "start" });
  }

  // ------------------------------------------------------------------ routing and keys
  function parseHash() {
    const out = {};
    for (const part of location.hash.replace(/^#/, "").split("&")) {
      const [k, v] = part.split("=");
      if (k && v) out[k] = decodeURIComponent(v);
    }
    return out;
  }
  function go(route) {
    const hash = Object.entries(route).filter(([, v]) => v).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join("&");
    if (location.hash.replace(/^#/, "") === hash) route_(); else location.hash = hash;
  }
  function route_() {
    const r = parseHash();
    const m = r.mode ? byId.get(r.mode) : null;
    state.selected = m ? m.id : null;
    document.querySelectorAll(".mode").forEach((n) => n.classList.toggle("selected", n.dataset.id === state.selected));
    if (!m) { renderOverview(); return; }
    renderMode(m);
    const trace = r.trace || (m.evidence[0] && m.evidence[0].trace_id);
    const span = r.trace ? r.span : m.evidence[0] && m.evidence[0].span_id;
    if (trace) renderTrace(trace, span);
  }
  function step(delta) {
    const cards = [...document.querySelectorAll(".mode")];
    if (!cards.length) return;
    let i = cards.findIndex((n) => n.dataset.id === state.selected);
    i = Math.min(cards.length - 1, Math.max(0, i + delta));
    cards[i].focus();
    go({ mode: cards[i].dataset.id });
  }
  document.addEventListener("keydown", (e) => {
    if (e.target && (e.target.tagName === "INPUT" || e.target.tagName === "SELECT")) { if (e.key === "Escape") e.target.blur(); return; }
    if (e.key === "j" || e.key === "ArrowDown") { e.preventDefault(); step(1); }
    else if (e.key === "k" || e.key === "ArrowUp") { e.preventDefault(); step(-1); }
    else if (e.key === "/") { e.preventDefault(); $("search").focus(); }
    else if (e.key === "Escape") go({});
  });
  window.addEventListener("hashchange", route_);
  renderHeader(); renderFilters(); renderModes(); route_();
  document.body.dataset.ready = "1";
})();
