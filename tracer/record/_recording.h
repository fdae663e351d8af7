/* What the two C recorders share: _fastprofile.c (setprofile, 3.10/3.11) and _fastmonitor.c
 * (sys.monitoring, 3.12/3.13). Included by each; every function is static.
 *
 *   CodeTable     code object -> keep, a pointer table in front of the Recording's `codes` dict
 *                 (id(code) -> bool), so that the common case costs no allocation. It holds a
 *                 reference to each code object it names, so no id is reused meanwhile.
 *   now_ns        the clock of time.perf_counter_ns, so that times compare with the Recording's
 *                 start and stop stamps.
 *   record_event  append one (kind, what, t, extra) tuple to the events list.
 */

#ifndef TRACER_RECORDING_H
#define TRACER_RECORDING_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

static inline long long
now_ns(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyTime_t t;
    (void)PyTime_PerfCounterRaw(&t);  /* the raw variant never fails */
    return (long long)t;
#else
    return (long long)_PyTime_GetPerfCounter();
#endif
}

/* -- the code table --------------------------------------------------------------------------------- */

typedef struct {
    PyObject *code;   /* a strong reference, or NULL for an empty slot */
    PyObject *names;  /* a kept code's argument names (a tuple), NULL until one recorder needs them */
    int keep;
} CodeSlot;

typedef struct {
    CodeSlot *slots;
    size_t mask;      /* number of slots - 1; a power of two less one */
    size_t used;
} CodeTable;

static int
table_init(CodeTable *table)
{
    table->slots = PyMem_Calloc(64, sizeof(CodeSlot));
    if (table->slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    table->mask = 63;
    table->used = 0;
    return 0;
}

static void
table_free(CodeTable *table)
{
    if (table->slots == NULL)
        return;
    for (size_t i = 0; i <= table->mask; i++) {
        Py_XDECREF(table->slots[i].code);
        Py_XDECREF(table->slots[i].names);
    }
    PyMem_Free(table->slots);
    table->slots = NULL;
}

static size_t
slot_hash(PyObject *code)
{
    /* Fibonacci hashing of the address; objects are 16-byte aligned, so the low bits say nothing. */
    return (size_t)(((uintptr_t)code >> 4) * (uintptr_t)0x9E3779B97F4A7C15ULL);
}

/* The slot of `code`, or the empty slot where it would go. */
static CodeSlot *
table_find(CodeTable *table, PyObject *code)
{
    size_t i = slot_hash(code) & table->mask;
    while (table->slots[i].code != NULL && table->slots[i].code != code)
        i = (i + 1) & table->mask;
    return &table->slots[i];
}

static int
table_grow(CodeTable *table)
{
    size_t old_size = table->mask + 1, new_size = old_size * 2;
    CodeSlot *old = table->slots, *fresh = PyMem_Calloc(new_size, sizeof(CodeSlot));
    if (fresh == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    table->slots = fresh;
    table->mask = new_size - 1;
    for (size_t i = 0; i < old_size; i++)
        if (old[i].code != NULL)
            *table_find(table, old[i].code) = old[i];
    PyMem_Free(old);
    return 0;
}

static int
table_remember(CodeTable *table, PyObject *code, int keep)
{
    if ((table->used + 1) * 2 > table->mask + 1 && table_grow(table) < 0)
        return -1;
    CodeSlot *slot = table_find(table, code);
    if (slot->code == NULL) {
        Py_INCREF(code);
        slot->code = code;
        table->used++;
    }
    slot->keep = keep;
    return 0;
}

/* What the recording decided about `code`: 1 kept, 0 not, -2 not classified yet, -1 an error.
 * codes.get(id(code)), with the table in front. */
static int
table_known(CodeTable *table, PyObject *codes, PyObject *code)
{
    CodeSlot *slot = table_find(table, code);
    if (slot->code == code)
        return slot->keep;
    PyObject *id = PyLong_FromVoidPtr(code);
    if (id == NULL)
        return -1;
    PyObject *value = PyDict_GetItemWithError(codes, id);  /* borrowed */
    Py_DECREF(id);
    if (value == NULL)
        return PyErr_Occurred() ? -1 : -2;
    int keep = PyObject_IsTrue(value);
    if (keep < 0 || table_remember(table, code, keep) < 0)
        return -1;
    return keep;
}

/* -- events ----------------------------------------------------------------------------------------- */

static int
record_event(PyObject *events, PyObject *kind, PyObject *what, long long t, PyObject *extra)
{
    PyObject *stamp = PyLong_FromLongLong(t);
    if (stamp == NULL)
        return -1;
    PyObject *event = PyTuple_New(4);
    if (event == NULL) {
        Py_DECREF(stamp);
        return -1;
    }
    Py_INCREF(kind);
    Py_INCREF(what);
    Py_INCREF(extra);
    PyTuple_SET_ITEM(event, 0, kind);
    PyTuple_SET_ITEM(event, 1, what);
    PyTuple_SET_ITEM(event, 2, stamp);
    PyTuple_SET_ITEM(event, 3, extra);
    /* An event holds ints, strings, code objects (not tracked by the collector) and tuples of strings:
     * it can be in no reference cycle, so the collector need not walk the (millions of) events; as
     * CPython's own _PyTuple_MaybeUntrack would find at the first collection, at a cost each time. */
    PyObject_GC_UnTrack(event);
    int rc = PyList_Append(events, event);
    Py_DECREF(event);
    return rc;
}

/* -- argument summaries ------------------------------------------------------------------------------ */

static PyObject *str_name;  /* "__name__", set by each module's init */

/* summary.summarise(value), without calling Python for the common types:
 *   fast      summary._fast_by_type (or NULL): type -> a str (every value's summary), a dict (the shared
 *             {value: summary} its summariser fills: ints, bools, None, short strings) or (name,) for
 *             "name[len]" (the built-in containers). Each entry comes from the type's own summariser, so
 *             the text is the one it would give.
 *   by_type   summary._by_type (or NULL): type -> its summariser, called (an Exception from it gives the
 *             type's __name__, as summarise does);
 *   summarise summary.summarise, for a type seen for the first time (it fills both dicts). */
static PyObject *
summarise_value(PyObject *summarise, PyObject *by_type, PyObject *fast, PyObject *value)
{
    PyObject *kind = (PyObject *)Py_TYPE(value);
    if (fast != NULL) {
        PyObject *how = PyDict_GetItemWithError(fast, kind);  /* borrowed */
        if (how != NULL) {
            if (PyUnicode_CheckExact(how))
                return Py_NewRef(how);
            if (PyDict_CheckExact(how)) {  /* keyed by ints, strs, bools, None: hashing runs no Python */
                PyObject *text = PyDict_GetItemWithError(how, value);
                if (text != NULL)
                    return Py_NewRef(text);
                if (PyErr_Occurred())
                    return NULL;
                /* a value not seen yet: its summariser makes the text and shares it */
            }
            else if (PyTuple_CheckExact(how) && PyTuple_GET_SIZE(how) == 1 &&
                     PyUnicode_Check(PyTuple_GET_ITEM(how, 0))) {
                Py_ssize_t n = PyObject_Length(value);  /* a built-in container's: cannot fail */
                if (n < 0)
                    return NULL;
                return PyUnicode_FromFormat("%U[%zd]", PyTuple_GET_ITEM(how, 0), n);
            }
        }
        else if (PyErr_Occurred())
            return NULL;
    }
    if (by_type != NULL) {
        PyObject *fn = PyDict_GetItemWithError(by_type, kind);  /* borrowed */
        if (fn != NULL) {
            Py_INCREF(fn);
            PyObject *text = PyObject_CallOneArg(fn, value);
            Py_DECREF(fn);
            if (text != NULL || !PyErr_ExceptionMatches(PyExc_Exception))
                return text;
            PyErr_Clear();  /* a property that raised: the type's name, as summarise gives */
            return PyObject_GetAttr(kind, str_name);
        }
        if (PyErr_Occurred())
            return NULL;
    }
    return PyObject_CallOneArg(summarise, value);
}

/* The argument names of a kept code object, from its table slot (arg_names(code) on first need): a
 * borrowed tuple, or NULL with an error set. The slot may move while arg_names runs Python code. */
static PyObject *
table_arg_names(CodeTable *table, PyObject *code, PyObject *arg_names)
{
    CodeSlot *slot = table_find(table, code);
    if (slot->code != code) {  /* not possible after classification, but cheap to guard */
        if (table_remember(table, code, 1) < 0)
            return NULL;
        slot = table_find(table, code);
    }
    if (slot->names == NULL) {
        PyObject *names = PyObject_CallOneArg(arg_names, code);
        if (names == NULL)
            return NULL;
        if (!PyTuple_Check(names)) {
            PyErr_Format(PyExc_TypeError, "arg_names must return a tuple, not %.100s", Py_TYPE(names)->tp_name);
            Py_DECREF(names);
            return NULL;
        }
        slot = table_find(table, code);  /* arg_names ran Python code: the table may have grown */
        if (slot->names == NULL)
            slot->names = names;
        else
            Py_DECREF(names);
    }
    return slot->names;
}

/* One of the event kinds, from tracer.record.events' namespace. */
static PyObject *
lookup_constant(PyObject *constants, const char *name)
{
    PyObject *value = PyMapping_GetItemString(constants, name);
    if (value == NULL && PyErr_ExceptionMatches(PyExc_KeyError)) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "constants: no %s (pass tracer.record.events' namespace)", name);
    }
    return value;
}

#endif
