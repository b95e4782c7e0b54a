/* dtlab fused quantize kernel: one pass over memory, branch-free, OpenMP.
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
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { RNE = 0, RNA = 1, RTZ = 2, UP = 3, DOWN = 4, SR = 5 };
enum { LOW_NONE = 0, LOW_ZERO_OR_V1 = 1, LOW_V1_ONLY = 2 };
#define THREADS_FROM 65536 /* below this, one thread: OpenMP start-up costs more */
static int use_avx2 = 1;

typedef struct {
    int64_t is_int, man_bits, emin, low_region, neg_zero, rounding, flush, sat, is_signed;
    int64_t ibits, wrap;
    double maxv, v1, tiny, ovf_value, nan_out, pos_inf_out, neg_inf_out, neg_out, imin, imax;
    uint64_t seed;
    uint64_t offset; /* flat index of src[0]: stochastic rounding draws per global index */
} params;

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

/* The float32 template again, eight lanes at a time with GCC vector extensions (AVX2 where
 * the CPU has it), so that the common case runs at memory speed. Same arithmetic, with
 * comparisons as lane masks and selects in place of ?:. Stochastic rounding stays scalar. */
typedef float vf __attribute__((vector_size(32)));
typedef uint32_t vu __attribute__((vector_size(32)));
typedef int32_t vi __attribute__((vector_size(32)));

static inline __attribute__((always_inline)) vu sel(vi m, vu a, vu b) {
    return ((vu)m & a) | (~(vu)m & b);
}

static inline __attribute__((always_inline)) vu pow2_bits(vi q) {
    vu normal = (vu)(q + 127) << 23;
    vi qs = q + 149;
    qs = (vi)sel(qs < 0, (vu)(qs * 0), (vu)qs);
    vu sub = (vu)((vi){0} + 1) << (vu)qs;
    return sel(q >= -126, normal, sub);
}

static inline __attribute__((always_inline)) void q32x8(const float *src, float *dst,
                                                         const params *p, int mode0) {
    vu bits;
    memcpy(&bits, src, sizeof bits);
    vu zero = (vu){0}, one = zero + 1;
    vu abits = bits & 0x7FFFFFFFu;
    vi negm = (vi)(bits >> 31) != 0;
    vf a = (vf)abits;
    vi fd = (vi)(abits >> 23);
    vu man = abits & 0x7FFFFFu;
    vi is_nan = (fd == 255) & (man != 0);
    vi is_inf = (fd == 255) & (man == 0);
    vi away = mode0 == UP ? ~negm : mode0 == DOWN ? negm : (vi)zero; /* directed: per sign */
    vi rtzm = mode0 == RTZ ? ~(vi)zero : (mode0 == UP || mode0 == DOWN) ? ~away : (vi)zero;
    vi L = fd - 127;
    vi emin = (vi)zero + (int32_t)p->emin;
    vi q = (vi)sel(L > emin, (vu)L, (vu)emin) - (int32_t)p->man_bits;
    q = p->is_int ? (vi)zero : q;
    vi d = (vi)sel(fd != 0, (vu)(23 - (L - q)), (vu)(q + 149));
    d = (vi)sel(d < 0, zero, (vu)d);
    vi small = d > 23;
    vu dc = sel(small, zero, (vu)d);
    vu kept = abits >> dc;
    vu onedc = one << dc;
    vu rem = abits & (onedc - 1);
    vu half = onedc >> 1;
    vu odd = sel((dc == 23) & (fd != 0), one, kept & 1);
    vi has_rem = rem != 0;
    vi up, sup;
    vu pq = pow2_bits(q);
    vi qh = q - 1;
    qh = (vi)sel(qh < -149, (vu)((vi)zero - 149), (vu)qh);
    vf hq = (vf)pow2_bits(qh);
    if (mode0 == RNE) {
        up = (rem > half) | ((rem == half) & has_rem & (odd != 0));
        sup = a > hq;
    } else if (mode0 == RNA) {
        up = (rem >= half) & has_rem;
        sup = a >= hq;
    } else {
        up = away & has_rem;
        sup = away & (a > 0);
    }
    vu rbits = (kept + ((vu)up & 1)) << dc;
    rbits = sel(small, sel(sup, pq, zero), rbits);
    vf mag = (vf)rbits;
    if (p->low_region != LOW_NONE) {
        vf v1 = (vf){0} + (float)p->v1;
        vi lup = mode0 == RNE ? (a + a > v1) : mode0 == RNA ? (a + a >= v1) : (away & (a > 0));
        lup = p->low_region == LOW_V1_ONLY ? ~(vi)zero : lup;
        mag = (vf)sel(a < v1, sel(lup, (vu)v1, zero), (vu)mag);
    }
    if (p->flush) mag = (vf)sel(mag < (float)p->tiny, zero, (vu)mag);
    vf maxv = (vf){0} + (float)p->maxv;
    vf ovf = p->sat ? maxv : (vf)sel(rtzm, (vu)maxv, (vu)((vf){0} + (float)p->ovf_value));
    mag = (vf)sel(mag > maxv, (vu)ovf, (vu)mag);
    vi flip = negm & ((mag != 0) | (vi)(zero - (uint32_t)p->neg_zero)) & (mag == mag);
    flip = (p->is_int || p->is_signed) ? flip : (vi)zero;
    vu out = (vu)mag ^ ((vu)flip & 0x80000000u);
    if (p->is_int) {
        vf o = (vf)out, imax = (vf){0} + (float)p->imax, imin = (vf){0} + (float)p->imin;
        o = (vf)sel(o > imax, (vu)imax, (vu)o);
        o = (vf)sel(o < imin, (vu)imin, (vu)o);
        out = sel(o == 0, zero, (vu)o);
    } else if (!p->is_signed) {
        out = sel(negm & (a != 0), (vu)((vf){0} + (float)p->neg_out), out);
    }
    out = sel(is_nan, (vu)((vf){0} + (float)p->nan_out), out);
    out = sel(is_inf & negm, (vu)((vf){0} + (float)p->neg_inf_out), out);
    out = sel(is_inf & ~negm, (vu)((vf){0} + (float)p->pos_inf_out), out);
    memcpy(dst, &out, sizeof out);
}

/* Lean round-to-nearest-even kernels for the common formats. They give the same bits as
 * the template above with fewer operations: in the target's normal range the pattern of |x|
 * is rounded by one integer add and mask; below it, the FPU's own round-to-nearest-even does
 * the work: (|x| + C) - C with C = 2^(emin - man_bits + 23) rounds |x| to a multiple of the
 * target's subnormal spacing, exactly once. */
typedef struct {
    uint32_t add, lsb, mask;
    float magic, thresh, maxv, ovf, nan_out, pos_inf, neg_inf, tiny, v1, v1_mid, v1_next, imin,
        imax, neg_out;
    int32_t shift, neg_zero, flush, inf_is_ovf;
} lean;

static lean lean_of(const params *p) {
    lean k;
    int32_t d = 23 - (int32_t)p->man_bits;
    k.shift = d;
    k.add = d ? (1u << (d - 1)) - 1 : 0;
    k.lsb = d ? 1 : 0;
    k.mask = ~((1u << d) - 1);
    int64_t te = p->emin > -126 ? p->emin : -126;
    k.magic = (float)pow2d(p->emin - p->man_bits + 23);
    k.thresh = (float)pow2d(te);
    k.maxv = (float)p->maxv;
    k.ovf = p->sat ? (float)p->maxv : (float)p->ovf_value;
    k.nan_out = (float)p->nan_out;
    k.pos_inf = (float)p->pos_inf_out;
    k.neg_inf = (float)p->neg_inf_out;
    k.tiny = (float)p->tiny;
    k.v1 = (float)p->v1;
    k.v1_mid = (float)(p->v1 * 1.5); /* computed once: subnormal arithmetic is slow */
    k.v1_next = (float)(p->v1 * 2.0);
    k.imin = (float)p->imin;
    k.imax = (float)p->imax;
    k.neg_out = (float)p->neg_out;
    k.neg_zero = (int32_t)p->neg_zero;
    k.flush = (int32_t)p->flush;
    /* ±inf inputs round like an overflow: then they need no lanes of their own */
    int same_pos = k.pos_inf == k.ovf || (k.pos_inf != k.pos_inf && k.ovf != k.ovf);
    int same_neg = k.neg_inf == -k.ovf || (k.neg_inf != k.neg_inf && k.ovf != k.ovf);
    k.inf_is_ovf = same_pos && same_neg;
    return k;
}

static inline __attribute__((always_inline)) vf bcast(float f) { return (vf){0} + f; }

static inline __attribute__((always_inline)) vu specials(vu out, vu bits, vu abits, const lean *k) {
    vi nan = abits > 0x7F800000u;
    out = sel(nan, (vu)bcast(k->nan_out), out);
    if (k->inf_is_ovf) return out;
    vi negm = (vi)(bits >> 31) != 0;
    vi inf = abits == 0x7F800000u;
    out = sel(inf & negm, (vu)bcast(k->neg_inf), out);
    return sel(inf & ~negm, (vu)bcast(k->pos_inf), out);
}

/* signed formats with subnormals (fp16, bf16, fp8, fp6, fp4, tf32, ...) */
static inline __attribute__((always_inline)) void lean_float(const float *src, float *dst, const lean *k) {
    vu bits;
    memcpy(&bits, src, sizeof bits);
    vu abits = bits & 0x7FFFFFFFu, sign = bits ^ abits;
    vu r = (abits + k->add + ((abits >> (uint32_t)k->shift) & k->lsb)) & k->mask;
    vf a = (vf)abits;
    vf m = (a + k->magic) - k->magic;
    vu mag = sel(a < k->thresh, (vu)m, r);
    if (k->flush) mag = sel((vf)mag < k->tiny, (vu){0}, mag);
    mag = sel((vf)mag > k->maxv, (vu)bcast(k->ovf), mag);
    vu out = mag | (k->neg_zero ? sign : sign & (vu)((vf)mag != 0));
    out = specials(out, bits, abits, k);
    memcpy(dst, &out, sizeof out);
}

/* unsigned powers of two without zero (float8_e8m0fnu): ties go up */
static inline __attribute__((always_inline)) void lean_pow2(const float *src, float *dst, const lean *k) {
    vu bits;
    memcpy(&bits, src, sizeof bits);
    vu abits = bits & 0x7FFFFFFFu;
    vf a = (vf)abits;
    vu r = (abits + 0x400000u) & 0xFF800000u;
    /* float32 subnormal inputs: between v1 = 2^-127 and 2^-126 */
    vu sub = sel(a >= k->v1_mid, (vu)bcast(k->v1_next), (vu)bcast(k->v1));
    vu mag = sel(a < 0x1p-126f, sub, r);
    mag = sel(a < k->v1, (vu)bcast(k->v1), mag);
    mag = sel((vf)mag > k->maxv, (vu)bcast(k->ovf), mag);
    vi negm = (vi)(bits >> 31) != 0;
    vu out = sel(negm & (a != 0), (vu)bcast(k->neg_out), mag);
    vi inf = abits == 0x7F800000u;
    out = sel(inf & negm, (vu)bcast(k->neg_inf), out);
    out = sel(inf & ~negm, (vu)bcast(k->pos_inf), out);
    out = sel(abits > 0x7F800000u, (vu)bcast(k->nan_out), out);
    memcpy(dst, &out, sizeof out);
}

/* integers of up to 24 bits, saturating */
static inline __attribute__((always_inline)) void lean_int(const float *src, float *dst, const lean *k) {
    vu bits;
    memcpy(&bits, src, sizeof bits);
    vu abits = bits & 0x7FFFFFFFu, sign = bits ^ abits;
    vf a = (vf)abits;
    vf m = (a + 0x1p23f) - 0x1p23f;
    vf v = (vf)(sel(a < 0x1p23f, (vu)m, abits) | sign);
    v = (vf)sel(v > k->imax, (vu)bcast(k->imax), (vu)v);
    v = (vf)sel(v < k->imin, (vu)bcast(k->imin), (vu)v);
    v = v + 0.0f; /* -0 becomes +0 */
    vu out = sel(abits > 0x7F800000u, (vu)bcast(k->nan_out), (vu)v);
    memcpy(dst, &out, sizeof out);
}

#define DEFINE_LEAN(NAME, BODY)                                                                \
    __attribute__((target_clones("avx2", "default")))                                          \
    static void NAME(const float *src, float *dst, int64_t n, const params *p) {               \
        lean k = lean_of(p);                                                                    \
        int64_t blocks = n / 8;                                                                 \
        _Pragma("omp parallel for schedule(static) if (n > THREADS_FROM)")                     \
        for (int64_t b = 0; b < blocks; b++) BODY(src + 8 * b, dst + 8 * b, &k);                \
        for (int64_t i = blocks * 8; i < n; i++) dst[i] = q32(src[i], p, RNE, (uint64_t)i);     \
    }

DEFINE_LEAN(lean_float_f32, lean_float)
DEFINE_LEAN(lean_pow2_f32, lean_pow2)
DEFINE_LEAN(lean_int_f32, lean_int)

/* The lean kernels once more in AVX2 intrinsics: constants hoisted out of the loop and one
 * blendv per select (GCC lowers the portable selects above to three logic operations). Same
 * comparisons, same results; the portable versions serve CPUs without AVX2. */
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2")))
#define BLEND(a, b, m) _mm256_blendv_ps((a), (b), (m)) /* m ? b : a */
#define PS(x) _mm256_castsi256_ps(x)

/* their constants as vectors, built once per call */
typedef struct {
    __m256i absmask, infbits, add, lsb, mask, half, expmask;
    __m128i shift;
    __m256 magic, thresh, maxv, ovf, tiny, zero, nan_out, pos_inf, neg_inf; /* float */
    __m256 two23, imax, imin;                                                 /* int */
    __m256 v1, v1_mid, v1_next, min_normal, neg_out;                          /* pow2 */
    int flush, neg_zero, inf_is_ovf;
} lean_avx2;

AVX2 static lean_avx2 lean_avx2_of(const params *p) {
    const lean k = lean_of(p);
    lean_avx2 c;
    c.absmask = _mm256_set1_epi32(0x7FFFFFFF);
    c.infbits = _mm256_set1_epi32(0x7F800000);
    c.add = _mm256_set1_epi32((int)k.add);
    c.lsb = _mm256_set1_epi32((int)k.lsb);
    c.mask = _mm256_set1_epi32((int)k.mask);
    c.half = _mm256_set1_epi32(0x400000);
    c.expmask = _mm256_set1_epi32((int)0xFF800000u);
    c.shift = _mm_cvtsi32_si128(k.shift);
    c.magic = _mm256_set1_ps(k.magic);
    c.thresh = _mm256_set1_ps(k.thresh);
    c.maxv = _mm256_set1_ps(k.maxv);
    c.ovf = _mm256_set1_ps(k.ovf);
    c.tiny = _mm256_set1_ps(k.tiny);
    c.zero = _mm256_setzero_ps();
    c.nan_out = _mm256_set1_ps(k.nan_out);
    c.pos_inf = _mm256_set1_ps(k.pos_inf);
    c.neg_inf = _mm256_set1_ps(k.neg_inf);
    c.two23 = _mm256_set1_ps(0x1p23f);
    c.imax = _mm256_set1_ps(k.imax);
    c.imin = _mm256_set1_ps(k.imin);
    c.v1 = _mm256_set1_ps(k.v1);
    c.v1_mid = _mm256_set1_ps(k.v1_mid);
    c.v1_next = _mm256_set1_ps(k.v1_next);
    c.min_normal = _mm256_set1_ps(0x1p-126f);
    c.neg_out = _mm256_set1_ps(k.neg_out);
    c.flush = k.flush;
    c.neg_zero = k.neg_zero;
    c.inf_is_ovf = k.inf_is_ovf;
    return c;
}

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

#define DEFINE_LEAN_AVX2(NAME, KIND)                                                           \
    AVX2 static void NAME(const float *src, float *dst, int64_t n, const params *p) {          \
        const lean_avx2 c0 = lean_avx2_of(p);                                                  \
        int64_t blocks = n / 8;                                                                 \
        _Pragma("omp parallel if (n > THREADS_FROM)") {                                        \
            const lean_avx2 c = c0;                                                             \
            _Pragma("omp for schedule(static)") for (int64_t b = 0; b < blocks; b++)           \
                _mm256_storeu_ps(dst + 8 * b, lq(KIND, src + 8 * b, &c, 0));                      \
        }                                                                                       \
        for (int64_t i = blocks * 8; i < n; i++) dst[i] = q32(src[i], p, RNE, (uint64_t)i);     \
    }

DEFINE_LEAN_AVX2(lean_float_avx2, 1)
DEFINE_LEAN_AVX2(lean_pow2_avx2, 2)
DEFINE_LEAN_AVX2(lean_int_avx2, 3)

#define DEFINE_VLOOP(NAME, MODE)                                                               \
    __attribute__((target_clones("avx2", "default")))                                          \
    static void NAME(const float *src, float *dst, int64_t n, const params *p) {               \
        int64_t blocks = n / 8;                                                                 \
        _Pragma("omp parallel for schedule(static) if (n > THREADS_FROM)")                     \
        for (int64_t b = 0; b < blocks; b++) q32x8(src + 8 * b, dst + 8 * b, p, MODE);          \
        for (int64_t i = blocks * 8; i < n; i++) dst[i] = q32(src[i], p, MODE, (uint64_t)i);    \
    }

/* Integers with wrap-around: round as above (saturation off), then keep the low bits. */
static inline double wrap_int(double v, const params *p) {
    if (v != v || v - v != 0) return v != v ? p->nan_out : (v > 0 ? p->pos_inf_out : p->neg_inf_out);
    double m = v < 0 ? -v : v;
    uint64_t iv;
    if (m >= 0x1p62) {
        /* m = sig * 2^shift exactly, shift >= 10: keep the low 64 bits of that product */
        uint64_t u;
        memcpy(&u, &m, 8);
        int64_t shift = (int64_t)(u >> 52) - 1023 - 52;
        uint64_t sig = (u & 0xFFFFFFFFFFFFFULL) | (1ULL << 52);
        iv = shift >= 64 ? 0 : sig << shift;
    } else {
        iv = (uint64_t)m;
    }
    iv = v < 0 ? (0 - iv) : iv;
    uint64_t mask = p->ibits >= 64 ? ~0ULL : ((1ULL << p->ibits) - 1);
    iv &= mask;
    if (p->is_signed && (iv >> (p->ibits - 1)) & 1) return (double)(int64_t)(iv | ~mask);
    return (double)iv;
}

#define DEFINE_LOOP(NAME, T, ONE, MODE)                                                        \
    __attribute__((target_clones("avx2", "default")))                                          \
    static void NAME(const T *src, T *dst, int64_t n, const params *p) {     \
        _Pragma("omp parallel for schedule(static) if (n > THREADS_FROM)")                     \
        for (int64_t i = 0; i < n; i++) dst[i] = ONE(src[i], p, MODE, p->offset + (uint64_t)i); \
    }

#define DEFINE_LOOPS(T, ONE, SUFFIX)                                                           \
    DEFINE_LOOP(rne_##SUFFIX, T, ONE, RNE)                                                     \
    DEFINE_LOOP(rna_##SUFFIX, T, ONE, RNA)                                                     \
    DEFINE_LOOP(rtz_##SUFFIX, T, ONE, RTZ)                                                     \
    DEFINE_LOOP(up_##SUFFIX, T, ONE, UP)                                                       \
    DEFINE_LOOP(down_##SUFFIX, T, ONE, DOWN)                                                   \
    DEFINE_LOOP(sr_##SUFFIX, T, ONE, SR)                                                       \
    typedef void (*loop_##SUFFIX)(const T *, T *, int64_t, const params *);                    \
    static const loop_##SUFFIX loops_##SUFFIX[6] = {rne_##SUFFIX, rna_##SUFFIX, rtz_##SUFFIX,  \
                                                    up_##SUFFIX, down_##SUFFIX, sr_##SUFFIX};

DEFINE_VLOOP(vrne_f32, RNE)
DEFINE_VLOOP(vrna_f32, RNA)
DEFINE_VLOOP(vrtz_f32, RTZ)
DEFINE_VLOOP(vup_f32, UP)
DEFINE_VLOOP(vdown_f32, DOWN)
DEFINE_LOOP(sr_f32, float, q32, SR)
typedef void (*loop_f32)(const float *, float *, int64_t, const params *);
static const loop_f32 loops_f32[6] = {vrne_f32, vrna_f32, vrtz_f32, vup_f32, vdown_f32, sr_f32};
DEFINE_LOOPS(double, q64, f64)

static void wrap_f32(float *dst, int64_t n, const params *p) {
#pragma omp parallel for schedule(static) if (n > THREADS_FROM)
    for (int64_t i = 0; i < n; i++) dst[i] = (float)wrap_int((double)dst[i], p);
}

static void wrap_f64(double *dst, int64_t n, const params *p) {
#pragma omp parallel for schedule(static) if (n > THREADS_FROM)
    for (int64_t i = 0; i < n; i++) dst[i] = wrap_int(dst[i], p);
}

static void run_quantize(long kind, const void *src, void *dst, int64_t n, const params *pp);

static int parse_params(PyObject *ip, PyObject *fp, PyObject *seed, params *p) {
    if (PyErr_Occurred()) return -1;
    if (!PyTuple_Check(ip) || PyTuple_GET_SIZE(ip) != 11 || !PyTuple_Check(fp) ||
        PyTuple_GET_SIZE(fp) != 10) {
        PyErr_SetString(PyExc_TypeError, "bad parameter tuples");
        return -1;
    }
    int64_t *ints[11] = {&p->is_int, &p->man_bits, &p->emin, &p->low_region, &p->neg_zero,
                         &p->rounding, &p->flush, &p->sat, &p->is_signed, &p->ibits, &p->wrap};
    double *flts[10] = {&p->maxv, &p->v1, &p->tiny, &p->ovf_value, &p->nan_out, &p->pos_inf_out,
                        &p->neg_inf_out, &p->neg_out, &p->imin, &p->imax};
    for (int i = 0; i < 11; i++) *ints[i] = PyLong_AsLongLong(PyTuple_GET_ITEM(ip, i));
    for (int i = 0; i < 10; i++) *flts[i] = PyFloat_AsDouble(PyTuple_GET_ITEM(fp, i));
    p->seed = PyLong_AsUnsignedLongLongMask(seed);
    p->offset = 0;
    if (PyErr_Occurred()) return -1;
    if (p->rounding < 0 || p->rounding > 5) {
        PyErr_SetString(PyExc_ValueError, "bad rounding mode");
        return -1;
    }
    return 0;
}


/* quantize(kind, src_ptr, dst_ptr, n, ints: 11-tuple, floats: 10-tuple, seed)
 * kind 32: float32 lanes (the format fits a float32), 64: float64 lanes. */
static PyObject *py_quantize(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "quantize takes 7 arguments");
        return NULL;
    }
    long kind = PyLong_AsLong(args[0]);
    void *src = PyLong_AsVoidPtr(args[1]);
    void *dst = PyLong_AsVoidPtr(args[2]);
    long long n = PyLong_AsLongLong(args[3]);
    params p;
    if (parse_params(args[4], args[5], args[6], &p) < 0) return NULL;
    Py_BEGIN_ALLOW_THREADS
    run_quantize(kind, src, dst, n, &p);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* which lean kernel rounds float32 inputs under p: 1 float, 2 pow2, 3 int, 0 none */
static int lean_kind_of(const params *p) {
    return p->rounding != RNE ? 0
         : (!p->is_int && p->low_region == LOW_NONE && p->is_signed) ? 1
         : (!p->is_int && p->low_region == LOW_V1_ONLY && p->man_bits == 0 && !p->is_signed) ? 2
         : (p->is_int && !p->wrap) ? 3 : 0;
}

static void run_quantize(long kind, const void *src, void *dst, int64_t n, const params *pp) {
    params p = *pp;
    if (kind == 32) {
        int lean_kind = lean_kind_of(&p);
        int avx2 = use_avx2 && __builtin_cpu_supports("avx2");
        const float *s32 = (const float *)src;
        float *d32 = (float *)dst;
        if (lean_kind == 1) (avx2 ? lean_float_avx2 : lean_float_f32)(s32, d32, n, &p);
        else if (lean_kind == 2) (avx2 ? lean_pow2_avx2 : lean_pow2_f32)(s32, d32, n, &p);
        else if (lean_kind == 3) (avx2 ? lean_int_avx2 : lean_int_f32)(s32, d32, n, &p);
        else loops_f32[p.rounding]((const float *)src, (float *)dst, n, &p);
        if (p.wrap) wrap_f32((float *)dst, n, &p);
    } else {
        loops_f64[p.rounding]((const double *)src, (double *)dst, n, &p);
        if (p.wrap) wrap_f64((double *)dst, n, &p);
    }
}


/* ---- metrics: quantize a block into a small buffer and reduce it, one pass over memory ---- */

typedef struct {
    double abs_sum, abs_max, sq_err, xx, qq, xq, rel_sum, rel_max, xmax; /* xmax: finite |x| */
    int64_t nan, inf, count, rel_count, nonfinite, underflow, subnormal, overflow;
} sums;

typedef struct {
    double tpos, tneg, tiny; /* overflow thresholds on |x| by sign; smallest normal */
    int ipos, ineg;          /* whether |x| == threshold overflows too */
    int q_in_range;          /* finite x give q zero or in [2^-40, 2^60): see acc_f32_fast */
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
                s->count++;                                                                     \
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

/* The counts stay in vector lanes, two in the 16-bit halves of each 32-bit lane: a call
 * takes at most MBLOCK values, MBLOCK / 8 per lane */
typedef struct {
    __m256d sum[5]; /* |e|, e^2, x^2, x*e, rel */
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
    __m256 f_abs = zero, f_sq = zero, f_xx = zero, f_xe = zero, f_rel = zero;
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
        amax = _mm256_max_ps(amax, d);
        rmax = _mm256_max_ps(rmax, rel);
        xmax = _mm256_max_ps(xmax, xm);
    }
    a->amax = amax;
    a->rmax = rmax;
    a->xmax = xmax;
    __m256 f[5] = {f_abs, f_sq, f_xx, f_xe, f_rel};
    for (int j = 0; j < 5; j++) {
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
    double lanes[4], sum5[5];
    float fl[8];
    for (int j = 0; j < 5; j++) {
        _mm256_storeu_pd(lanes, a.sum[j]);
        sum5[j] = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    }
    /* q = x + e: sum q*x = sum x^2 + sum x*e, sum q^2 = sum x^2 + 2 sum x*e + sum e^2 */
    s->abs_sum += sum5[0];
    s->sq_err += sum5[1];
    s->xx += sum5[2];
    s->xq += sum5[2] + sum5[3];
    s->qq += sum5[2] + 2 * sum5[3] + sum5[1];
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
    s->count += plain + a.events + c[7];
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
    a->count += b->count;
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

/* metrics(kind, src_ptr, n, ints, floats, seed, (tpos, ipos, tneg, ineg, tiny)) -> 16-tuple */
static PyObject *py_metrics(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
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
    if (!PyArg_ParseTuple(args[6], "dpdpd", &l.tpos, &l.ipos, &l.tneg, &l.ineg, &l.tiny)) return NULL;
    /* saturating (or integer) formats whose non-zero values all lie in [2^-40, 2^60) */
    l.q_in_range = (p.is_int || p.sat) && p.maxv < 0x1p60 && p.v1 >= 0x1p-40;
    sums t;
    Py_BEGIN_ALLOW_THREADS
    run_metrics(kind, src, n, &p, &l, &t);
    Py_END_ALLOW_THREADS
    return Py_BuildValue("(ddddddddLLLLLLLLd)", t.abs_sum, t.abs_max, t.sq_err, t.xx, t.qq, t.xq,
                         t.rel_sum, t.rel_max, (long long)t.nan, (long long)t.inf,
                         (long long)t.count, (long long)t.rel_count, (long long)t.nonfinite,
                         (long long)t.underflow, (long long)t.subnormal, (long long)t.overflow,
                         t.xmax);
}

/* ---- sequential dot products in a format: s = Q(s + a[i] * b[i]) with one rounding ----
 * The product of two values of a format of up to 26 significant bits is exact in float64.
 * The sum is made exact by TwoSum, then rounded to odd: a float64 rounded to odd and then
 * to a format of 51 bits or fewer rounds exactly like the exact sum would (Boldo-Melquiond). */
static inline double add_round_to_odd(double a, double b) {
    double s = a + b;
    double bb = s - a;
    double err = (a - (s - bb)) + (b - bb);
    if (err == 0 || s != s || s - s != 0) return s;
    uint64_t u;
    memcpy(&u, &s, 8);
    /* truncate toward zero: step back one ulp when the error points the other way */
    if ((err > 0) != (s > 0)) u -= 1;
    u |= 1; /* sticky bit: odd */
    memcpy(&s, &u, 8);
    return s;
}

/* dot_seq(a_ptr, b_ptr, n, ints, floats, seed, mode) mode 0: in the format (a, b already in it);
 * 1: float32 with fused multiply-add; 2: float64 with fused multiply-add. a, b are float64. */
static PyObject *py_dot_seq(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "dot_seq takes 7 arguments");
        return NULL;
    }
    const double *a = PyLong_AsVoidPtr(args[0]);
    const double *b = PyLong_AsVoidPtr(args[1]);
    long long n = PyLong_AsLongLong(args[2]);
    params p;
    if (parse_params(args[3], args[4], args[5], &p) < 0) return NULL;
    long mode = PyLong_AsLong(args[6]);
    if (PyErr_Occurred()) return NULL;
    double s = 0;
    Py_BEGIN_ALLOW_THREADS
    if (mode == 1) {
        float f = 0;
        for (long long i = 0; i < n; i++) f = fmaf((float)a[i], (float)b[i], f);
        s = f;
    } else if (mode == 2) {
        for (long long i = 0; i < n; i++) s = fma(a[i], b[i], s);
    } else {
        int m = (int)p.rounding;
        for (long long i = 0; i < n; i++) {
            double t = add_round_to_odd(s, a[i] * b[i]);
            s = q64(t, &p, m, (uint64_t)i);
        }
    }
    Py_END_ALLOW_THREADS
    return PyFloat_FromDouble(s);
}

/* set_avx2(flag): 0 forces the portable kernels (the tests compare both), 1 allows AVX2 */
static PyObject *py_set_avx2(PyObject *self, PyObject *arg) {
    (void)self;
    int flag = PyObject_IsTrue(arg);
    if (flag < 0) return NULL;
    int old = use_avx2;
    use_avx2 = flag;
    return PyBool_FromLong(old);
}

static PyMethodDef methods[] = {
    {"set_avx2", py_set_avx2, METH_O, "allow (True) or forbid (False) the AVX2 kernels"},
    {"metrics", (PyCFunction)(void (*)(void))py_metrics, METH_FASTCALL, "fused quantize + metrics"},
    {"dot_seq", (PyCFunction)(void (*)(void))py_dot_seq, METH_FASTCALL, "sequential dot product"},
    {"quantize", (PyCFunction)(void (*)(void))py_quantize, METH_FASTCALL, "fused quantize"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_quantize", NULL, -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__quantize(void) { return PyModule_Create(&module); }
