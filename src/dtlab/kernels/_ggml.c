/* GGML legacy block quantizers (q8_0, q4_0, q4_1, q5_0, q5_1), step for step as gguf-py's
 * quants.py and ggml-quants.c's quantize_row_*_ref compute them in float32 (the build turns
 * FP contraction off, so x * id + 8.5f rounds twice, as numpy does). The float16 roundings
 * of d and m are left to the caller: this writes d and m as float32 into dm[2 * block] and
 * the codes into their bytes of out. Non-finite scaled values (a block whose 1/d overflows,
 * or NaN/inf input) get code 0: the low byte that x86's float-to-int conversion gives numpy,
 * where C and numpy leave the conversion undefined. */
#include "_kernel.h"

enum { QK = 32 };

/* the code of v truncated when v is in [0, 256) (ints truncate: no truncf call), else 0;
 * then clipped to top, counted in *n */
static inline int code_of(float v, int top, int *n) {
    int q = (v >= 0.0f && v < 256.0f) ? (int)v : 0;
    *n += q > top;
    return q > top ? top : q;
}

static void pack(const int *q, int five, uint8_t *qh, uint8_t *qs) {
    uint32_t h = 0;
    for (int j = 0; j < QK / 2; j++) qs[j] = (uint8_t)((q[j] & 0x0F) | ((q[j + 16] & 0x0F) << 4));
    if (!five) return;
    for (int j = 0; j < QK; j++) h |= (uint32_t)((q[j] >> 4) & 1) << j;
    for (int k = 0; k < 4; k++) qh[k] = (uint8_t)(h >> (8 * k));
}

/* one block; returns the clipped count. kind: 0 q8_0, 1 q4_0, 2 q4_1, 3 q5_0, 4 q5_1 */
static long long block(const float *x, int kind, uint8_t *out, float *dm) {
    int q[QK];
    if (kind == 0) {
        float amax = 0.0f;
        for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127, id = d != 0.0f ? 1.0f / d : 0.0f;
        dm[0] = d;
        int n = 0;
        for (int j = 0; j < QK; j++) {
            /* halves away from zero, exactly (C roundf, gguf-py np_roundf) for |v| < 256 */
            float v = x[j] * id, a = fabsf(v);
            int w = a < 256.0f ? (int)a : 0; /* NaN and the rest: code 0 */
            w += (a - (float)w >= 0.5f) & (a < 256.0f);
            n += w > 127;
            w = w > 127 ? 127 : w;
            out[2 + j] = (uint8_t)(int8_t)(v < 0.0f ? -w : w);
        }
        return n;
    }
    int levels = (kind <= 2) ? 8 : 16, top = 2 * levels - 1, five = kind >= 3, n = 0;
    /* d (2 bytes), m (2, q4_1 and q5_1), qh (4, q5_0 and q5_1), qs (16) */
    uint8_t *qh = out + (kind == 4 ? 4 : 2), *qs = out + 2 * kind;
    if (kind == 1 || kind == 3) { /* max: the first value of largest magnitude, sign kept */
        float amax = fabsf(x[0]), max = x[0];
        for (int j = 1; j < QK; j++)
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        float d = max / (float)-levels, id = d != 0.0f ? 1.0f / d : 0.0f;
        dm[0] = d;
        for (int j = 0; j < QK; j++) q[j] = code_of(x[j] * id + ((float)levels + 0.5f), top, &n);
    } else { /* min and max, the first of equal values (ggml's strict comparisons) */
        float min = x[0], max = x[0];
        for (int j = 1; j < QK; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        float d = (max - min) / (float)top, id = d != 0.0f ? 1.0f / d : 0.0f;
        dm[0] = d;
        dm[1] = min;
        for (int j = 0; j < QK; j++) q[j] = code_of((x[j] - min) * id + 0.5f, top, &n);
    }
    pack(q, five, qh, qs);
    return n;
}

/* ggml_quantize(x_ptr, out_ptr, dm_ptr, n_blocks, kind, type_size) -> clipped codes */
PyObject *py_ggml_quantize(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "ggml_quantize takes 6 arguments");
        return NULL;
    }
    const float *x = PyLong_AsVoidPtr(args[0]);
    uint8_t *out = PyLong_AsVoidPtr(args[1]);
    float *dm = PyLong_AsVoidPtr(args[2]);
    long long n = PyLong_AsLongLong(args[3]);
    long kind = PyLong_AsLong(args[4]);
    long ts = PyLong_AsLong(args[5]);
    if (PyErr_Occurred()) return NULL;
    if (kind < 0 || kind > 4 || ts < 18) {
        PyErr_SetString(PyExc_ValueError, "bad GGML type");
        return NULL;
    }
    long long clipped = 0;
    Py_BEGIN_ALLOW_THREADS
#pragma omp parallel for reduction(+ : clipped) schedule(static)
    for (long long b = 0; b < n; b++) clipped += block(x + b * QK, (int)kind, out + b * ts, dm + 2 * b);
    Py_END_ALLOW_THREADS
    return PyLong_FromLongLong(clipped);
}
