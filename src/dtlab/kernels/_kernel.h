/* dtlab fused kernels: what the quantize, metrics and dot sources share.
 *
 * Every element is rounded exactly as dtlab.kernels.reference (pure torch) and dtlab.scalar
 * (exact Fractions) round it; the tests check that all three agree bit for bit.
 *
 * The rounding works on the IEEE bit pattern of |x| read as an integer. With the target's
 * quantum 2^q at |x| (q = max(floor(log2|x|), emin) - man_bits), the pattern's low d bits lie
 * below the quantum; keeping (bits >> d) and adding one on round-up carries correctly into the
 * exponent field. Below half a quantum the candidates are 0 and 2^q. The float32 variant works
 * in 32-bit lanes (8 per AVX2 vector) for formats whose values all fit a float32; the float64
 * variant covers the rest. Build: -O3 -fopenmp -ffp-contract=off (no FMA, as in torch).
 *
 * The lists below (X-macros) are the C side of the records Python passes: the module exports
 * their names (see _module.c), and tests/test_kernel_layout.py holds them to dtlab.kernels'
 * own lists, so that a field added on one side only fails a test instead of shifting the rest.
 */
#ifndef DTLAB_KERNEL_H
#define DTLAB_KERNEL_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <immintrin.h>

/* rounding modes, as dtlab.kernels.params.RoundingCode: X(C name, Python name), in code order */
#define ROUNDING_MODES(X)                                                                     \
    X(RNE, NEAREST_EVEN) X(RNA, NEAREST_AWAY) X(RTZ, TOWARD_ZERO) X(UP, UP) X(DOWN, DOWN)       \
    X(SR, STOCHASTIC)
/* what lies below the smallest positive value v1, as dtlab.kernels.params.LowRegion */
#define LOW_REGIONS(X) X(LOW_NONE, NONE) X(LOW_ZERO_OR_V1, ZERO_OR_V1) X(LOW_V1_ONLY, V1_ONLY)
/* how dot_seq accumulates, as dtlab.kernels.native.DotAccumulation */
#define DOT_ACCUMULATIONS(X)                                                                  \
    X(DOT_FORMAT, FORMAT) X(DOT_FLOAT32_FMA, FLOAT32_FMA) X(DOT_FLOAT64_FMA, FLOAT64_FMA)

#define ENUM_MEMBER(c, py) c,
enum { ROUNDING_MODES(ENUM_MEMBER) N_ROUNDING_MODES };
enum { LOW_REGIONS(ENUM_MEMBER) N_LOW_REGIONS };
enum { DOT_ACCUMULATIONS(ENUM_MEMBER) N_DOT_ACCUMULATIONS };
#undef ENUM_MEMBER

/* the parameter record, as dtlab.kernels.params.INT_FIELDS and FLOAT_FIELDS:
 * X(C member, KernelParams field) */
#define PARAM_INTS(X)                                                                         \
    X(is_int, is_int) X(man_bits, man_bits) X(emin, emin) X(low_region, low_region)            \
    X(neg_zero, neg_zero) X(rounding, rounding) X(flush, flush) X(sat, saturate)               \
    X(is_signed, signed) X(ibits, int_bits) X(wrap, wrap)
#define PARAM_FLOATS(X)                                                                       \
    X(maxv, max_value) X(v1, v1) X(tiny, tiny) X(ovf_value, overflow_value) X(nan_out, nan_out) \
    X(pos_inf_out, pos_inf_out) X(neg_inf_out, neg_inf_out) X(neg_out, neg_out)                \
    X(imin, int_min) X(imax, int_max)

/* what metrics returns, in order, as dtlab.kernels.native.MetricSums: D a double, I an int64 */
#define METRIC_SUMS(D, I)                                                                     \
    D(abs_sum) D(abs_max) D(sq_err) D(xx) D(qq) D(xq) D(rel_sum) D(rel_max)                    \
    D(xmax) /* the largest finite |x| */                                                       \
    I(nan) I(inf) I(pairs) I(rel_count) I(nonfinite) I(underflow) I(subnormal) I(overflow)
/* the limits metrics takes, as dtlab.kernels.native.MetricLimits: X(name, PyArg format unit) */
#define METRIC_LIMITS(X) X(tpos, pos, d) X(ipos, pos_inclusive, p) X(tneg, neg, d)              \
    X(ineg, neg_inclusive, p) X(tiny, tiny, d)

#define THREADS_FROM 65536 /* below this, one thread: OpenMP start-up costs more */
extern int use_avx2;       /* 0 forces the portable kernels (the tests compare both) */

typedef struct {
#define INT_MEMBER(c, py) int64_t c;
#define FLOAT_MEMBER(c, py) double c;
    PARAM_INTS(INT_MEMBER)
    PARAM_FLOATS(FLOAT_MEMBER)
#undef INT_MEMBER
#undef FLOAT_MEMBER
    uint64_t seed;
    uint64_t offset; /* flat index of src[0]: stochastic rounding draws per global index */
} params;

/* the parameter tuples and seed of a call read into p; -1 with a Python error set */
int parse_params(PyObject *ip, PyObject *fp, PyObject *seed, params *p);
/* kind 32: float32 lanes (the format fits a float32), 64: float64 lanes */
void run_quantize(long kind, const void *src, void *dst, int64_t n, const params *pp);

PyObject *py_quantize(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *py_metrics(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *py_dot_seq(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *py_ggml_quantize(PyObject *self, PyObject *const *args, Py_ssize_t nargs);

/* splitmix64 finaliser of (seed, index): 32 random bits per element */
static inline uint64_t rand32(uint64_t seed, uint64_t i) {
    uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return z >> 32;
}

static inline double pow2d(int64_t q) { /* q in [-1074, 1023] */
    uint64_t u = q >= -1022 ? (uint64_t)(q + 1023) << 52 : (uint64_t)1 << (q + 1074);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* One template, instantiated for float (32-bit lanes) and double (64-bit lanes).
 * T: value type, U: same-width unsigned, MB: stored mantissa bits, EB: exponent bias,
 * SUB: 2^-SUB is the smallest subnormal, EMAXF: all-ones exponent field. MODE is a
 * compile-time constant so each rounding mode gets its own vectorised loop. */
#define DEFINE_QUANTIZE(NAME, T, U, I, MB, EB, SUB, EMAXF)                                      \
    static inline T NAME(T x, const params *p, int mode0, uint64_t index) {                    \
        U bits;                                                                                 \
        memcpy(&bits, &x, sizeof(T));                                                           \
        const U signbit = (U)1 << (sizeof(T) * 8 - 1);                                          \
        I neg = (bits & signbit) != 0;                                                          \
        U abits = bits & ~signbit;                                                              \
        T a;                                                                                    \
        memcpy(&a, &abits, sizeof(T));                                                          \
        I fd = (I)(abits >> MB);                                                                \
        I is_nan = fd == EMAXF && (abits & (((U)1 << MB) - 1)) != 0;                            \
        I is_inf = fd == EMAXF && (abits & (((U)1 << MB) - 1)) == 0;                            \
        I mode = mode0 == UP ? (neg ? RTZ : UP) : mode0 == DOWN ? (neg ? UP : RTZ) : mode0;     \
        I L = fd - EB;                                                                          \
        I emin = (I)p->emin, mb = (I)p->man_bits;                                               \
        I q = p->is_int ? 0 : ((L > emin ? L : emin) - mb);                                     \
        I d = fd ? (MB - (L - q)) : (q + SUB); /* pattern bits below the quantum */              \
        d = d < 0 ? 0 : d;                                                                      \
        I small = d > MB; /* |x| < 2^q: the candidates are 0 and 2^q */                        \
        I dc = small ? 0 : d;                                                                   \
        U kept = abits >> dc;                                                                   \
        U rem = abits & (((U)1 << dc) - 1);                                                     \
        U half = ((U)1 << dc) >> 1;                                                             \
        U odd = (dc == MB && fd != 0) ? 1 : (kept & 1); /* last kept significand bit */        \
        U pqb = q >= 1 - EB ? (U)(q + EB) << MB : (U)1 << (q + SUB);                            \
        I qh = q - 1 < -SUB ? -SUB : q - 1;                                                     \
        U hqb = qh >= 1 - EB ? (U)(qh + EB) << MB : (U)1 << (qh + SUB);                         \
        T pq, hq;                                                                               \
        memcpy(&pq, &pqb, sizeof(T));                                                           \
        memcpy(&hq, &hqb, sizeof(T));                                                           \
        I up, sup, lup;                                                                         \
        T v1 = (T)p->v1;                                                                        \
        if (mode0 == SR) {                                                                      \
            uint64_t r = rand32(p->seed, index);                                                \
            /* up with probability (dropped fraction), to 2^-32 */                             \
            uint64_t t = dc == 0 ? 0 : dc <= 32 ? ((uint64_t)rem << (32 - dc))                  \
                                                : ((uint64_t)rem >> (dc - 32));                 \
            int64_t c1 = 32 - (int64_t)q > 1000 ? 1000 : 32 - (int64_t)q;                       \
            uint64_t ts = (uint64_t)((double)a * pow2d(c1) * pow2d(32 - (int64_t)q - c1));      \
            up = r < t;                                                                         \
            sup = r < ts;                                                                       \
            lup = r < (uint64_t)((double)a * 4294967296.0 / p->v1);                             \
        } else {                                                                                \
            up = mode == RNE ? (rem > half || (rem == half && rem != 0 && odd))                \
               : mode == RNA ? (rem >= half && rem != 0)                                        \
               : mode == UP ? (rem != 0) : 0;                                                   \
            sup = mode == RNE ? (a > hq) : mode == RNA ? (a >= hq) : mode == UP ? (a > 0) : 0;  \
            lup = mode == RNE ? (a + a > v1) : mode == RNA ? (a + a >= v1)                      \
                : mode == UP ? (a > 0) : 0;                                                     \
        }                                                                                       \
        U rbits = (kept + (U)up) << dc;                                                         \
        T mag;                                                                                  \
        memcpy(&mag, &rbits, sizeof(T));                                                        \
        mag = small ? (sup ? pq : (T)0) : mag;                                                  \
        /* no subnormals: below the smallest positive value v1 lie only 0 and v1 */            \
        T low = (p->low_region == LOW_V1_ONLY || lup) ? v1 : (T)0;                              \
        mag = (p->low_region != LOW_NONE && a < v1) ? low : mag;                                \
        mag = (p->flush && mag < (T)p->tiny) ? (T)0 : mag;                                      \
        /* overflow: rounding toward zero keeps the largest finite value (IEEE 754 7.4) */     \
        T maxv = (T)p->maxv;                                                                    \
        T ovf = (mode == RTZ || p->sat) ? maxv : (T)p->ovf_value;                               \
        mag = mag > maxv ? ovf : mag;                                                           \
        I flip = neg && (mag != 0 || p->neg_zero) && mag == mag && (p->is_int || p->is_signed);  \
        T out = flip ? -mag : mag;                                                              \
        T iout = out > (T)p->imax ? (T)p->imax : out < (T)p->imin ? (T)p->imin : out;           \
        iout = iout == 0 ? (T)0 : iout; /* integers have no -0 */                              \
        T fout = (neg && x != 0 && !p->is_signed) ? (T)p->neg_out : out;                        \
        out = p->is_int ? iout : fout;                                                          \
        out = is_nan ? (T)p->nan_out : out;                                                     \
        out = is_inf ? (T)(neg ? p->neg_inf_out : p->pos_inf_out) : out;                        \
        return out;                                                                             \
    }

DEFINE_QUANTIZE(q32, float, uint32_t, int32_t, 23, 127, 149, 255)
DEFINE_QUANTIZE(q64, double, uint64_t, int64_t, 52, 1023, 1074, 2047)

/* ---- the lean AVX2 round-to-nearest-even kernels, inlined by quantize and metrics ---- */
#define AVX2 __attribute__((target("avx2")))
#define BLEND(a, b, m) _mm256_blendv_ps((a), (b), (m)) /* m ? b : a */
#define PS(x) _mm256_castsi256_ps(x)

/* which lean kernel rounds float32 inputs under p: 1 float, 2 pow2, 3 int, 0 none */
int lean_kind_of(const params *p);

/* their constants as vectors, built once per call by lean_avx2_of */
typedef struct {
    __m256i absmask, infbits, add, lsb, mask, half, expmask;
    __m128i shift;
    __m256 magic, thresh, maxv, ovf, tiny, zero, nan_out, pos_inf, neg_inf; /* float */
    __m256 two23, imax, imin;                                                 /* int */
    __m256 v1, v1_mid, v1_next, min_normal, neg_out;                          /* pow2 */
    int flush, neg_zero, inf_is_ovf;
} lean_avx2;

AVX2 lean_avx2 lean_avx2_of(const params *p);

/* FINITE (a constant): x is finite, or what becomes of it does not matter (the metrics
 * leave NaN and inf inputs out): the lanes for NaN and inf are skipped */

/* signed formats with subnormals */
static inline __attribute__((always_inline)) AVX2 __m256 lq_float(__m256i bits, const lean_avx2 *c,
                                                                  const int finite) {
    __m256i abits = _mm256_and_si256(bits, c->absmask);
    __m256i sign = _mm256_xor_si256(bits, abits);
    __m256i lo = _mm256_and_si256(_mm256_srl_epi32(abits, c->shift), c->lsb);
    __m256i r = _mm256_and_si256(_mm256_add_epi32(_mm256_add_epi32(abits, c->add), lo), c->mask);
    __m256 a = PS(abits);
    __m256 m = _mm256_sub_ps(_mm256_add_ps(a, c->magic), c->magic);
    __m256 mag = BLEND(PS(r), m, _mm256_cmp_ps(a, c->thresh, _CMP_LT_OQ));
    if (c->flush) mag = BLEND(mag, c->zero, _mm256_cmp_ps(mag, c->tiny, _CMP_LT_OQ));
    mag = BLEND(mag, c->ovf, _mm256_cmp_ps(mag, c->maxv, _CMP_GT_OQ));
    __m256 sg = PS(sign);
    if (!c->neg_zero) sg = _mm256_and_ps(sg, _mm256_cmp_ps(mag, c->zero, _CMP_NEQ_UQ));
    __m256 out = _mm256_or_ps(mag, sg);
    if (finite) return out;
    out = BLEND(out, c->nan_out, PS(_mm256_cmpgt_epi32(abits, c->infbits)));
    if (!c->inf_is_ovf) {
        __m256 inf = PS(_mm256_cmpeq_epi32(abits, c->infbits));
        __m256 neg = PS(_mm256_srai_epi32(bits, 31));
        out = BLEND(out, BLEND(c->pos_inf, c->neg_inf, neg), inf);
    }
    return out;
}

/* integers of up to 24 bits, saturating */
static inline __attribute__((always_inline)) AVX2 __m256 lq_int(__m256i bits, const lean_avx2 *c,
                                                                const int finite) {
    __m256i abits = _mm256_and_si256(bits, c->absmask);
    __m256 a = PS(abits);
    __m256 m = _mm256_sub_ps(_mm256_add_ps(a, c->two23), c->two23);
    __m256 mag = BLEND(a, m, _mm256_cmp_ps(a, c->two23, _CMP_LT_OQ));
    __m256 v = _mm256_or_ps(mag, PS(_mm256_xor_si256(bits, abits)));
    v = BLEND(v, c->imax, _mm256_cmp_ps(v, c->imax, _CMP_GT_OQ));
    v = BLEND(v, c->imin, _mm256_cmp_ps(v, c->imin, _CMP_LT_OQ));
    v = _mm256_add_ps(v, c->zero); /* -0 becomes +0 */
    return finite ? v : BLEND(v, c->nan_out, PS(_mm256_cmpgt_epi32(abits, c->infbits)));
}

/* unsigned powers of two without zero (float8_e8m0fnu): ties go up */
static inline __attribute__((always_inline)) AVX2 __m256 lq_pow2(__m256i bits, const lean_avx2 *c,
                                                                 const int finite) {
    __m256i abits = _mm256_and_si256(bits, c->absmask);
    __m256 a = PS(abits);
    __m256 r = PS(_mm256_and_si256(_mm256_add_epi32(abits, c->half), c->expmask));
    __m256 sub = BLEND(c->v1, c->v1_next, _mm256_cmp_ps(a, c->v1_mid, _CMP_GE_OQ));
    __m256 mag = BLEND(r, sub, _mm256_cmp_ps(a, c->min_normal, _CMP_LT_OQ));
    mag = BLEND(mag, c->v1, _mm256_cmp_ps(a, c->v1, _CMP_LT_OQ));
    mag = BLEND(mag, c->ovf, _mm256_cmp_ps(mag, c->maxv, _CMP_GT_OQ));
    __m256 neg = PS(_mm256_srai_epi32(bits, 31));
    __m256 out = BLEND(mag, c->neg_out, _mm256_and_ps(neg, _mm256_cmp_ps(a, c->zero, _CMP_NEQ_UQ)));
    if (finite) return out;
    __m256 inf = PS(_mm256_cmpeq_epi32(abits, c->infbits));
    out = BLEND(out, BLEND(c->pos_inf, c->neg_inf, neg), inf);
    return BLEND(out, c->nan_out, PS(_mm256_cmpgt_epi32(abits, c->infbits)));
}

/* kind: as lean_kind_of (1 float, 2 pow2, 3 int), a constant where inlined */
static inline __attribute__((always_inline)) AVX2 __m256 lq(int kind, const float *src,
                                                            const lean_avx2 *c, const int finite) {
    __m256i bits = _mm256_loadu_si256((const __m256i *)src);
    return kind == 1 ? lq_float(bits, c, finite) : kind == 2 ? lq_pow2(bits, c, finite)
                                                             : lq_int(bits, c, finite);
}

static inline AVX2 __m256 lq_any(int kind, const float *src, const lean_avx2 *c) {
    return kind == 1 ? lq(1, src, c, 1) : kind == 2 ? lq(2, src, c, 1) : lq(3, src, c, 1);
}

#endif /* DTLAB_KERNEL_H */
