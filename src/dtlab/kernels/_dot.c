/* dtlab sequential dot products (see _kernel.h) */
#include "_kernel.h"

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

/* dot_seq(a_ptr, b_ptr, n, ints, floats, seed, mode), a and b float64, mode one of
 * DOT_ACCUMULATIONS: DOT_FORMAT in the format (a, b already in it), DOT_FLOAT32_FMA float32
 * with fused multiply-add, DOT_FLOAT64_FMA float64 with fused multiply-add. */
PyObject *py_dot_seq(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
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
    if (mode < 0 || mode >= N_DOT_ACCUMULATIONS) {
        PyErr_SetString(PyExc_ValueError, "bad accumulation");
        return NULL;
    }
    double s = 0;
    Py_BEGIN_ALLOW_THREADS
    if (mode == DOT_FLOAT32_FMA) {
        float f = 0;
        for (long long i = 0; i < n; i++) f = fmaf((float)a[i], (float)b[i], f);
        s = f;
    } else if (mode == DOT_FLOAT64_FMA) {
        for (long long i = 0; i < n; i++) s = fma(a[i], b[i], s);
    } else {
        int m = (int)p.rounding;
        for (long long i = 0; i < n; i++) {
            double t = add_round_to_odd(s, a[i] * b[i]);
            s = q64(t, &p, m, (uint64_t)i);
        }
        if (n == 0) s = q64(s, &p, m, 0); /* the empty sum: Q(0), a value of the format too */
    }
    Py_END_ALLOW_THREADS
    return PyFloat_FromDouble(s);
}

