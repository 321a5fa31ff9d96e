// Typesets every .tex element with the KaTeX embedded above it (no network), falls back to the
// tokens with a mark when KaTeX cannot render one, and sorts/filters the items table. Filters are
// kept in the page's #hash (e.g. #set=crohme2014&sym=\frac&sort=len-desc) so a view can be linked.
(function () {
  "use strict";
  var typeset = 0, failed = 0;
  function fallback(el, tex, why) {
    el.classList.add("tex-failed");
    el.textContent = "";
    var mark = document.createElement("span");
    mark.className = "mark";
    mark.textContent = "\u26a0 not typeset";
    mark.title = why;
    var code = document.createElement("code");
    code.textContent = tex;
    el.appendChild(mark);
    el.appendChild(code);
    failed += 1;
  }
  document.querySelectorAll(".tex").forEach(function (el) {
    var tex = el.getAttribute("data-tex") || "";
    if (!tex.trim()) { el.innerHTML = '<span class="muted">(empty)</span>'; return; }
    if (!window.katex) { fallback(el, tex, "KaTeX is not bundled in this report"); return; }
    try {
      window.katex.render(tex, el, {displayMode: true, throwOnError: true, strict: "ignore", trust: false});
      el.classList.add("tex-ok");
      typeset += 1;
    } catch (err) {
      fallback(el, tex, String(err && err.message || err));
    }
  });
  var status = document.getElementById("typeset-status");
  if (status) {
    status.textContent = typeset + " formulas typeset" +
      (failed ? ", " + failed + " could not be (shown as tokens, marked \u26a0)" : "") + ".";
  }
  document.body.setAttribute("data-typeset", typeset);
  document.body.setAttribute("data-typeset-failed", failed);

  var table = document.getElementById("items");
  if (!table) return;
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var controls = {};
  ["set", "task", "dmin", "dmax", "lmin", "lmax", "sym", "sort"].forEach(function (k) {
    controls[k] = document.getElementById("f-" + k);
  });
  function num(v, dflt) { var n = parseFloat(v); return isNaN(n) ? dflt : n; }
  function apply() {
    var v = {};
    Object.keys(controls).forEach(function (k) { v[k] = controls[k] ? controls[k].value : ""; });
    var sym = v.sym.trim();
    var shown = 0;
    rows.forEach(function (tr) {
      var d = num(tr.dataset.dist, 0), len = num(tr.dataset.len, 0);
      var ok = (!v.set || tr.dataset.set === v.set) && (!v.task || tr.dataset.task === v.task) &&
        d >= num(v.dmin, -Infinity) && d <= num(v.dmax, Infinity) &&
        len >= num(v.lmin, -Infinity) && len <= num(v.lmax, Infinity) &&
        (!sym || (" " + tr.dataset.syms + " ").indexOf(" " + sym + " ") >= 0);
      tr.classList.toggle("hidden", !ok);
      if (ok) shown += 1;
    });
    var parts = v.sort.split("-"), key = parts[0], dir = parts[1] === "asc" ? 1 : -1;
    var sorted = rows.slice().sort(function (a, b) {
      var x, y;
      if (key === "id") { x = a.dataset.set + "/" + a.dataset.id; y = b.dataset.set + "/" + b.dataset.id;
        return dir * (x < y ? -1 : x > y ? 1 : 0); }
      x = num(a.dataset[key], 0); y = num(b.dataset[key], 0);
      return dir * (x - y) || (num(a.dataset.rank, 0) - num(b.dataset.rank, 0));
    });
    sorted.forEach(function (tr) { body.appendChild(tr); });
    var count = document.getElementById("shown-count");
    if (count) count.textContent = shown + " of " + rows.length + " items shown";
    table.setAttribute("data-shown", shown);
    var hash = [];
    Object.keys(v).forEach(function (k) {
      if (v[k] && !(k === "sort" && v[k] === "dist-desc")) hash.push(k + "=" + encodeURIComponent(v[k]));
    });
    try { window.history.replaceState(null, "", "#" + hash.join("&")); } catch (e) { /* file: pages may refuse */ }
  }
  function fromHash() {
    (location.hash || "").replace(/^#/, "").split("&").forEach(function (kv) {
      var i = kv.indexOf("=");
      if (i > 0 && controls[kv.slice(0, i)]) controls[kv.slice(0, i)].value = decodeURIComponent(kv.slice(i + 1));
    });
    apply();
  }
  Object.keys(controls).forEach(function (k) {
    if (controls[k]) controls[k].addEventListener("input", apply);
  });
  window.addEventListener("hashchange", fromHash);
  fromHash();
})();
