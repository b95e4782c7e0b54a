/* dtlab's exact scalar path in the browser: a line-by-line port of dtlab.formats (spec
 * grammar, catalogue lookup), dtlab.values (reading numbers exactly) and dtlab.scalar
 * (encode, decode, anatomy). Every number is a BigInt rational; no JS double ever holds a
 * result. explain() and decode() return the records of `dtlab show --json` and
 * `dtlab decode --json` (codes past 2**53 as BigInt; toJSON() writes them as JSON integers).
 */
(function (root) {
  "use strict";

  class DtlabError extends Error {}

  // ---- rationals -----------------------------------------------------------------------
  const ZERO = { n: 0n, d: 1n };
  const absB = (a) => (a < 0n ? -a : a);
  function gcd(a, b) {
    a = absB(a); b = absB(b);
    while (b) { [a, b] = [b, a % b]; }
    return a;
  }
  function frac(n, d = 1n) {
    if (d < 0n) { n = -n; d = -d; }
    const g = gcd(n, d) || 1n;
    return { n: n / g, d: d / g };
  }
  const add = (a, b) => frac(a.n * b.d + b.n * a.d, a.d * b.d);
  const sub = (a, b) => frac(a.n * b.d - b.n * a.d, a.d * b.d);
  const mul = (a, b) => frac(a.n * b.n, a.d * b.d);
  const div = (a, b) => frac(a.n * b.d, a.d * b.n);
  const cmp = (a, b) => { const l = a.n * b.d, r = b.n * a.d; return l < r ? -1 : l > r ? 1 : 0; };
  const eq = (a, b) => a.n === b.n && a.d === b.d;
  const fabs = (a) => ({ n: absB(a.n), d: a.d });
  const neg = (a) => ({ n: -a.n, d: a.d });
  const floorDiv = (a, b) => { const q = a / b; return (a % b !== 0n && (a < 0n) !== (b < 0n)) ? q - 1n : q; };
  const ffloor = (a) => floorDiv(a.n, a.d);
  const pow2 = (e) => (e >= 0 ? { n: 1n << BigInt(e), d: 1n } : { n: 1n, d: 1n << BigInt(-e) });
  const bitLength = (n) => (n === 0n ? 0 : absB(n).toString(2).length);

  // ---- exact values (dtlab.values) -------------------------------------------------------
  const FINITE = "finite", INF = "inf", NAN = "nan";
  const val = (kind, negative, magnitude = ZERO) => ({ kind, negative, magnitude });
  const ofFrac = (x) => val(FINITE, x.n < 0n, fabs(x));
  const signedFrac = (v) => (v.negative ? neg(v.magnitude) : v.magnitude);
  const isZero = (v) => v.kind === FINITE && v.magnitude.n === 0n;

  function exactDecimal(x) {
    const sign = x.n < 0n ? "-" : "";
    const num = absB(x.n), den = x.d;
    let twos = 0, rest = den;
    while ((rest & 1n) === 0n) { rest >>= 1n; twos++; }
    let fives = 0;
    while (rest % 5n === 0n) { rest /= 5n; fives++; }
    if (rest !== 1n) return null;
    const digits = Math.max(twos, fives);
    const scaled = (num * 10n ** BigInt(digits)) / den;
    if (digits === 0) return sign + scaled.toString();
    const text = scaled.toString().padStart(digits + 1, "0");
    return `${sign}${text.slice(0, -digits)}.${text.slice(-digits)}`;
  }
  const exactText = (x) => exactDecimal(x) ?? `${x.n}/${x.d}`;
  function valueText(v) {
    if (v === null) return null;
    if (v.kind === NAN) return "nan";
    const sign = v.negative ? "-" : "";
    return v.kind === INF ? sign + "inf" : sign + exactText(v.magnitude);
  }

  const MAX_EXPONENT = 20000, MAX_DIGITS = 20000;
  const RE_DECIMAL = /^([0-9]*)(?:\.([0-9]*))?(?:e([+-]?[0-9]+))?$/;
  const RE_HEX = /^0x([0-9a-f]*)(?:\.([0-9a-f]*))?(?:p([+-]?[0-9]+))?$/;
  const RE_POWER = /^2(?:\*\*|\^)(?:([+-]?[0-9]+)|\(([+-]?[0-9]+)\))$/;
  const RE_FRACTION = /^([^/]+)\/([^/]+)$/s;
  const q = (s) => `'${s}'`;

  function parseValue(text) {
    const raw = String(text);
    let s = raw.trim().toLowerCase().replaceAll("_", "").replaceAll("\u2212", "-");
    if (s.length > MAX_DIGITS) throw new DtlabError(`number too long (${s.length} characters; at most ${MAX_DIGITS})`);
    const negative = s.startsWith("-");
    if (s.slice(0, 1) === "+" || s.slice(0, 1) === "-") s = s.slice(1);
    if (s === "inf" || s === "infinity") return val(INF, negative);
    if (s === "nan") return val(NAN, negative);
    const m = RE_FRACTION.exec(s);
    if (m) {
      const num = unsigned(m[1], raw), den = unsigned(m[2], raw);
      if (den.n === 0n) throw new DtlabError(`${q(raw.trim())}: division by zero`);
      return val(FINITE, negative, div(num, den));
    }
    return val(FINITE, negative, unsigned(s, raw));
  }
  function unsigned(s, raw) {
    s = s.trim();
    let m = RE_HEX.exec(s);
    if (m) {
      const whole = m[1], fr = m[2] || "";
      if (!(whole + fr)) throw new DtlabError(`${q(raw.trim())}: a hex float needs digits, as in 0x1.8p2`);
      return mul(frac(BigInt("0x" + (whole + fr)), 16n ** BigInt(fr.length)), powOf(2n, m[3], raw));
    }
    m = RE_POWER.exec(s);
    if (m) return powOf(2n, m[1] ?? m[2], raw);
    m = RE_DECIMAL.exec(s);
    if (!m || !(m[1] || m[2])) {
      throw new DtlabError(`cannot read ${q(raw.trim())} as a number (write 0.1, -1e-3, 1/3, 0x1.8p2, 2^-24, inf, -inf, nan or -0)`);
    }
    const digits = (m[1] + (m[2] || "")) || "0";
    return mul(frac(BigInt(digits), 10n ** BigInt((m[2] || "").length)), powOf(10n, m[3], raw));
  }
  function powOf(base, exp, raw) {
    if (exp === undefined || exp === null) return { n: 1n, d: 1n };
    const e = parseInt(exp, 10);
    if (Math.abs(e) > MAX_EXPONENT) throw new DtlabError(`${q(raw.trim())}: exponent ${e} is beyond ±${MAX_EXPONENT}`);
    return e >= 0 ? { n: base ** BigInt(e), d: 1n } : { n: 1n, d: base ** BigInt(-e) };
  }

  function parseBits(text, width, name) {
    const s = String(text).trim().toLowerCase();
    if (s.length > 256) throw new DtlabError(`bit pattern too long (${s.length} characters)`);
    const m = /^0([bx])([0-9a-f_]+)$/.exec(s);
    const where = name ? ` of ${name}` : "";
    if (!m || m[2].replaceAll("_", "") === "") throw new DtlabError(`cannot read ${q(String(text).trim())} as bits: write 0b0_1111_110 or 0x7e`);
    const digits = m[2].replaceAll("_", "");
    if (m[1] === "b" && /[^01]/.test(digits)) throw new DtlabError(`${q(String(text).trim())} has a digit that is not binary`);
    const code = BigInt((m[1] === "b" ? "0b" : "0x") + digits);
    if (m[1] === "b" && digits.length > width) throw new DtlabError(`${q(String(text).trim())} has ${digits.length} bits; the ${width} bits${where} do not hold it`);
    if (code >> BigInt(width)) throw new DtlabError(`${q(String(text).trim())} is too wide for the ${width} bits${where}`);
    return code;
  }

  // ---- format descriptors (dtlab.formats.descriptor) ---------------------------------------
  const IEEE = "ieee", ONES = "all-ones", NZ = "neg-zero", NONE = "none";
  const container = (bits) => { let size = 8; while (size < bits) size *= 2; return size; };
  const defaultBias = (e, nan) => (1 << (e - 1)) - 1 + (nan === NZ ? 1 : 0);
  const styleNan = (style, bits) => (style === "fnuz" ? NZ : style === "fn" ? (bits >= 8 ? ONES : NONE) : IEEE);
  const isInt = (x) => Number.isInteger(x);

  function intFormat(bits, signed) {
    if (!isInt(bits) || bits < 1 || bits > 64) throw new DtlabError(`integer width must be 1..64 bits, got ${bits}`);
    const B = BigInt(bits);
    return {
      kind: "int", bits, signed, name: `${signed ? "" : "u"}int${bits}`, container_bits: container(bits),
      min: signed ? -(1n << (B - 1n)) : 0n, max: signed ? (1n << (B - 1n)) - 1n : (1n << B) - 1n,
    };
  }

  function floatFormat(f) {
    const { exp_bits, man_bits, bias } = f;
    const signed = f.signed ?? true, has_inf = f.has_inf ?? true, nan = f.nan ?? IEEE;
    const subnormals = f.subnormals ?? true;
    if (!isInt(exp_bits) || exp_bits < 1 || exp_bits > 15) throw new DtlabError(`exponent bits must be 1..15, got ${exp_bits}`);
    if (!isInt(man_bits) || man_bits < 0 || man_bits > 112) throw new DtlabError(`mantissa bits must be 0..112, got ${man_bits}`);
    const limit = 1 << (exp_bits + 1);
    if (!isInt(bias) || Math.abs(bias) > limit) throw new DtlabError(`bias must be an integer within ±${limit}, got ${bias}`);
    if (has_inf !== (nan === IEEE)) throw new DtlabError("infinities take the exponent-all-ones codes, so they come with IEEE NaNs: use inf with nan=ieee, or no inf with nan=all-ones, neg-zero or none");
    if (nan === NZ && !signed) throw new DtlabError("an unsigned format has no -0 code to use as NaN");
    if (has_inf && exp_bits < 2) throw new DtlabError("IEEE infinities need at least 2 exponent bits");
    if (nan === IEEE && man_bits === 0) throw new DtlabError("IEEE NaNs need at least 1 mantissa bit");
    const M = BigInt(man_bits);
    const fmt = { kind: "float", exp_bits, man_bits, bias, signed, has_inf, nan, subnormals };
    fmt.bits = (signed ? 1 : 0) + exp_bits + man_bits;
    fmt.sign_bits = signed ? 1 : 0;
    fmt.expMax = (1n << BigInt(exp_bits)) - 1n;
    fmt.manMax = (1n << M) - 1n;
    fmt.signMask = signed ? 1n << BigInt(fmt.bits - 1) : 0n;
    fmt.has_zero = subnormals || man_bits > 0;
    fmt.has_negative_zero = signed && fmt.has_zero && nan !== NZ;
    const top = (fmt.expMax << M) | fmt.manMax;
    fmt.maxCode = nan === IEEE ? ((fmt.expMax - 1n) << M) | fmt.manMax : nan === ONES ? top - 1n : top;
    fmt.nanCode = nan === IEEE ? (fmt.expMax << M) | (1n << (M - 1n)) : nan === ONES ? top : nan === NZ ? fmt.signMask : null;
    fmt.infCode = has_inf ? fmt.expMax << M : null;
    fmt.emin = (subnormals ? 1 : 0) - bias;
    fmt.emax = Number(fmt.maxCode >> M) - bias;
    fmt.name = f.name || generatedName(fmt);
    fmt.container_bits = f.container_bits || container(fmt.bits);
    fmt.max = magnitudeOf(fmt, fmt.maxCode);
    return fmt;
  }

  function magnitudeOf(fmt, mag) {
    const M = BigInt(fmt.man_bits);
    const eField = Number(mag >> M), m = mag & fmt.manMax;
    if (eField === 0 && (fmt.subnormals || (m === 0n && fmt.man_bits > 0))) return mul(pow2(1 - fmt.bias - fmt.man_bits), frac(m));
    return mul(pow2(eField - fmt.bias - fmt.man_bits), frac((1n << M) + m));
  }
  function isNanCode(fmt, code) {
    const mag = code & ~fmt.signMask, M = BigInt(fmt.man_bits);
    if (fmt.nan === IEEE) return (mag >> M) === fmt.expMax && (mag & fmt.manMax) !== 0n;
    if (fmt.nan === ONES) return mag === ((fmt.expMax << M) | fmt.manMax);
    if (fmt.nan === NZ) return code === fmt.signMask;
    return false;
  }
  const isInfCode = (fmt, code) => fmt.has_inf && (code & ~fmt.signMask) === fmt.expMax << BigInt(fmt.man_bits);
  const smallestPositive = (fmt) => magnitudeOf(fmt, fmt.has_zero ? 1n : 0n);
  const smallestNormal = (fmt) => (fmt.subnormals ? pow2(fmt.emin) : smallestPositive(fmt));

  function generatedName(f) {
    const style = { [IEEE]: "", [NZ]: "fnuz" }[f.nan] ?? "fn";
    const bias = f.bias === defaultBias(f.exp_bits, f.nan) ? "" : `b${f.bias}`;
    let name = `float${f.bits}_e${f.exp_bits}m${f.man_bits}${bias}${style}${f.signed ? "" : "u"}`;
    if (f.nan !== styleNan(style, f.bits)) name += `:nan=${f.nan}`;
    if (f.subnormals !== (f.man_bits > 0)) name += `:subnormals=${f.subnormals ? "yes" : "no"}`;
    return name;
  }

  // ---- the catalogue and the spec grammar (dtlab.formats.catalog / spec) --------------------
  const fieldKey = (f) => (f.kind === "int" ? `int:${f.bits}:${f.signed}` :
    `float:${f.exp_bits}:${f.man_bits}:${f.bias}:${f.signed}:${f.has_inf}:${f.nan}:${f.subnormals}`);
  const CATALOG = new Map(), BY_FIELDS = new Map(), LOOKUP = new Map(), CACHE = new Map();
  function load(data) {
    for (const rec of data.catalog) {
      const fmt = rec.kind === "int" ? intFormat(rec.bits, rec.signed) : floatFormat(rec);
      CATALOG.set(fmt.name, fmt);
      if (!BY_FIELDS.has(fieldKey(fmt))) BY_FIELDS.set(fieldKey(fmt), fmt);
    }
    for (const [key, name] of Object.entries(data.lookup)) LOOKUP.set(key, CATALOG.get(name));
  }

  const RE_INT = /^(u?)(?:int|i)(\d{1,3})$/, RE_UINT = /^u(\d{1,3})$/;
  const RE_FLOAT = /^(?:(?:float|fp|f)(\d{1,3})_)?e(\d{1,3})m(\d{1,3})(?:b(-?\d{1,5}))?(fnuz|fn)?(u)?$/;
  function parseShort(text) {
    let m = RE_INT.exec(text);
    if (m) return intFormat(parseInt(m[2], 10), !m[1]);
    m = RE_UINT.exec(text);
    if (m) return intFormat(parseInt(m[1], 10), false);
    m = RE_FLOAT.exec(text);
    if (!m) return null;
    const [, total, e, mant, bias, style, unsigned] = m;
    const exp_bits = parseInt(e, 10), man_bits = parseInt(mant, 10), signed = !unsigned;
    const bits = (signed ? 1 : 0) + exp_bits + man_bits;
    const nan = styleNan(style || "", bits);
    let fmt;
    try {
      fmt = floatFormat({
        exp_bits, man_bits, bias: bias !== undefined ? parseInt(bias, 10) : defaultBias(Math.max(exp_bits, 1), nan),
        signed, has_inf: nan === IEEE, nan, subnormals: man_bits > 0,
      });
    } catch (err) {
      if (!(err instanceof DtlabError) || style || nan !== IEEE) throw err;
      try { parseShort(`${text}fn`); } catch (inner) { throw new DtlabError(`${q(text)}: ${err.message}`); }
      throw new DtlabError(`${q(text)}: ${err.message}, and the plain eXmY form has IEEE inf and NaN; try ${text}fn (finite: no inf, NaN at all ones) or ${text}fnu (the same, unsigned)`);
    }
    if (total !== undefined && parseInt(total, 10) !== fmt.bits) throw new DtlabError(`${q(text)}: e${exp_bits}m${man_bits} takes ${fmt.bits} bits, not ${total}`);
    return fmt;
  }

  const YES = { yes: true, y: true, true: true, 1: true, no: false, n: false, false: false, 0: false };
  const KEYS = ["bias", "inf", "nan", "subnormals", "signed"];
  function applyOverrides(base, overrides, text) {
    if (base.kind === "int") throw new DtlabError(`${q(text)}: integer formats take no :key=value options`);
    const values = {};
    for (const item of overrides) {
      const at = item.indexOf("=");
      const key = (at < 0 ? item : item.slice(0, at)).trim().toLowerCase();
      const value = (at < 0 ? "" : item.slice(at + 1)).trim().toLowerCase();
      if (at < 0 || !KEYS.includes(key)) throw new DtlabError(`${q(text)}: ${q(item)} is not one of ${KEYS.map((k) => k + "=").join(", ")}`);
      if (key in values) throw new DtlabError(`${q(text)}: ${key} given twice`);
      values[key] = value;
    }
    const changes = {};
    if ("bias" in values) {
      if (!/^\s*[+-]?\d+\s*$/.test(values.bias)) throw new DtlabError(`${q(text)}: bias must be an integer`);
      changes.bias = parseInt(values.bias, 10);
    }
    for (const key of ["inf", "subnormals", "signed"]) {
      if (key in values) {
        if (!Object.prototype.hasOwnProperty.call(YES, values[key])) throw new DtlabError(`${q(text)}: ${key} must be yes or no`);
        changes[key === "inf" ? "has_inf" : key] = YES[values[key]];
      }
    }
    if ("nan" in values) {
      if (![IEEE, ONES, NZ, NONE].includes(values.nan)) throw new DtlabError(`${q(text)}: nan must be one of ieee, all-ones, neg-zero, none`);
      changes.nan = values.nan;
    }
    if ("nan" in changes && !("has_inf" in changes)) changes.has_inf = changes.nan === IEEE;
    else if ("has_inf" in changes && !("nan" in changes)) {
      if (changes.has_inf) changes.nan = IEEE;
      else if (base.nan === IEEE) throw new DtlabError(`${q(text)}: with inf=no, say where NaN goes: nan=all-ones, neg-zero or none`);
    }
    const fields = { exp_bits: base.exp_bits, man_bits: base.man_bits, bias: base.bias, signed: base.signed,
      has_inf: base.has_inf, nan: base.nan, subnormals: base.subnormals };
    return floatFormat({ ...fields, ...changes });
  }

  function getFormat(spec) {
    if (spec && typeof spec === "object") return spec;
    const raw = String(spec);
    if (CACHE.has(raw)) return CACHE.get(raw);
    let key = raw.trim().toLowerCase();
    for (const prefix of ["torch.", "numpy.", "np.", "ml_dtypes."]) if (key.startsWith(prefix)) key = key.slice(prefix.length);
    if (!key) throw new DtlabError("empty format name");
    const [head, ...overrides] = key.split(":");
    const base = LOOKUP.get(head) || parseShort(head);
    if (!base) throw new DtlabError(`unknown format ${q(raw.trim())} (dtlab formats lists them; specs like e4m3fn, int7)`);
    let fmt = overrides.length ? applyOverrides(base, overrides, raw) : base;
    fmt = BY_FIELDS.get(fieldKey(fmt)) || fmt;
    CACHE.set(raw, fmt);
    return fmt;
  }

  // ---- modes (dtlab.modes) -------------------------------------------------------------------
  const ROUNDINGS = ["nearest-even", "nearest-away", "toward-zero", "up", "down", "stochastic"];
  const OVERFLOWS = ["saturate", "inf-nan", "wrap"];
  const ALIASES = {
    rounding: { rne: "nearest-even", nearest: "nearest-even", rna: "nearest-away", rtz: "toward-zero",
      truncate: "toward-zero", zero: "toward-zero", ceil: "up", floor: "down", sr: "stochastic" },
    overflow: { sat: "saturate", inf: "inf-nan", nan: "inf-nan", ieee: "inf-nan" },
  };
  function parseMode(value, choices, what) {
    let text = String(value).trim().toLowerCase().replaceAll("_", "-");
    text = ALIASES[what][text] ?? text;
    if (choices.includes(text)) return text;
    throw new DtlabError(`unknown ${what} ${q(value)}; choose one of ${choices.join(", ")}`);
  }
  function resolveModes(fmt, rounding, overflow) {
    const mode = parseMode(rounding ?? "nearest-even", ROUNDINGS, "rounding");
    let policy = overflow === undefined || overflow === null || overflow === "" ? null : parseMode(overflow, OVERFLOWS, "overflow");
    if (mode === "stochastic") throw new DtlabError("stochastic rounding needs random bits: use the tensor kernels");
    if (policy === null) policy = fmt.kind === "int" ? "saturate" : "inf-nan";
    else if (fmt.kind === "int" && policy === "inf-nan") throw new DtlabError(`${fmt.name} has no inf or NaN: use overflow saturate or wrap`);
    else if (fmt.kind === "float" && policy === "wrap") throw new DtlabError(`wrap-around is for integers; ${fmt.name} can saturate or use inf-nan`);
    return [mode, policy];
  }

  // ---- decode and encode (dtlab.scalar.codec) -------------------------------------------------
  function decodeValue(code, fmt) {
    if (code < 0n || code >= 1n << BigInt(fmt.bits)) throw new DtlabError(`code 0x${code.toString(16)} does not fit in the ${fmt.bits} bits of ${fmt.name}`);
    if (fmt.kind === "int") {
      if (fmt.signed && code >> BigInt(fmt.bits - 1)) return ofFrac(frac(code - (1n << BigInt(fmt.bits))));
      return ofFrac(frac(code));
    }
    const negative = (code & fmt.signMask) !== 0n;
    if (isNanCode(fmt, code)) return val(NAN, negative);
    if (isInfCode(fmt, code)) return val(INF, negative);
    return val(FINITE, negative, magnitudeOf(fmt, code & ~fmt.signMask));
  }

  const enc = (code, outcome) => ({ code, outcome });
  function encode(x, fmt, mode, policy) {
    return fmt.kind === "int" ? encodeInt(x, fmt, mode, policy) : encodeFloat(x, fmt, mode, policy);
  }
  function roundToInteger(x, mode) {
    const floor = ffloor(x), rest = sub(x, frac(floor));
    if (rest.n === 0n) return floor;
    if (mode === "down") return floor;
    if (mode === "up") return floor + 1n;
    if (mode === "toward-zero") return x.n < 0n ? floor + 1n : floor;
    const c = cmp(rest, { n: 1n, d: 2n });
    if (c !== 0) return floor + (c > 0 ? 1n : 0n);
    if (mode === "nearest-away") return x.n > 0n ? floor + 1n : floor;
    return floor + (floor & 1n);
  }
  function encodeInt(x, fmt, mode, policy) {
    const mask = (1n << BigInt(fmt.bits)) - 1n;
    if (x.kind === NAN) return enc(0n, "nan-lost");
    if (x.kind === INF) {
      if (policy === "wrap") return enc(0n, "wrapped");
      return enc((x.negative ? fmt.min : fmt.max) & mask, "saturated");
    }
    const xf = signedFrac(x);
    let n = roundToInteger(xf, mode);
    let outcome = eq(frac(n), xf) ? "exact" : "rounded";
    if (n > fmt.max || n < fmt.min) {
      if (policy === "wrap") return enc(n & mask, "wrapped");
      n = n > fmt.max ? fmt.max : fmt.min;
      outcome = "saturated";
    }
    return enc(n & mask, outcome);
  }
  function floorLog2(a) {
    let e = bitLength(a.n) - bitLength(a.d);
    const l = e < 0 ? a.n << BigInt(-e) : a.n, r = e > 0 ? a.d << BigInt(e) : a.d;
    if (l < r) e -= 1;
    return e;
  }
  function floorCode(a, fmt) {
    const man = fmt.man_bits, e = floorLog2(a);
    if (fmt.subnormals && e < fmt.emin) return ffloor(div(a, pow2(fmt.emin - man)));
    const eField = e + fmt.bias;
    if (eField < 0) return fmt.has_zero ? 0n : -1n;
    const fr = sub(div(a, pow2(e - man)), frac(1n << BigInt(man)));
    const code = (BigInt(eField) << BigInt(man)) | ffloor(fr);
    if (!fmt.subnormals && fmt.has_zero && code === 0n) return 0n;
    return code;
  }
  function signAware(mode, negative) {
    if (mode === "up") return negative ? "toward-zero" : "up";
    if (mode === "down") return negative ? "up" : "toward-zero";
    return mode;
  }
  function choose(a, lo, fmt, mode) {
    if (lo < 0n) return 0n;
    const vLo = magnitudeOf(fmt, lo);
    if (eq(vLo, a)) return lo;
    if (mode === "toward-zero") return lo;
    if (mode === "up") return lo + 1n;
    const vHi = magnitudeOf(fmt, lo + 1n);
    const c = cmp(sub(a, vLo), sub(vHi, a));
    if (c !== 0) return c < 0 ? lo : lo + 1n;
    if (mode === "nearest-away" || fmt.man_bits === 0) return lo + 1n;
    return lo % 2n === 0n ? lo : lo + 1n;
  }
  function overflowCode(fmt, policy, towardZero) {
    if (policy === "saturate" || towardZero) return enc(fmt.maxCode, "saturated");
    if (fmt.has_inf) return enc(fmt.infCode ?? 0n, "overflow-inf");
    if (fmt.nanCode !== null) return enc(fmt.nanCode, "overflow-nan");
    return enc(fmt.maxCode, "saturated");
  }
  const signedEnc = (e, sign) => (e.outcome === "overflow-nan" ? e : enc(sign | e.code, e.outcome));
  function encodeFloat(x, fmt, rounding, policy) {
    if (x.kind === NAN) return fmt.nanCode !== null ? enc(fmt.nanCode, "exact") : enc(0n, "nan-lost");
    if (x.negative && !fmt.signed && !isZero(x)) {
      if (policy === "inf-nan" && fmt.nanCode !== null) return enc(fmt.nanCode, "overflow-nan");
      return enc(0n, "saturated");
    }
    let sign = x.negative ? fmt.signMask : 0n;
    const mode = signAware(rounding, x.negative);
    if (x.kind === INF) {
      if (policy === "inf-nan" && fmt.has_inf) return enc(sign | (fmt.infCode ?? 0n), "exact");
      const e = overflowCode(fmt, policy, false);
      return enc(e.code === fmt.nanCode ? e.code : sign | e.code, e.outcome);
    }
    const a = x.magnitude;
    if (a.n === 0n) {
      if (!fmt.has_zero) return enc(0n, "rounded");
      return enc(fmt.has_negative_zero ? sign : 0n, "exact");
    }
    let lo = floorCode(a, fmt);
    if (lo >= fmt.maxCode) {
      lo = fmt.maxCode;
      if (cmp(a, magnitudeOf(fmt, lo + 1n)) >= 0) return signedEnc(overflowCode(fmt, policy, mode === "toward-zero"), sign);
    }
    const code = choose(a, lo, fmt, mode);
    if (code > fmt.maxCode) return signedEnc(overflowCode(fmt, policy, false), sign);
    const value = magnitudeOf(fmt, code);
    let outcome;
    if (value.n === 0n || (lo < 0n && cmp(value, a) > 0)) {
      outcome = "underflow";
      if (value.n === 0n && !fmt.has_negative_zero) sign = 0n;
    } else outcome = eq(value, a) ? "exact" : "rounded";
    return enc(sign | code, outcome);
  }

  // ---- anatomy (dtlab.scalar.anatomy) --------------------------------------------------------
  const binary = (n, width) => n.toString(2).padStart(width, "0");
  function explainCode(code, fmt) {
    const value = decodeValue(code, fmt);
    const bits = binary(code, fmt.bits);
    const hex = "0x" + code.toString(16).padStart(Math.floor((fmt.bits + 3) / 4), "0");
    if (fmt.kind === "int") {
      return codeRecord(fmt, code, [{ role: "bits", bits }], value, "integer", intFormula(code, fmt),
        intStep(value, fmt, -1n), intStep(value, fmt, 1n), { n: 1n, d: 1n }, bits, hex);
    }
    const s = fmt.sign_bits, e = fmt.exp_bits;
    const fields = s ? [{ role: "sign", bits: bits.slice(0, s) }] : [];
    fields.push({ role: "exponent", bits: bits.slice(s, s + e) });
    if (fmt.man_bits) fields.push({ role: "mantissa", bits: bits.slice(s + e) });
    const [prev, next] = value.kind === NAN ? [null, null] : [step(value, fmt, true), step(value, fmt, false)];
    return codeRecord(fmt, code, fields, value, category(code, fmt, value), floatFormula(code, fmt, value),
      prev, next, ulpOf(code, fmt, value), bits, hex);
  }
  function codeRecord(fmt, code, fields, value, cat, formula, prev, next, ulp, bits, hex) {
    return {
      format: fmt.name, code: code <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(code) : code, fields,
      value: valueText(value), category: cat, formula, previous: valueText(prev), next: valueText(next),
      ulp: ulp === null ? null : exactText(ulp), bits, hex,
    };
  }
  function intFormula(code, fmt) {
    if (!fmt.signed || !(code >> BigInt(fmt.bits - 1))) return `${code}`;
    const top = 1n << BigInt(fmt.bits - 1), rest = code - top;
    return `\u2212${top} + ${rest} = ${rest - top}  (two's complement: the top bit weighs \u22122^${fmt.bits - 1})`;
  }
  function intStep(value, fmt, stepBy) {
    const n = signedFrac(value).n + stepBy;
    return fmt.min <= n && n <= fmt.max ? ofFrac(frac(n)) : null;
  }
  function category(code, fmt, value) {
    if (value.kind !== FINITE) return value.kind;
    if (value.magnitude.n === 0n) return "zero";
    const mag = code & ~fmt.signMask;
    return fmt.subnormals && mag >> BigInt(fmt.man_bits) === 0n ? "subnormal" : "normal";
  }
  function floatFormula(code, fmt, value) {
    if (value.kind === NAN) return "NaN (not a number)";
    if (value.kind === INF) return `${value.negative ? "\u2212" : "+"}infinity`;
    const mag = code & ~fmt.signMask;
    const eField = Number(mag >> BigInt(fmt.man_bits)), m = mag & fmt.manMax;
    const sign = fmt.signed ? `(\u22121)^${value.negative ? 1 : 0} \u00d7 ` : "";
    const subnormal = fmt.subnormals && eField === 0;
    let body;
    if (fmt.man_bits === 0) body = subnormal ? "0" : `2^(${eField}\u2212${fmt.bias})`;
    else if (subnormal) body = `2^(1\u2212${fmt.bias}) \u00d7 0.${binary(m, fmt.man_bits)}\u2082`;
    else if (eField === 0 && m === 0n) body = "0 (code 0 is zero: this format has no subnormals)";
    else body = `2^(${eField}\u2212${fmt.bias}) \u00d7 1.${binary(m, fmt.man_bits)}\u2082`;
    return `${sign}${body} = ${valueText(value)}`;
  }
  function ulpOf(code, fmt, value) {
    if (value.kind !== FINITE) return null;
    const eField = Number((code & ~fmt.signMask) >> BigInt(fmt.man_bits));
    return pow2(Math.max(eField - fmt.bias, fmt.emin) - fmt.man_bits);
  }
  function step(value, fmt, down) {
    if (value.kind === INF) return value.negative !== down ? val(FINITE, value.negative, fmt.max) : null;
    const x = signedFrac(value);
    const nudge = pow2(fmt.emin - fmt.man_bits - 2);
    const target = ofFrac(down ? sub(x, nudge) : add(x, nudge));
    const e = encode(target, fmt, down ? "down" : "up", "inf-nan");
    if (e.outcome === "overflow-nan" || e.outcome === "saturated") return null;
    const got = decodeValue(e.code, fmt);
    if (got.kind === FINITE && eq(signedFrac(got), x)) {
      const crosses = fmt.signed && !fmt.has_zero && eq(fabs(x), smallestPositive(fmt));
      return crosses && (x.n > 0n) === down ? ofFrac(neg(x)) : null;
    }
    return got;
  }

  // ---- the public API ------------------------------------------------------------------------
  function explain(value, spec, options = {}) {
    const fmt = getFormat(spec);
    const text = String(value);
    const x = parseValue(text);
    const [mode, policy] = resolveModes(fmt, options.rounding, options.overflow);
    const e = encode(x, fmt, mode, policy);
    const stored = explainCode(e.code, fmt);
    const storedValue = decodeValue(e.code, fmt);
    let absError = null, relError = null;
    if (x.kind === FINITE && storedValue.kind === FINITE) {
      const ae = fabs(sub(signedFrac(storedValue), signedFrac(x)));
      absError = exactText(ae);
      if (x.magnitude.n !== 0n) relError = exactText(div(ae, x.magnitude));
    }
    return { input: valueText(x), text: text.trim(), rounding: mode, overflow: policy, outcome: e.outcome,
      stored, abs_error: absError, rel_error: relError };
  }
  function decode(bits, spec) {
    const fmt = getFormat(spec);
    let code;
    if (typeof bits === "bigint") code = bits;
    else if (typeof bits === "number") code = BigInt(bits);
    else code = parseBits(bits, fmt.bits, fmt.name);
    return explainCode(code, fmt);
  }
  function describe(spec) {
    const fmt = getFormat(spec);
    if (fmt.kind === "int") return { name: fmt.name, kind: "int", bits: fmt.bits, signed: fmt.signed, min: `${fmt.min}`, max: `${fmt.max}` };
    return {
      name: fmt.name, kind: "float", bits: fmt.bits, container_bits: fmt.container_bits, sign_bits: fmt.sign_bits,
      exponent_bits: fmt.exp_bits, mantissa_bits: fmt.man_bits, bias: fmt.bias, signed: fmt.signed, has_inf: fmt.has_inf,
      nan_encoding: fmt.nan, has_subnormals: fmt.subnormals, has_zero: fmt.has_zero, has_negative_zero: fmt.has_negative_zero,
      max: exactText(fmt.max), smallest_normal: exactText(smallestNormal(fmt)), smallest_subnormal: exactText(smallestPositive(fmt)),
      eps: exactText(fmt.subnormals && fmt.emin > 0 ? pow2(fmt.emin - fmt.man_bits) : pow2(-fmt.man_bits)),
      emin: fmt.emin, emax: fmt.emax,
    };
  }
  const toJSON = (obj, indent) => JSON.stringify(obj, (k, v) => (typeof v === "bigint" ? `@@big:${v}@@` : v), indent)
    .replace(/"@@big:(\d+)@@"/g, "$1");

  root.dtlab = Object.freeze({
    load, explain, decode, describe, format: getFormat, parseValue, toJSON, DtlabError,
    roundings: ROUNDINGS.slice(0, 5), overflows: OVERFLOWS.slice(),
    internal: Object.freeze({ valueText, exactText, decodeValue, signedFrac, frac, cmp, magnitudeOf, smallestPositive, smallestNormal }),
  });
})(typeof window !== "undefined" ? window : globalThis);
