/* What the two C recorders share: _fastprofile.c (setprofile, 3.10/3.11) and _fastmonitor.c
 * (sys.monitoring, 3.12/3.13). Included by each; every function is static.
 *
 *   CodeTable     code object -> keep, a pointer table in front of the Recording's `codes` dict
 *                 (id(code) -> bool), so that the common case costs no allocation. It holds a
 *                 reference to each code object it names, so no id is reused meanwhile.
 *   now_ns        the clock of time.perf_counter_ns, so that times compare with the Recording's
 *                 start and stop stamps.
 *   record_event  append one (kind, what, t, extra) tuple to the events list.
 *   ExitGuard     Trace.__exit__, which takes the hooks off even when an interrupt cuts it short;
 *   EnterGuard    Trace.__enter__, which leaves none on if an interrupt lands after they went on.
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

/* -- a block's end that an interrupt cannot cut short ----------------------------------------------------- */

/* ExitGuard(stop, finish) is Trace.__exit__: a method that calls stop(trace, exc_type) and, should that raise
 * (a KeyboardInterrupt that lands anywhere in it, even on its very first line, where Python code cannot
 * catch it), calls it again: stop is idempotent, so the second call takes off whatever hook the first left.
 * Then finish(trace, exc_type, exc, tb) builds the tree, and the first error, if any, is raised again.
 * Written in C because the first line of any Python __exit__ is itself a place where a pending signal raises. */

typedef struct {
    PyObject_HEAD
    PyObject *stop, *finish;
} ExitGuard;

static PyObject *
ExitGuard_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *stop, *finish;
    if (!PyArg_ParseTuple(args, "OO:ExitGuard", &stop, &finish))
        return NULL;
    ExitGuard *self = (ExitGuard *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    Py_INCREF(stop);
    self->stop = stop;
    Py_INCREF(finish);
    self->finish = finish;
    return (PyObject *)self;
}

static void
ExitGuard_dealloc(ExitGuard *self)
{
    Py_CLEAR(self->stop);
    Py_CLEAR(self->finish);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
ExitGuard_get(PyObject *self, PyObject *obj, PyObject *type)
{
    if (obj == NULL || obj == Py_None) {
        Py_INCREF(self);
        return self;
    }
    return PyMethod_New(self, obj);
}

static PyObject *
ExitGuard_call(ExitGuard *self, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) != 4 || (kwds != NULL && PyDict_GET_SIZE(kwds))) {
        PyErr_SetString(PyExc_TypeError, "__exit__ takes the trace, exc_type, exc and tb");
        return NULL;
    }
    PyObject *trace = PyTuple_GET_ITEM(args, 0), *exc_type = PyTuple_GET_ITEM(args, 1);
    PyObject *type = NULL, *value = NULL, *tb = NULL;
    PyObject *done = PyObject_CallFunctionObjArgs(self->stop, trace, exc_type, NULL);
    if (done == NULL) {
        PyErr_Fetch(&type, &value, &tb);
        done = PyObject_CallFunctionObjArgs(self->stop, trace, exc_type, NULL);  /* finishes what was cut short */
        if (done == NULL)
            PyErr_Clear();  /* the first error is the one to report */
    }
    Py_XDECREF(done);
    PyObject *result = PyObject_Call(self->finish, args, NULL);
    if (type != NULL) {
        Py_XDECREF(result);
        PyErr_Restore(type, value, tb);
        return NULL;
    }
    return result;
}

static PyTypeObject ExitGuard_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tracer.record.ExitGuard",
    .tp_basicsize = sizeof(ExitGuard),
    .tp_dealloc = (destructor)ExitGuard_dealloc,
    .tp_call = (ternaryfunc)ExitGuard_call,
    .tp_descr_get = ExitGuard_get,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "ExitGuard(stop, finish): an __exit__ that calls stop(self, exc_type) again if an interrupt cut it "
              "short, then finish(self, exc_type, exc, tb).",
    .tp_new = ExitGuard_new,
};

/* EnterGuard(start, undo) is Trace.__enter__: start(trace) installs the hooks, its last step; should it raise
 * (an interrupt that lands in the Python frames that return after the hook went on, which the hook itself
 * runs code for), undo(trace, error) takes them off again before the error goes on. It returns the trace to
 * the `with` statement from C, so no Python frame runs between the hook going on and __exit__ being armed. */

typedef struct {
    PyObject_HEAD
    PyObject *start, *undo;
} EnterGuard;

static PyObject *
EnterGuard_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *start, *undo;
    if (!PyArg_ParseTuple(args, "OO:EnterGuard", &start, &undo))
        return NULL;
    EnterGuard *self = (EnterGuard *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    Py_INCREF(start);
    self->start = start;
    Py_INCREF(undo);
    self->undo = undo;
    return (PyObject *)self;
}

static void
EnterGuard_dealloc(EnterGuard *self)
{
    Py_CLEAR(self->start);
    Py_CLEAR(self->undo);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
EnterGuard_call(EnterGuard *self, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) != 1 || (kwds != NULL && PyDict_GET_SIZE(kwds))) {
        PyErr_SetString(PyExc_TypeError, "__enter__ takes the trace alone");
        return NULL;
    }
    PyObject *trace = PyTuple_GET_ITEM(args, 0);
    PyObject *started = PyObject_CallOneArg(self->start, trace);
    if (started == NULL) {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        PyObject *undone = PyObject_CallFunctionObjArgs(self->undo, trace, value ? value : Py_None, NULL);
        if (undone == NULL)
            PyErr_Clear();  /* the first error is the one to report */
        Py_XDECREF(undone);
        PyErr_Restore(type, value, tb);
        return NULL;
    }
    Py_DECREF(started);
    Py_INCREF(trace);
    return trace;
}

static PyTypeObject EnterGuard_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tracer.record.EnterGuard",
    .tp_basicsize = sizeof(EnterGuard),
    .tp_dealloc = (destructor)EnterGuard_dealloc,
    .tp_call = (ternaryfunc)EnterGuard_call,
    .tp_descr_get = ExitGuard_get,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "EnterGuard(start, undo): an __enter__ that calls start(self), undo(self, error) if that raised, "
              "and returns self.",
    .tp_new = EnterGuard_new,
};

/* Add ExitGuard and EnterGuard to a module: 0, or -1 with an error set. */
static int
add_exit_guard(PyObject *module)
{
    PyTypeObject *types[] = {&ExitGuard_Type, &EnterGuard_Type};
    const char *names[] = {"ExitGuard", "EnterGuard"};
    for (int i = 0; i < 2; i++) {
        if (PyType_Ready(types[i]) < 0)
            return -1;
        Py_INCREF(types[i]);
        if (PyModule_AddObject(module, names[i], (PyObject *)types[i]) < 0) {
            Py_DECREF(types[i]);
            return -1;
        }
    }
    return 0;
}

#endif