/* The report's table: every row of the result, sorted by a click on a header, filtered by
 * text and by the values of facet columns, shown a page at a time (all rows when printing). */
(function () {
  "use strict";
  const DATA = JSON.parse(document.getElementById("report-data").textContent);
  const cols = DATA.columns, rows = DATA.rows;
  const $ = (id) => document.getElementById(id);
  const state = { sort: -1, dir: 1, text: "", facets: {}, page: 0, size: 100, printing: false };

  const numeric = (v) => {
    if (typeof v === "number") return v;
    if (v === "inf" || v === "+inf") return Infinity;
    if (v === "-inf") return -Infinity;
    return NaN;
  };
  const shown = (v, col) => {
    if (v === null || v === undefined) return "—";
    if (col.kind === "num" && typeof v === "number") {
      if (Number.isInteger(v) && Math.abs(v) < 1e15) return v.toLocaleString("en-US");
      return "≈" + v.toPrecision(4);
    }
    return String(v);
  };
  const haystack = rows.map((r) => r.map((v) => (v === null ? "" : String(v))).join("\u0001").toLowerCase());

  function facetSelects() {
    const box = $("facets");
    cols.forEach((c, i) => {
      if (!c.facet) return;
      const values = [...new Set(rows.map((r) => String(r[i])))].sort();
      const select = document.createElement("select");
      select.id = `facet-${c.key}`;
      select.dataset.col = String(i);
      select.append(new Option(`${c.label}: all`, ""), ...values.map((v) => new Option(v, v)));
      select.addEventListener("change", () => { state.facets[i] = select.value; state.page = 0; render(); });
      box.append(select);
    });
  }

  function compare(i) {
    const kind = cols[i].kind;
    return (a, b) => {
      const x = a[i], y = b[i];
      if (kind === "num") {
        const p = numeric(x), q = numeric(y);
        if (Number.isNaN(p) || Number.isNaN(q)) return Number.isNaN(p) - Number.isNaN(q); // missing last
        return (p < q ? -1 : p > q ? 1 : 0) * state.dir;
      }
      return String(x ?? "").localeCompare(String(y ?? ""), "en", { numeric: true }) * state.dir;
    };
  }

  function selected() {
    const words = state.text.toLowerCase().split(/\s+/).filter(Boolean);
    const out = [];
    for (let r = 0; r < rows.length; r++) {
      if (words.some((w) => !haystack[r].includes(w))) continue;
      let ok = true;
      for (const [i, v] of Object.entries(state.facets)) if (v && String(rows[r][i]) !== v) { ok = false; break; }
      if (ok) out.push(rows[r]);
    }
    if (state.sort >= 0) out.sort(compare(state.sort));
    return out;
  }

  function header() {
    const tr = document.createElement("tr");
    cols.forEach((c, i) => {
      const th = document.createElement("th");
      th.textContent = c.label;
      th.dataset.key = c.key;
      th.className = c.kind === "num" ? "num" : "";
      th.title = "click to sort";
      th.addEventListener("click", () => {
        state.dir = state.sort === i ? -state.dir : 1;
        state.sort = i;
        state.page = 0;
        render();
      });
      tr.append(th);
    });
    $("rows").tHead.replaceChildren(tr);
  }

  function render() {
    [...$("rows").tHead.rows[0].cells].forEach((th, i) =>
      th.setAttribute("aria-sort", state.sort === i ? (state.dir > 0 ? "ascending" : "descending") : "none"));
    const all = selected();
    const size = state.printing || state.size === 0 ? all.length || 1 : state.size;
    const pages = Math.max(1, Math.ceil(all.length / size));
    state.page = Math.min(state.page, pages - 1);
    const part = all.slice(state.page * size, state.page * size + size);
    const body = document.createDocumentFragment();
    for (const r of part) {
      const tr = document.createElement("tr");
      r.forEach((v, i) => {
        const td = document.createElement("td");
        const c = cols[i];
        td.textContent = shown(v, c);
        if (c.kind === "num") { td.className = "num"; if (typeof v === "number" && !Number.isInteger(v)) td.title = String(v); }
        if (c.kind === "verdict") td.className = `verdict v-${String(v).replace(/[^a-z0-9-]/gi, "")}`;
        tr.append(td);
      });
      body.append(tr);
    }
    $("rows").tBodies[0].replaceChildren(body);
    $("count").textContent = `${all.length.toLocaleString("en-US")} of ${rows.length.toLocaleString("en-US")} rows` +
      (all.length > part.length ? `; showing ${(state.page * size + 1).toLocaleString("en-US")}–${(state.page * size + part.length).toLocaleString("en-US")}` : "");
    $("page").textContent = `page ${state.page + 1} of ${pages}`;
    $("prev").disabled = state.page === 0;
    $("next").disabled = state.page >= pages - 1;
  }

  $("filter").addEventListener("input", (e) => { state.text = e.target.value; state.page = 0; render(); });
  $("page-size").addEventListener("change", (e) => { state.size = Number(e.target.value); state.page = 0; render(); });
  $("prev").addEventListener("click", () => { state.page -= 1; render(); });
  $("next").addEventListener("click", () => { state.page += 1; render(); });
  window.addEventListener("beforeprint", () => { state.printing = true; render(); });
  window.addEventListener("afterprint", () => { state.printing = false; render(); });
  state.size = Number($("page-size").value);
  facetSelects();
  header();
  render();
})();
