/* The explorer's page: controls, bit buttons, the side-by-side table, the value grid and the
 * number line. Every number it shows comes from window.dtlab (exact); positions on the
 * number line are the only doubles, and they only place marks. */
(function () {
  "use strict";
  const D = window.dtlab;
  const DATA = JSON.parse(document.getElementById("dtlab-data").textContent);
  D.load(DATA);
  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs = {}, ...kids) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const kid of kids) node.append(kid);
    return node;
  };
  const state = { fmt: null, code: 0n, view: null };

  function fillSelect(select, items, chosen) {
    select.replaceChildren(...items.map((it) => el("option", it === chosen ? { value: it, selected: "" } : { value: it }, it)));
  }

  function init() {
    fillSelect($("format"), DATA.formats, DATA.start.format);
    fillSelect($("rounding"), D.roundings, "nearest-even");
    $("overflow").replaceChildren(el("option", { value: "" }, "default"), ...D.overflows.map((o) => el("option", { value: o }, o)));
    $("value").value = DATA.start.value;
    $("compare-list").value = DATA.start.compare.join(",");
    $("format").addEventListener("change", () => { $("spec").value = ""; fromValue(); });
    for (const id of ["spec", "value", "compare-list"]) $(id).addEventListener("input", fromValue);
    for (const id of ["rounding", "overflow"]) $(id).addEventListener("change", fromValue);
    fromValue();
  }

  const options = () => ({ rounding: $("rounding").value, overflow: $("overflow").value || null });
  const specText = () => $("spec").value.trim() || $("format").value;

  function showError(message) { $("error").textContent = message || ""; $("error").hidden = !message; }

  function fromValue() {
    try {
      state.fmt = D.format(specText());
      const overflow = $("overflow");
      const a = D.explain($("value").value, state.fmt, options());
      state.code = BigInt(a.stored.code);
      state.view = a;
      showError("");
      overflow.title = `used: ${a.overflow}`;
      renderAll(a.stored, a);
    } catch (err) {
      showError(err.message);
    }
    renderCompare();
  }

  function fromCode(code) {
    try {
      state.code = code;
      const c = D.decode(code, state.fmt);
      state.view = null;
      $("value").value = c.value;
      showError("");
      renderAll(c, null);
    } catch (err) { showError(err.message); }
    renderCompare();
  }

  function renderAll(c, a) {
    renderBits(c);
    renderFacts(c, a);
    renderProps();
    renderLine(c);
    renderGrid();
  }

  function renderBits(c) {
    const box = $("bits");
    const buttons = [];
    let index = state.fmt.bits - 1;
    for (const f of c.fields) {
      for (const ch of f.bits) {
        const i = index--;
        buttons.push(el("button", { class: `bit ${f.role}`, "data-bit": String(i), title: `${f.role} bit ${i}: click to flip`,
          onclick: () => fromCode(state.code ^ (1n << BigInt(i))) }, ch));
      }
    }
    box.replaceChildren(...buttons);
    $("legend").replaceChildren(...c.fields.map((f) => el("span", { class: `chip ${f.role}` }, `${f.role} ${f.bits}`)));
  }

  function row(label, value, cls) {
    return [el("dt", {}, label), el("dd", { class: cls || "", "data-field": label }, value === null || value === undefined ? "—" : String(value))];
  }
  function renderFacts(c, a) {
    const rows = [
      ...row("format", c.format), ...row("code", `${c.hex}  (${c.code})`), ...row("category", c.category, `cat ${c.category}`),
      ...row("formula", c.formula), ...row("stored", c.value, "exact"),
    ];
    if (a) {
      rows.push(...row("input", a.input, "exact"), ...row("rounding", `${a.rounding}, overflow ${a.overflow}`),
        ...row("outcome", a.outcome, `outcome ${a.outcome}`), ...row("abs error", a.abs_error, "exact"), ...row("rel error", a.rel_error, "exact"));
    }
    rows.push(...row("previous", c.previous, "exact"), ...row("next", c.next, "exact"), ...row("ulp", c.ulp, "exact"));
    $("facts").replaceChildren(...rows);
  }

  function renderProps() {
    const d = D.describe(state.fmt);
    const keys = d.kind === "int" ? ["bits", "signed", "min", "max"] :
      ["bits", "exponent_bits", "mantissa_bits", "bias", "has_inf", "nan_encoding", "has_subnormals", "has_negative_zero",
        "max", "smallest_normal", "smallest_subnormal", "eps"];
    $("props").replaceChildren(...keys.flatMap((k) => row(k.replaceAll("_", " "), d[k], "exact")));
  }

  // log2 of an exact rational, as a double: places a mark, never shown as a number
  function log2(x) {
    const n = x.n < 0n ? -x.n : x.n;
    if (n === 0n) return -Infinity;
    const top = (b) => { const s = b.toString(2); return Math.log2(parseInt(s.slice(0, 53), 2)) + Math.max(0, s.length - 53); };
    return top(n) - top(x.d);
  }
  // SVG as markup: inside an HTML page the parser puts it in the SVG namespace itself
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  const svgEl = (tag, attrs, text) => {
    const a = Object.entries(attrs).map(([k, v]) => ` ${k}="${esc(v)}"`).join("");
    return text === undefined ? `<${tag}${a}/>` : `<${tag}${a}>${esc(text)}</${tag}>`;
  };

  function renderLine(c) {
    const svg = $("numberline");
    const W = 820, H = 96, L = 20, R = W - 20, fmt = state.fmt;
    const parts = [];
    if (fmt.kind === "int") {
      parts.push(svgEl("rect", { x: L, y: 30, width: R - L, height: 22, class: "zone normal" }));
      parts.push(svgEl("text", { x: L, y: 72, class: "tick" }, `${fmt.min}`), svgEl("text", { x: R, y: 72, class: "tick end" }, `${fmt.max}`));
      const span = Number(fmt.max - fmt.min) || 1;
      const v = D.internal.decodeValue(state.code, fmt);
      const x = L + ((Number(D.internal.signedFrac(v).n) - Number(fmt.min)) / span) * (R - L);
      parts.push(svgEl("line", { x1: x, x2: x, y1: 22, y2: 60, class: "mark" }));
      parts.push(svgEl("text", { x: L, y: 16, class: "title" }, "integers: every value from min to max, spacing 1; beyond both ends: saturate or wrap"));
      svg.innerHTML = parts.join("");
      return;
    }
    const sub = log2(D.internal.smallestPositive(fmt)), nrm = log2(D.internal.smallestNormal(fmt)), top = log2(fmt.max);
    const lo = sub - 2, hi = top + 2, X = (e) => L + ((e - lo) / (hi - lo)) * (R - L);
    const zone = (a, b, cls, label) => {
      if (b <= a) return;
      parts.push(svgEl("rect", { x: X(a), y: 30, width: X(b) - X(a), height: 22, class: `zone ${cls}` }));
      parts.push(svgEl("text", { x: (X(a) + X(b)) / 2, y: 45, class: "zone-label" }, label));
    };
    zone(lo, sub, "under", fmt.has_zero ? "→ 0" : "→ min");
    if (fmt.subnormals) zone(sub, nrm, "subnormal", "subnormal");
    zone(nrm, top, "normal", "normal");
    zone(top, hi, "over", fmt.has_inf ? "→ inf" : fmt.nan === "none" ? "→ max" : "→ NaN/max");
    const stepTicks = Math.max(1, Math.ceil((hi - lo) / 12));
    for (let e = Math.ceil(lo); e <= hi; e += stepTicks) {
      parts.push(svgEl("line", { x1: X(e), x2: X(e), y1: 52, y2: 58, class: "axis" }));
      parts.push(svgEl("text", { x: X(e), y: 72, class: "tick" }, `2^${e}`));
    }
    parts.push(svgEl("text", { x: L, y: 16, class: "title" }, "|value| on a log2 scale: underflow, subnormal, normal and overflow zones"));
    const v = D.internal.decodeValue(state.code, fmt);
    if (v.kind === "finite" && v.magnitude.n !== 0n) {
      const x = X(log2(v.magnitude));
      parts.push(svgEl("line", { x1: x, x2: x, y1: 22, y2: 60, class: "mark" }), svgEl("text", { x, y: 90, class: "tick" }, "▲ this value"));
    }
    svg.innerHTML = parts.join("");
  }

  function short(text) {
    if (text.length <= 7) return text;
    const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
    if (!m) return text;
    return `≈${Number(text).toPrecision(3)}`;
  }

  function renderGrid() {
    const fmt = state.fmt, box = $("grid-box");
    if (fmt.bits > 8) {
      box.replaceChildren(el("p", { class: "note" }, `${fmt.name} has ${fmt.bits} bits: the full table is drawn for formats of 8 bits or fewer.`));
      return;
    }
    const colBits = Math.ceil(fmt.bits / 2), cols = 1 << colBits, rows = 1 << (fmt.bits - colBits);
    const head = el("tr", {}, el("th", {}, ""), ...Array.from({ length: cols }, (_, j) => el("th", {}, j.toString(16))));
    const body = [];
    for (let r = 0; r < rows; r++) {
      const cells = [el("th", {}, (r << colBits).toString(16).padStart(Math.ceil(fmt.bits / 4), "0"))];
      for (let j = 0; j < cols; j++) {
        const code = BigInt((r << colBits) | j);
        const c = D.decode(code, fmt);
        const cls = `cell cat-${c.category}${code === state.code ? " current" : ""}`;
        cells.push(el("td", { class: cls, "data-code": c.hex, title: `${c.hex} = ${c.value}`, onclick: () => fromCode(code) }, short(c.value)));
      }
      body.push(el("tr", {}, ...cells));
    }
    box.replaceChildren(el("table", { id: "value-grid", class: "grid" }, el("thead", {}, head), el("tbody", {}, ...body)));
  }

  function fieldBits(c) {
    return el("span", { class: "fieldbits" }, ...c.fields.map((f) => el("span", { class: f.role }, f.bits)));
  }
  function renderCompare() {
    const specs = $("compare-list").value.split(",").map((s) => s.trim()).filter(Boolean);
    const rows = specs.map((spec) => {
      try {
        const a = D.explain($("value").value, spec, options());
        return el("tr", {}, el("td", {}, a.stored.format), el("td", { class: "exact" }, a.stored.value), el("td", {}, fieldBits(a.stored)),
          el("td", { class: `outcome ${a.outcome}` }, a.outcome), el("td", { class: "exact" }, a.abs_error ?? "—"), el("td", { class: "exact" }, a.rel_error ?? "—"));
      } catch (err) {
        return el("tr", {}, el("td", {}, spec), el("td", { colspan: "5", class: "err" }, err.message));
      }
    });
    $("compare-body").replaceChildren(...rows);
  }

  init();
})();
