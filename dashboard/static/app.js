// swarmhook dashboard: live updates and actions. Vanilla JS, no build.
// Actions call the JSON API with the session cookie and the page's CSRF
// token; log and API text is only ever inserted as text, never as HTML.
"use strict";
(function () {
  const $ = (sel, el) => (el || document).querySelector(sel);
  const $$ = (sel, el) => Array.from((el || document).querySelectorAll(sel));
  const csrf = ($('meta[name="csrf"]') || {}).content || "";
  const scopes = (document.body.dataset.scopes || "").split(" ");
  const can = (s) => scopes.includes(s) || scopes.includes("admin");
  const final = (s) => !["queued", "running", ""].includes(s);
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  async function api(method, path, body) {
    const opts = { method, credentials: "same-origin", headers: { "X-CSRF-Token": csrf } };
    if (body !== undefined && body !== "") {
      opts.headers["Content-Type"] = "application/json";
      opts.body = body;
    }
    const resp = await fetch(path, opts);
    let data = {};
    try { data = await resp.json(); } catch (e) { /* not JSON */ }
    if (!resp.ok && resp.status !== 202) throw new Error(data.error || resp.status + " " + resp.statusText);
    return data;
  }

  function toast(text) {
    let t = $("#toast");
    if (!t) { t = document.createElement("div"); t.id = "toast"; t.setAttribute("role", "status"); document.body.append(t); }
    t.textContent = text;
  }

  // confirm shows the dialog naming what will change; resolves true on Confirm.
  function confirmChange(text) {
    const d = $("#confirm");
    $("#confirm-text").textContent = text;
    return new Promise((resolve) => {
      d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true });
      d.returnValue = "";
      d.showModal();
    });
  }

  // act runs an action button's request after confirmation and opens
  // the job it started.
  async function act(btn, path, body, question) {
    if (!(await confirmChange(question))) return;
    btn.disabled = true;
    try {
      const r = await api("POST", path, body);
      const id = r.job;
      toast(id ? "Job " + id + " started" : "Done");
      if (id) location.href = "/jobs/" + id;
    } catch (e) {
      toast("Refused: " + e.message);
    } finally {
      btn.disabled = false;
    }
  }

  document.addEventListener("click", (ev) => {
    const btn = ev.target.closest("button[data-post]");
    if (!btn) return;
    ev.preventDefault();
    const body = btn.dataset.branch ? JSON.stringify({ branch: btn.dataset.branch }) : btn.dataset.body;
    act(btn, btn.dataset.post, body, btn.dataset.confirm || btn.textContent);
  });

  // Jobs: the first page polls its rows, so new jobs appear without a reload.
  async function liveJobs(tbody) {
    const q = new URLSearchParams(location.search);
    q.set("rows", "1");
    for (;;) {
      await sleep(document.hidden ? 5000 : 500);
      try {
        const resp = await fetch(location.pathname + "?" + q, { credentials: "same-origin" });
        if (resp.redirected || !resp.ok) continue;
        const html = await resp.text();
        if (html !== tbody.dataset.last) { tbody.innerHTML = html; tbody.dataset.last = html; }
      } catch (e) { /* offline a moment: try again */ }
    }
  }

  // Job: follow the log from where the page's tail ends, and refresh the
  // summary above it (status, stages, services), until the job is over.
  async function refreshSummary() {
    const resp = await fetch(location.pathname + "?part=summary", { credentials: "same-origin" });
    if (!resp.ok) return;
    const tpl = document.createElement("template");
    tpl.innerHTML = await resp.text(); // our own server-rendered, escaped HTML
    const fresh = tpl.content.getElementById("summary");
    if (fresh) $("#summary").replaceWith(fresh);
  }

  async function followLog(pre) {
    const id = pre.dataset.job;
    let end = Number(pre.dataset.end);
    let polls = 0;
    // A page rendered after the job ended holds its whole log. Otherwise
    // done when a read finds no more log after the job ended; a refreshed
    // summary saying so is not enough, lines may have come since.
    if (final($("#summary").dataset.status)) return;
    for (;;) {
      try {
        const resp = await fetch("/jobs/" + id + "/log?from=" + end, { credentials: "same-origin" });
        if (!resp.ok) { await sleep(1000); continue; }
        const text = await resp.text();
        const status = resp.headers.get("X-Job-Status") || "";
        end = Number(resp.headers.get("X-Log-End"));
        pre.dataset.end = end;
        if (text) {
          const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
          pre.append(text);
          if (atBottom) pre.scrollTop = pre.scrollHeight;
          continue; // more may be waiting
        }
        if (final(status)) { await refreshSummary(); return; }
        if (++polls % 4 === 0) await refreshSummary();
      } catch (e) { /* try again */ }
      await sleep(500);
    }
  }

  async function earlier(btn) {
    const pre = $("#log");
    btn.disabled = true;
    const resp = await fetch("/jobs/" + pre.dataset.job + "/log?before=" + btn.dataset.before, { credentials: "same-origin" });
    const text = await resp.text();
    pre.prepend(text);
    btn.dataset.before = resp.headers.get("X-Log-Start");
    btn.disabled = false;
    if (btn.dataset.before === "0") btn.remove();
  }

  // Services: state from GET /api/services every 5 s; candidates from
  // each service's /tags, again whenever the service's tag changes.
  async function services() {
    for (;;) {
      await refreshServices();
      await sleep(document.hidden ? 30000 : 5000);
    }
  }

  async function refreshServices() {
    const note = $("#svc-note");
    let list = [];
    try { list = (await api("GET", "/api/services")).services || []; note.textContent = ""; } catch (e) { note.textContent = "Swarm: " + e.message; return; }
    const byName = Object.fromEntries(list.map((s) => [s.name, s]));
    for (const sec of $$(".svc")) {
      const name = sec.dataset.service, s = byName[name] || {};
      $(".f-image", sec).textContent = s.image || "";
      $(".f-tag", sec).textContent = s.tag || "";
      $(".f-digest", sec).textContent = s.digest || "";
      $(".f-replicas", sec).textContent = s.name ? s.running + " running / " + s.desired + " desired" : "";
      $(".f-update", sec).textContent = s.update_state || "none";
      $(".f-previous", sec).textContent = s.previous_image || "none";
      $(".f-tasks", sec).textContent = (s.tasks || []).map((t) =>
        t.node + ": " + t.state + (t.image ? " " + (t.image.split("@")[1] || t.image).slice(0, 19) : "") + (t.error ? " (" + t.error + ")" : "")).join("; ");
      const native = $(".f-native", sec);
      if (native) {
        native.disabled = !s.previous_image;
        native.dataset.confirm = "Roll " + name + " back to Swarm's previous spec: image " + (s.image || "?") + " → " + (s.previous_image || "?") + "?";
      }
      const scale = $(".f-scale", sec);
      if (scale && document.activeElement !== scale) scale.value = s.desired || 0;
      if (sec.dataset.image !== (s.image || "")) {
        sec.dataset.image = s.image || "";
        candidates(sec, name, s);
      }
    }
  }

  async function candidates(sec, name, s) {
    const tbody = $(".cands tbody", sec);
    let tags = [];
    try { tags = (await api("GET", "/api/services/" + encodeURIComponent(name) + "/tags")).tags || []; } catch (e) {
      tbody.replaceChildren(row([["error: " + e.message]])); return;
    }
    tbody.replaceChildren();
    if (!tags.length) tbody.append(row([["no candidates"]]));
    for (const t of tags) {
      const cells = [[t.tag], [t.status], [t.job ? "#" + t.job : "", t.job ? "/jobs/" + t.job : ""]];
      const tr = row(cells);
      const td = document.createElement("td");
      if (t.tag === s.tag) td.textContent = "running now";
      else if (can("rollback")) {
        const b = document.createElement("button");
        b.className = "act"; b.textContent = "Roll back to this"; b.dataset.tag = t.tag;
        b.dataset.post = "/api/services/" + encodeURIComponent(name) + "/rollback";
        b.dataset.body = JSON.stringify({ tag: t.tag });
        b.dataset.confirm = "Roll " + name + " back from " + (s.tag || s.image || "?") + " to " + t.tag + " (build " + t.status + ")?";
        td.append(b);
      }
      tr.append(td);
      tbody.append(tr);
    }
  }

  function row(cells) {
    const tr = document.createElement("tr");
    for (const [text, href] of cells) {
      const td = document.createElement("td");
      if (href) { const a = document.createElement("a"); a.href = href; a.textContent = text; td.append(a); } else td.textContent = text;
      tr.append(td);
    }
    return tr;
  }

  document.addEventListener("click", (ev) => {
    const b = ev.target.closest(".f-scalebtn");
    if (!b) return;
    const sec = b.closest(".svc"), n = Number($(".f-scale", sec).value);
    act(b, "/api/services/" + encodeURIComponent(b.dataset.service) + "/scale", JSON.stringify({ replicas: n }),
      "Scale " + b.dataset.service + " from " + $(".f-replicas", sec).textContent + " to " + n + " replicas?");
  });

  // Prune: the dry-run plan as a table.
  async function plan(div) {
    let rep;
    try { rep = await api("POST", "/api/prune", JSON.stringify({ dry_run: true })); } catch (e) { div.textContent = "Plan failed: " + e.message; return; }
    const table = document.createElement("table");
    table.id = "plan-table";
    table.append(row([["Repository"], ["Tag"], ["Plan"], ["Why"]]));
    for (const r of rep.repositories || []) {
      for (const d of r.delete || []) table.append(row([[r.repository], [d.tag], ["goes"], [d.exclusive ? "old, its digest has no other tag" : "old"]]));
      for (const k of r.keep || []) table.append(row([[r.repository], [k.tag], ["stays"], [(k.reason || "") + (k.detail ? ": " + k.detail : "")]]));
    }
    div.className = "scroll";
    div.replaceChildren(table);
  }

  const tbody = $("tbody[data-live]");
  if (tbody) liveJobs(tbody);
  const pre = $("#log");
  if (pre) { pre.scrollTop = pre.scrollHeight; followLog(pre); }
  const eb = $("#earlier");
  if (eb) eb.addEventListener("click", () => earlier(eb));
  if ($(".svc")) services();
  const pl = $("#plan");
  if (pl) plan(pl);
})();
