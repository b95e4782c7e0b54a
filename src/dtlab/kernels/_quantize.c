/* dtlab fused quantize kernel: one pass over memory, branch-free, OpenMP (see _kernel.h). */
#include "_kernel.h"


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
 * comparisons, same results; the portable versions serve CPUs without AVX2. The kernels
 * themselves (lq_float, lq_pow2, lq_int) are in _kernel.h: the metrics inline them too. */

/* their constants as vectors, built once per call */
AVX2 lean_avx2 lean_avx2_of(const params *p) {
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

/* quantize(kind, src_ptr, dst_ptr, n, ints, floats, seed), the parameter tuples in PARAM_INTS
 * and PARAM_FLOATS order; kind 32: float32 lanes (the format fits a float32), 64: float64. */
PyObject *py_quantize(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
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

int lean_kind_of(const params *p) {
    return p->rounding != RNE ? 0
         : (!p->is_int && p->low_region == LOW_NONE && p->is_signed) ? 1
         : (!p->is_int && p->low_region == LOW_V1_ONLY && p->man_bits == 0 && !p->is_signed) ? 2
         : (p->is_int && !p->wrap) ? 3 : 0;
}

void run_quantize(long kind, const void *src, void *dst, int64_t n, const params *pp) {
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

