/* dtlab fused quantize + metrics kernel (see _kernel.h) */
#include "_kernel.h"

/* ---- metrics: quantize a block into a small buffer and reduce it, one pass over memory ---- */

typedef struct {
#define SUM_D(f) double f;
#define SUM_I(f) int64_t f;
    METRIC_SUMS(SUM_D, SUM_I)
#undef SUM_D
#undef SUM_I
} sums;

/* tpos, tneg: overflow thresholds on |x| by sign; ipos, ineg: whether |x| == threshold
 * overflows too; tiny: the smallest normal */
#define LIMIT_TYPE_d double
#define LIMIT_TYPE_p int
typedef struct {
#define LIMIT_MEMBER(c, py, unit) LIMIT_TYPE_##unit c;
    METRIC_LIMITS(LIMIT_MEMBER)
#undef LIMIT_MEMBER
    int q_in_range; /* finite x give q zero or in [2^-40, 2^60): see acc_f32_fast */
} limits;

#define MBLOCK 32768 /* fewer blocks: each costs a (serial) OpenMP region inside the kernels */

#define DEFINE_ACCUMULATE(NAME, T)                                                             \
    static void NAME(const T *x, const T *q, int64_t n, const limits *l, sums *s) {            \
        for (int64_t i = 0; i < n; i++) {                                                       \
            double xv = (double)x[i], qv = (double)q[i];                                        \
            double ax = fabs(xv), aq = fabs(qv);                                                \
            int xfin = xv - xv == 0, qfin = qv - qv == 0;                                       \
            s->nan += xv != xv;                                                                 \
            s->inf += (!xfin && xv == xv);                                                      \
            s->nonfinite += xfin && !qfin;                                                      \
            s->underflow += xfin && xv != 0 && qv == 0;                                         \
            s->subnormal += xfin && qv != 0 && aq < l->tiny;                                    \
            double t = xv < 0 ? l->tneg : l->tpos;                                              \
            int incl = xv < 0 ? l->ineg : l->ipos;                                              \
            s->overflow += xfin && (ax > t || (incl && ax == t));                               \
            s->xmax = (xfin && ax > s->xmax) ? ax : s->xmax;                                    \
            if (xfin && qfin) {                                                                 \
                double d = fabs(qv - xv);                                                       \
                s->pairs++;                                                                     \
                s->abs_sum += d;                                                                \
                s->abs_max = d > s->abs_max ? d : s->abs_max;                                   \
                s->sq_err += d * d;                                                             \
                s->xx += xv * xv;                                                               \
                s->qq += qv * qv;                                                               \
                s->xq += xv * qv;                                                               \
                if (xv != 0) {                                                                  \
                    double r = d / ax;                                                          \
                    s->rel_count++;                                                             \
                    s->rel_sum += r;                                                            \
                    s->rel_max = r > s->rel_max ? r : s->rel_max;                               \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
    }

DEFINE_ACCUMULATE(acc_f32, float)
DEFINE_ACCUMULATE(acc_f64, double)

/* With AVX2 and FMA, for float32 inputs: the tests in 8 float32 lanes, and the sums in
 * float32 over runs of 16 vectors (128 values across the lanes) before they join float64
 * accumulators. A run (in L1 by then) takes passes with few
 * accumulators each, so that they all stay in registers, and no pass branches per vector.
 * First a pass that decides, trying the kind of the last run first, then the next:
 *   run_usual   whether every x has |x| in [2^-40, t), t below every overflow threshold,
 *               and every |q| at least the smallest normal (or non-zero): nothing to count;
 *   run_events  whether every |x| is in [2^-40, 2^60) and every |q| zero or in it, counting
 *               underflows, subnormals and overflows (fp4 saturating, int8 flushing);
 *   run_counts  whether every pair without NaN or inf has |x| and |q| zero or in
 *               [2^-40, 2^60), counting everything (data with zeros, NaN or inf);
 *   acc_f32     otherwise (huge or tiny values): the run in float64, rare;
 * then run_sums, the sums and maxima, masked after run_counts: x = 0 has no relative error,
 * and a pair with NaN or inf joins no sum.
 * In [2^-40, 2^60) no square over- or underflows float32: a non-zero error is then at
 * least one float32 ulp of 2^-40, whose square 2^-126 is still normal, and 16 squares of
 * errors up to 2^61 stay below 2^128. Relative accuracy of the sums: about 16 * 2^-24 per
 * run, far below what the figures are printed with. The overflow tests are made strict
 * float32 compares x > s by strict_f32. */
#define RUN 16
#define AVX2FMA __attribute__((target("avx2,fma")))
#define SUM_LO 0x2B800000 /* bits of 2^-40 */
#define SUM_HI 0x5D800000 /* bits of 2^60 */

/* the float32 s with, for every float32 x >= 0: x > t (or x == t, inclusive) iff x > s */
static float strict_f32(double t, int inclusive) {
    if (t > 3.4028234663852886e38) return INFINITY; /* beyond every finite float32 */
    float f = (float)t;
    if ((double)f == t) return inclusive ? nextafterf(f, 0.0f) : f;
    return (double)f > t ? nextafterf(f, 0.0f) : f; /* t between two floats: the one below */
}

/* whether the float32 compares give the float64 answers: an inclusive threshold of zero has
 * no strict float32 form, and the smallest normal must be a float32 value */
static int fast32_ok(const limits *l) {
    return !(l->ipos && l->tpos == 0) && !(l->ineg && l->tneg == 0) &&
           (double)(float)l->tiny == l->tiny;
}

typedef struct {
    float lo, opos, oneg, tiny; /* |q| >= lo is usual; x > opos or x < oneg overflows */
    int32_t usual_hi;           /* bits of t: |x| in [2^-40, t) is usual */
    int sym, sub, check_q;      /* for run_events */
} fast_limits;

enum { NSUMS = 7 };

/* The counts stay in vector lanes, two in the 16-bit halves of each 32-bit lane: a call
 * takes at most MBLOCK values, MBLOCK / 8 per lane */
typedef struct {
    __m256d sum[NSUMS]; /* |e|, e^2, x^2, x*e, rel, q^2, x*q */
    __m256 amax, rmax, xmax;
    __m256i ev_us, ev_o; /* run_events: q = 0 | |q| < lo; overflow (32 bits) */
    __m256i cnt[4];      /* run_counts: x non-zero | underflow, subnormal | overflow,
                          * NaN | inf, finite x with q NaN or inf | finite pair */
    int64_t events;      /* values in runs of run_events: finite pairs with x non-zero */
} fast_acc;
_Static_assert(MBLOCK / 8 < 65536, "16-bit counts");

/* lanes whose bits b (of |v|) lie in [lo, hi): b - lo below hi - lo, unsigned, which is a
 * signed compare once both sides have their top bit flipped (adding 2^31 flips it) */
static inline AVX2 __m256i in_bits(__m256i b, int32_t lo, int32_t hi) {
    __m256i u = _mm256_add_epi32(b, _mm256_set1_epi32((int32_t)(0x80000000u - (uint32_t)lo)));
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int32_t)((uint32_t)(hi - lo) ^ 0x80000000u)), u);
}

static inline AVX2 int64_t hsum_epi32(__m256i v) {
    int32_t l[8];
    _mm256_storeu_si256((__m256i *)l, v);
    return (int64_t)l[0] + l[1] + l[2] + l[3] + l[4] + l[5] + l[6] + l[7];
}

/* The deciding passes read q, or (QUANT: the lean kernel's kind, a constant) make it from x
 * with the lean kernel and store it: the run is then read from memory once. */
static inline __attribute__((always_inline)) AVX2 __m256 load_q(const float *x, float *q, int v,
                                                                 const int quant,
                                                                 const lean_avx2 *qc) {
    if (!quant) return _mm256_loadu_ps(q + 8 * v);
    __m256 t = lq(quant, x + 8 * v, qc, 1); /* NaN and inf x: any q */
    _mm256_storeu_ps(q + 8 * v, t);
    return t;
}
#define LOAD_Q(v) load_q(x, q, v, quant, qc)

static inline __attribute__((always_inline)) AVX2 int run_usual_t(const float *x, float *q, int nvec,
                                                                  const fast_limits *k, const int quant,
                                                                  const lean_avx2 *qc) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    const __m256 lo = _mm256_set1_ps(k->lo);
    __m256 all = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    for (int v = 0; v < nvec; v++) {
        __m256 ax = _mm256_and_ps(_mm256_loadu_ps(x + 8 * v), absmask);
        __m256 aq = _mm256_and_ps(LOAD_Q(v), absmask);
        __m256i ux = in_bits(_mm256_castps_si256(ax), SUM_LO, k->usual_hi);
        all = _mm256_and_ps(all, _mm256_and_ps(_mm256_cmp_ps(aq, lo, _CMP_GE_OQ), _mm256_castsi256_ps(ux)));
    }
    return _mm256_movemask_ps(all) == 0xFF;
}

static AVX2 int run_usual(const float *x, float *q, int nvec, const fast_limits *k, int quant,
                          const lean_avx2 *qc) {
    switch (quant) {
    case 1: return run_usual_t(x, q, nvec, k, 1, qc);
    case 2: return run_usual_t(x, q, nvec, k, 2, qc);
    case 3: return run_usual_t(x, q, nvec, k, 3, qc);
    default: return run_usual_t(x, q, nvec, k, 0, qc);
    }
}

/* whether every lane of lo (smallest bits - 1 of non-zero values, zero wrapping to the top)
 * and hi (largest bits) admits only zero or [2^-40, 2^60) */
static inline AVX2 int bits_in_sum_range(__m256i lo, __m256i hi) {
    const __m256i lmin = _mm256_set1_epi32(SUM_LO - 1), hmax = _mm256_set1_epi32(SUM_HI - 1);
    __m256i ok = _mm256_and_si256(_mm256_cmpeq_epi32(_mm256_max_epu32(lo, lmin), lo),
                                  _mm256_cmpeq_epi32(_mm256_min_epu32(hi, hmax), hi));
    return _mm256_movemask_ps(_mm256_castsi256_ps(ok)) == 0xFF;
}

/* the common run with events (fp4 saturating, int8 flushing to zero): every |x| in
 * [2^-40, 2^60), so no x is zero and every relative error counts, and every |q| zero or in
 * that range. Counts underflows (q = 0), subnormals (0 < |q| < tiny) and overflows into c
 * when the run is such; returns whether it is. Specialised on constants: SYM (one overflow
 * threshold for both signs), SUB (the format has subnormals), CHECK_Q (q may leave the
 * range: NaN or inf on overflow, or values beyond it in the format). */
static inline __attribute__((always_inline)) AVX2 int run_events_t(
    const float *x, float *q, int nvec, const fast_limits *k, fast_acc *a, const int sym,
    const int sub, const int check_q, const int quant, const lean_avx2 *qc) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    const __m256 zero = _mm256_setzero_ps(), lo = _mm256_set1_ps(k->lo);
    const __m256 opos = _mm256_set1_ps(k->opos), oneg = _mm256_set1_ps(k->oneg);
    const __m256i one = _mm256_set1_epi32(1);
    __m256i c_us = _mm256_setzero_si256(), c_o = c_us; /* q = 0 | |q| < lo (16-bit halves) */
    __m256i xin = _mm256_set1_epi32(-1), qlo = xin, qhi = c_us;
    for (int v = 0; v < nvec; v++) {
        __m256 xv = _mm256_loadu_ps(x + 8 * v);
        __m256 ax = _mm256_and_ps(xv, absmask), aq = _mm256_and_ps(LOAD_Q(v), absmask);
        xin = _mm256_and_si256(xin, in_bits(_mm256_castps_si256(ax), SUM_LO, SUM_HI));
        if (check_q) {
            __m256i bq = _mm256_castps_si256(aq);
            qlo = _mm256_min_epu32(qlo, _mm256_sub_epi32(bq, one));
            qhi = _mm256_max_epu32(qhi, bq);
        }
        __m256 under = _mm256_cmp_ps(aq, zero, _CMP_EQ_OQ);
        if (sub) {
            __m256 small = _mm256_cmp_ps(aq, lo, _CMP_LT_OQ);
            c_us = _mm256_sub_epi16(c_us, _mm256_blend_epi16(_mm256_castps_si256(under), _mm256_castps_si256(small), 0xAA));
        } else { /* |q| < lo is q = 0: both halves count it */
            c_us = _mm256_sub_epi16(c_us, _mm256_castps_si256(under));
        }
        __m256 over = sym ? _mm256_cmp_ps(ax, opos, _CMP_GT_OQ)
                          : _mm256_or_ps(_mm256_cmp_ps(xv, opos, _CMP_GT_OQ), _mm256_cmp_ps(xv, oneg, _CMP_LT_OQ));
        c_o = _mm256_sub_epi32(c_o, _mm256_castps_si256(over));
    }
    if (_mm256_movemask_ps(_mm256_castsi256_ps(xin)) != 0xFF) return 0;
    if (check_q && !bits_in_sum_range(qlo, qhi)) return 0;
    a->ev_us = _mm256_add_epi16(a->ev_us, c_us);
    a->ev_o = _mm256_add_epi32(a->ev_o, c_o);
    a->events += 8 * nvec;
    __m256i any = _mm256_or_si256(c_us, c_o);
    return _mm256_testz_si256(any, any) ? 1 : 2; /* 2: some event */
}

/* 0: not such a run; 1: no event after all; 2: events counted */
static AVX2 int run_events(const float *x, float *q, int nvec, const fast_limits *k, fast_acc *a,
                           int quant, const lean_avx2 *qc) {
    switch (quant << 3 | k->sym << 2 | k->sub << 1 | k->check_q) {
#define CASE(n)                                                                                \
    case n: return run_events_t(x, q, nvec, k, a, ((n) >> 2) & 1, ((n) >> 1) & 1, (n) & 1, (n) >> 3, qc);
#define CASES(n) CASE(n) CASE(n + 1) CASE(n + 2) CASE(n + 3) CASE(n + 4) CASE(n + 5) CASE(n + 6) CASE(n + 7)
        CASES(0) CASES(8) CASES(16) CASES(24)
#undef CASES
#undef CASE
    }
    return 0;
}

/* any run: counts into a->cnt, added only when every finite pair has |x| and |q| zero or
 * in [2^-40, 2^60). 0: not such a run; 1: counted; 2: counted, and every pair was finite
 * with x non-zero. Pairs with NaN or inf stay out of the sums. */
static AVX2 int run_counts(const float *x, const float *q, int nvec, const fast_limits *k,
                           fast_acc *a) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    const __m256 zero = _mm256_setzero_ps(), tiny = _mm256_set1_ps(k->tiny);
    const __m256 inf = _mm256_set1_ps(INFINITY);
    const __m256 opos = _mm256_set1_ps(k->opos), oneg = _mm256_set1_ps(k->oneg);
    const __m256i one = _mm256_set1_epi32(1);
    /* eight counts, two in the 16-bit halves of each 32-bit lane: at most 16 each per run */
    __m256i c01 = _mm256_setzero_si256(), c23 = c01, c45 = c01, c67 = c01;
    /* over the finite pairs: smallest non-zero bits - 1 (zero wraps to the top), largest */
    __m256i lo = _mm256_set1_epi32(-1), hi = _mm256_setzero_si256();
    __m256 allnz = _mm256_castsi256_ps(lo);
#define PAIR_COUNT(c, m0, m1) c = _mm256_sub_epi16(c, _mm256_blend_epi16(_mm256_castps_si256(m0), _mm256_castps_si256(m1), 0xAA))
    for (int v = 0; v < nvec; v++) {
        __m256 xv = _mm256_loadu_ps(x + 8 * v);
        __m256 ax = _mm256_and_ps(xv, absmask), aq = _mm256_and_ps(_mm256_loadu_ps(q + 8 * v), absmask);
        __m256 finx = _mm256_cmp_ps(ax, inf, _CMP_LT_OQ);
        __m256 pair = _mm256_and_ps(finx, _mm256_cmp_ps(aq, inf, _CMP_LT_OQ));
        __m256i bx = _mm256_castps_si256(_mm256_and_ps(ax, pair));
        __m256i bq = _mm256_castps_si256(_mm256_and_ps(aq, pair));
        lo = _mm256_min_epu32(lo, _mm256_min_epu32(_mm256_sub_epi32(bx, one), _mm256_sub_epi32(bq, one)));
        hi = _mm256_max_epu32(hi, _mm256_max_epu32(bx, bq));
        __m256 nzx = _mm256_and_ps(pair, _mm256_cmp_ps(ax, zero, _CMP_GT_OQ));
        allnz = _mm256_and_ps(allnz, nzx);
        __m256 under = _mm256_and_ps(nzx, _mm256_cmp_ps(aq, zero, _CMP_EQ_OQ));
        __m256 sub = _mm256_and_ps(finx, _mm256_and_ps(_mm256_cmp_ps(aq, zero, _CMP_GT_OQ),
                                                       _mm256_cmp_ps(aq, tiny, _CMP_LT_OQ)));
        __m256 over = _mm256_and_ps(finx, _mm256_or_ps(_mm256_cmp_ps(xv, opos, _CMP_GT_OQ),
                                                       _mm256_cmp_ps(xv, oneg, _CMP_LT_OQ)));
        PAIR_COUNT(c01, nzx, under);
        PAIR_COUNT(c23, sub, over);
        PAIR_COUNT(c45, _mm256_cmp_ps(xv, xv, _CMP_UNORD_Q), _mm256_cmp_ps(ax, inf, _CMP_EQ_OQ));
        PAIR_COUNT(c67, _mm256_andnot_ps(pair, finx), pair);
    }
#undef PAIR_COUNT
    if (!bits_in_sum_range(lo, hi)) return 0;
    a->cnt[0] = _mm256_add_epi16(a->cnt[0], c01);
    a->cnt[1] = _mm256_add_epi16(a->cnt[1], c23);
    a->cnt[2] = _mm256_add_epi16(a->cnt[2], c45);
    a->cnt[3] = _mm256_add_epi16(a->cnt[3], c67);
    return _mm256_movemask_ps(allnz) == 0xFF ? 2 : 1;
}

/* MASKED: after run_counts, where x may be zero (its relative error is left out), and a
 * pair NaN or inf (left out of every sum) */
static inline __attribute__((always_inline)) AVX2FMA void run_sums(const float *x, const float *q,
                                                                   int nvec, const int masked,
                                                                   fast_acc *a) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    const __m256 zero = _mm256_setzero_ps();
    __m256 f_abs = zero, f_sq = zero, f_xx = zero, f_xe = zero, f_rel = zero, f_qq = zero;
    __m256 f_xq = zero;
    __m256 amax = a->amax, rmax = a->rmax, xmax = a->xmax;
    for (int v = 0; v < nvec; v++) {
        __m256 xv = _mm256_loadu_ps(x + 8 * v), qv = _mm256_loadu_ps(q + 8 * v);
        __m256 ax = _mm256_and_ps(xv, absmask), xm = ax, nz = ax;
        if (masked) { /* keep the finite pairs; the relative error of those with x non-zero */
            const __m256 inf = _mm256_set1_ps(INFINITY);
            __m256 finx = _mm256_cmp_ps(ax, inf, _CMP_LT_OQ);
            __m256 pair = _mm256_and_ps(finx, _mm256_cmp_ps(_mm256_and_ps(qv, absmask), inf, _CMP_LT_OQ));
            xv = _mm256_and_ps(xv, pair);
            qv = _mm256_and_ps(qv, pair);
            xm = _mm256_and_ps(ax, finx); /* the largest finite |x|, whatever q is */
            nz = _mm256_and_ps(pair, _mm256_cmp_ps(ax, zero, _CMP_GT_OQ));
        }
        __m256 e = _mm256_sub_ps(qv, xv), d = _mm256_and_ps(e, absmask);
        __m256 rel = _mm256_div_ps(d, ax);
        if (masked) rel = _mm256_and_ps(rel, nz);
        f_abs = _mm256_add_ps(f_abs, d);
        f_sq = _mm256_fmadd_ps(e, e, f_sq);
        f_xx = _mm256_fmadd_ps(xv, xv, f_xx);
        f_xe = _mm256_fmadd_ps(xv, e, f_xe);
        f_rel = _mm256_add_ps(f_rel, rel);
        f_qq = _mm256_fmadd_ps(qv, qv, f_qq);
        f_xq = _mm256_fmadd_ps(xv, qv, f_xq);
        amax = _mm256_max_ps(amax, d);
        rmax = _mm256_max_ps(rmax, rel);
        xmax = _mm256_max_ps(xmax, xm);
    }
    a->amax = amax;
    a->rmax = rmax;
    a->xmax = xmax;
    __m256 f[NSUMS] = {f_abs, f_sq, f_xx, f_xe, f_rel, f_qq, f_xq};
    for (int j = 0; j < NSUMS; j++) {
        __m256d lo4 = _mm256_cvtps_pd(_mm256_castps256_ps128(f[j]));
        __m256d hi4 = _mm256_cvtps_pd(_mm256_extractf128_ps(f[j], 1));
        a->sum[j] = _mm256_add_pd(a->sum[j], _mm256_add_pd(lo4, hi4));
    }
}

/* quant (a lean kernel's kind, with qc its constants): x is quantized here, into q; n is a
 * multiple of 8 then */
AVX2FMA static void acc_f32_fast(const float *x, float *q, int64_t n, const limits *l, sums *s,
                                 int quant, const lean_avx2 *qc) {
    fast_limits k;
    k.tiny = (float)l->tiny;
    k.lo = l->tiny > 0 ? (float)l->tiny : 0x1p-149f;
    float tp = strict_f32(l->tpos, l->ipos), tn = strict_f32(l->tneg, l->ineg);
    k.opos = tp;
    k.oneg = -tn;
    float tm = tp < tn ? tp : tn;
    tm = tm < 0x1p60f ? tm : 0x1p60f;
    memcpy(&k.usual_hi, &tm, sizeof k.usual_hi);
    k.usual_hi = k.usual_hi > SUM_LO ? k.usual_hi : SUM_LO; /* an empty range: none usual */
    k.sym = tp == tn;
    k.sub = l->tiny > 0;
    k.check_q = !l->q_in_range;
    fast_acc a;
    memset(&a, 0, sizeof a);
    int64_t plain = 0, i = 0;
    enum { USUAL, EVENTS, COUNTS } last = USUAL; /* the kind of the last run: tried first */
    while (i + 8 <= n) {
        int nvec = (int)((n - i) / 8 < RUN ? (n - i) / 8 : RUN);
        const float *xr = x + i;
        float *qr = q + i;
        if (quant && last == COUNTS)
            for (int v = 0; v < nvec; v++) _mm256_storeu_ps(qr + 8 * v, lq_any(quant, xr + 8 * v, qc));
        int qz = last == COUNTS ? 0 : quant, r; /* the first pass makes q: later ones read it */
        if (last == USUAL && run_usual(xr, qr, nvec, &k, qz, qc)) {
            run_sums(xr, qr, nvec, 0, &a);
            plain += 8 * nvec;
        } else if (last != COUNTS && (r = run_events(xr, qr, nvec, &k, &a, last == USUAL ? 0 : qz, qc))) {
            run_sums(xr, qr, nvec, 0, &a);
            last = r == 1 ? USUAL : EVENTS;
        } else if ((r = run_counts(xr, qr, nvec, &k, &a))) {
            run_sums(xr, qr, nvec, 1, &a);
            last = r == 2 ? EVENTS : COUNTS; /* whether zeros, NaN or inf came */
        } else {
            acc_f32(xr, qr, 8 * nvec, l, s); /* huge or tiny values: in float64 */
            last = COUNTS;
        }
        i += 8 * nvec;
    }
    double lanes[4], sum5[NSUMS];
    float fl[8];
    for (int j = 0; j < NSUMS; j++) {
        _mm256_storeu_pd(lanes, a.sum[j]);
        sum5[j] = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    }
    /* q = x + e: sum q*x = sum x^2 + sum x*e, sum q^2 = sum x^2 + 2 sum x*e + sum e^2 keep
     * 1 - cosine where q is close to x (float32 sums of q*x and q^2 would drown it); where q
     * is far from x (q near 0 under x: saturation, flush) these cancel, even below zero, and
     * the direct sums are the accurate ones */
    double xq = sum5[2] + sum5[3], qq = sum5[2] + 2 * sum5[3] + sum5[1];
    s->abs_sum += sum5[0];
    s->sq_err += sum5[1];
    s->xx += sum5[2];
    s->xq += fabs(xq) >= 0x1p-8 * sum5[2] ? xq : sum5[6];
    s->qq += qq >= 0x1p-8 * (sum5[2] + sum5[1]) ? qq : sum5[5];
    s->rel_sum += sum5[4];
    _mm256_storeu_ps(fl, a.amax);
    for (int j = 0; j < 8; j++) s->abs_max = fl[j] > s->abs_max ? fl[j] : s->abs_max;
    _mm256_storeu_ps(fl, a.rmax);
    for (int j = 0; j < 8; j++) s->rel_max = fl[j] > s->rel_max ? fl[j] : s->rel_max;
    _mm256_storeu_ps(fl, a.xmax);
    for (int j = 0; j < 8; j++) s->xmax = fl[j] > s->xmax ? fl[j] : s->xmax;
    /* runs of run_usual and run_events hold finite pairs only, each with x non-zero */
    const __m256i low = _mm256_set1_epi32(0xFFFF);
    int64_t c[8];
    for (int j = 0; j < 4; j++) {
        c[2 * j] = hsum_epi32(_mm256_and_si256(a.cnt[j], low));
        c[2 * j + 1] = hsum_epi32(_mm256_srli_epi32(a.cnt[j], 16));
    }
    int64_t under = hsum_epi32(_mm256_and_si256(a.ev_us, low));
    int64_t small = hsum_epi32(_mm256_srli_epi32(a.ev_us, 16)); /* q = 0 or subnormal */
    s->pairs += plain + a.events + c[7];
    s->rel_count += plain + a.events + c[0];
    s->underflow += under + c[1];
    s->subnormal += small - under + c[2];
    s->overflow += hsum_epi32(a.ev_o) + c[3];
    s->nan += c[4];
    s->inf += c[5];
    s->nonfinite += c[6];
    acc_f32(x + i, q + i, n - i, l, s); /* the last few values */
}

static void merge(sums *a, const sums *b) {
    a->abs_sum += b->abs_sum;
    a->abs_max = b->abs_max > a->abs_max ? b->abs_max : a->abs_max;
    a->sq_err += b->sq_err;
    a->xx += b->xx;
    a->qq += b->qq;
    a->xq += b->xq;
    a->rel_sum += b->rel_sum;
    a->rel_max = b->rel_max > a->rel_max ? b->rel_max : a->rel_max;
    a->xmax = b->xmax > a->xmax ? b->xmax : a->xmax;
    a->nan += b->nan;
    a->inf += b->inf;
    a->pairs += b->pairs;
    a->rel_count += b->rel_count;
    a->nonfinite += b->nonfinite;
    a->underflow += b->underflow;
    a->subnormal += b->subnormal;
    a->overflow += b->overflow;
}

static void run_metrics(long kind, const void *src, int64_t n, const params *p, const limits *l,
                        sums *total) {
    int64_t nblocks = (n + MBLOCK - 1) / MBLOCK;
    memset(total, 0, sizeof *total);
    int fast = use_avx2 && fast32_ok(l) && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    int lk = kind == 32 ? lean_kind_of(p) : 0, fused = fast && lk;
    lean_avx2 qc;
    if (fused) qc = lean_avx2_of(p);
    /* each block's sums, merged in block order at the end: the same figures whatever the
     * number of threads, and blocks can go to whichever thread is free (on a shared machine
     * one core is often slower than the other). Without the memory: per thread, as blocks
     * fall to it. */
    sums *part = calloc((size_t)nblocks, sizeof *part);
#pragma omp parallel if (n > THREADS_FROM)
    {
        sums mine;
        memset(&mine, 0, sizeof mine);
        params lp = *p;
        double small[1024];
        double *heap = malloc(sizeof(double) * MBLOCK); /* room for MBLOCK doubles or floats */
        double *buf = heap ? heap : small;               /* no memory: smaller steps, same sums */
        int64_t cap = heap ? MBLOCK : 1024;
#pragma omp for schedule(dynamic)
        for (int64_t b = 0; b < nblocks; b++) {
            sums *sp = part ? part + b : &mine;
            int64_t end = (b + 1) * MBLOCK < n ? (b + 1) * MBLOCK : n;
            for (int64_t start = b * MBLOCK; start < end; start += cap) {
                int64_t len = end - start < cap ? end - start : cap;
                lp.offset = (uint64_t)start;
                if (kind == 32 && fused) {
                    /* the lean kernel runs inside the passes; the last few values outside */
                    const float *x = (const float *)src + start;
                    float *q = (float *)buf;
                    int64_t len8 = len & ~(int64_t)7;
                    acc_f32_fast(x, q, len8, l, sp, lk, &qc);
                    lp.offset = (uint64_t)(start + len8);
                    run_quantize(32, x + len8, q + len8, len - len8, &lp);
                    acc_f32(x + len8, q + len8, len - len8, l, sp);
                } else if (kind == 32) {
                    const float *x = (const float *)src + start;
                    run_quantize(32, x, buf, len, &lp);
                    if (fast)
                        acc_f32_fast(x, (float *)buf, len, l, sp, 0, NULL);
                    else
                        acc_f32(x, (const float *)buf, len, l, sp);
                } else {
                    const double *x = (const double *)src + start;
                    run_quantize(64, x, buf, len, &lp);
                    acc_f64(x, buf, len, l, sp);
                }
            }
        }
        if (!part) {
#pragma omp critical
            merge(total, &mine);
        }
        free(heap);
    }
    if (part) {
        for (int64_t b = 0; b < nblocks; b++) merge(total, part + b);
        free(part);
    }
}

/* metrics(kind, src_ptr, n, ints, floats, seed, limits) -> a tuple in METRIC_SUMS order, with
 * limits in METRIC_LIMITS order; kind 32 or 64 as for quantize */
PyObject *py_metrics(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "metrics takes 7 arguments");
        return NULL;
    }
    long kind = PyLong_AsLong(args[0]);
    const void *src = PyLong_AsVoidPtr(args[1]);
    long long n = PyLong_AsLongLong(args[2]);
    params p;
    if (parse_params(args[3], args[4], args[5], &p) < 0) return NULL;
    limits l;
#define LIMIT_UNIT(c, py, unit) #unit
#define LIMIT_ADDRESS(c, py, unit) , &l.c
    if (!PyArg_ParseTuple(args[6], METRIC_LIMITS(LIMIT_UNIT) METRIC_LIMITS(LIMIT_ADDRESS))) return NULL;
    /* saturating (or integer) formats whose non-zero values all lie in [2^-40, 2^60) */
    l.q_in_range = (p.is_int || p.sat) && p.maxv < 0x1p60 && p.v1 >= 0x1p-40;
    sums t;
    Py_BEGIN_ALLOW_THREADS
    run_metrics(kind, src, n, &p, &l, &t);
    Py_END_ALLOW_THREADS
    /* one tuple in METRIC_SUMS order: doubles as floats, counts as ints */
#define UNIT_D(f) "d"
#define UNIT_I(f) "L"
#define VALUE_D(f) , t.f
#define VALUE_I(f) , (long long)t.f
    return Py_BuildValue("(" METRIC_SUMS(UNIT_D, UNIT_I) ")" METRIC_SUMS(VALUE_D, VALUE_I));
}
