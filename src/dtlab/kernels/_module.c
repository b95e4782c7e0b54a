/* dtlab.kernels._quantize: the module, its functions, and the layout of the records it reads
 * and returns. The names it exports come from the lists in _kernel.h; dtlab.kernels.native
 * compares them with its own before it uses the module. */
#include "_kernel.h"

int use_avx2 = 1;

#define COUNT(...) +1
enum { N_INTS = 0 PARAM_INTS(COUNT), N_FLOATS = 0 PARAM_FLOATS(COUNT) };

int parse_params(PyObject *ip, PyObject *fp, PyObject *seed, params *p) {
    if (PyErr_Occurred()) return -1;
    if (!PyTuple_Check(ip) || PyTuple_GET_SIZE(ip) != N_INTS || !PyTuple_Check(fp) ||
        PyTuple_GET_SIZE(fp) != N_FLOATS) {
        PyErr_Format(PyExc_TypeError, "parameter tuples of %d ints and %d floats expected",
                     (int)N_INTS, (int)N_FLOATS);
        return -1;
    }
#define ADDRESS(c, py) &p->c,
    int64_t *ints[N_INTS] = {PARAM_INTS(ADDRESS)};
    double *flts[N_FLOATS] = {PARAM_FLOATS(ADDRESS)};
#undef ADDRESS
    for (int i = 0; i < N_INTS; i++) *ints[i] = PyLong_AsLongLong(PyTuple_GET_ITEM(ip, i));
    for (int i = 0; i < N_FLOATS; i++) *flts[i] = PyFloat_AsDouble(PyTuple_GET_ITEM(fp, i));
    p->seed = PyLong_AsUnsignedLongLongMask(seed);
    p->offset = 0;
    if (PyErr_Occurred()) return -1;
    if (p->rounding < 0 || p->rounding >= N_ROUNDING_MODES) {
        PyErr_SetString(PyExc_ValueError, "bad rounding mode");
        return -1;
    }
    return 0;
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
    {"ggml_quantize", (PyCFunction)(void (*)(void))py_ggml_quantize, METH_FASTCALL,
     "GGML q8_0/q4_0/q4_1/q5_0/q5_1 blocks"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_quantize", NULL, -1, methods,
                                    NULL, NULL, NULL, NULL};

/* module.NAME = a tuple of the n strings in names; -1 on failure */
static int add_names(PyObject *m, const char *name, const char *const *names, Py_ssize_t n) {
    PyObject *t = PyTuple_New(n);
    if (t == NULL) return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *s = PyUnicode_FromString(names[i]);
        if (s == NULL) {
            Py_DECREF(t);
            return -1;
        }
        PyTuple_SET_ITEM(t, i, s);
    }
    int rc = PyModule_AddObjectRef(m, name, t);
    Py_DECREF(t);
    return rc;
}

#define PY_NAME(c, py) #py,
#define PY_NAME3(c, py, unit) #py,
#define C_NAME(c) #c,
static const char *const rounding_names[] = {ROUNDING_MODES(PY_NAME)};
static const char *const low_region_names[] = {LOW_REGIONS(PY_NAME)};
static const char *const dot_names[] = {DOT_ACCUMULATIONS(PY_NAME)};
static const char *const int_names[] = {PARAM_INTS(PY_NAME)};
static const char *const float_names[] = {PARAM_FLOATS(PY_NAME)};
static const char *const metric_names[] = {METRIC_SUMS(C_NAME, C_NAME)};
static const char *const limit_names[] = {METRIC_LIMITS(PY_NAME3)};
#define N_OF(a) ((Py_ssize_t)(sizeof(a) / sizeof((a)[0])))

PyMODINIT_FUNC PyInit__quantize(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    /* each tuple in code (or argument) order: index i names code i */
    if (add_names(m, "ROUNDING_MODES", rounding_names, N_OF(rounding_names)) < 0 ||
        add_names(m, "LOW_REGIONS", low_region_names, N_OF(low_region_names)) < 0 ||
        add_names(m, "DOT_ACCUMULATIONS", dot_names, N_OF(dot_names)) < 0 ||
        add_names(m, "PARAM_INT_FIELDS", int_names, N_OF(int_names)) < 0 ||
        add_names(m, "PARAM_FLOAT_FIELDS", float_names, N_OF(float_names)) < 0 ||
        add_names(m, "METRIC_FIELDS", metric_names, N_OF(metric_names)) < 0 ||
        add_names(m, "LIMIT_FIELDS", limit_names, N_OF(limit_names)) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
