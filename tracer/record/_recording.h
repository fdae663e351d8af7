/* What the two C recorders share: _fastprofile.c (setprofile, 3.10/3.11) and _fastmonitor.c
 * (sys.monitoring, 3.12/3.13). Included by each; every function is static.
 *
 *   CodeTable     code object -> keep, a pointer table in front of the Recording's `codes` dict
 *                 (id(code) -> bool), so that the common case costs no allocation. It holds a
 *                 reference to each code object it names, so no id is reused meanwhile.
 *   now_ns        the clock of time.perf_counter_ns, so that times compare with the Recording's
 *                 start and stop stamps: read from the TSC where that is the kernel's clock too.
 *   EventLog      the events, (kind, what, t, extra) each, as C structs; record_event pushes one.
 *   CallBase      model.Call's fields: what the calls of one function share as one tuple (its site),
 *                 start_ns, duration_ns and depth as C integers, children a list made when first read
 *                 where the build left none, the summaries as the recorder's array until first read.
 *   ExitGuard     Trace.__exit__, which takes the hooks off even when an interrupt cuts it short;
 *   EnterGuard    Trace.__enter__, which leaves none on if an interrupt lands after they went on.
 */

#ifndef TRACER_RECORDING_H
#define TRACER_RECORDING_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include "_arenas.h"

/* The clock of time.perf_counter_ns (CLOCK_MONOTONIC). */
static inline long long
perf_ns(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyTime_t t;
    (void)PyTime_PerfCounterRaw(&t);  /* the raw variant never fails */
    return (long long)t;
#else
    return (long long)_PyTime_GetPerfCounter();
#endif
}

/* Where the kernel's own clock is the time-stamp counter (Linux says so in current_clocksource), events
 * are stamped from the TSC directly: perf_ns goes through the vDSO at about 25 ns a read, a third of what
 * a C tracer spends on an event; rdtsc takes a few. calibrate_clock() measures the counter's rate against
 * perf_ns over the time since the module loaded and anchors it at the recording's start, so that a stamp
 * is perf_ns's time to within that rate's error over the block (a few parts in ten million once the
 * module has been loaded a second). Until 50 ms have passed, and wherever there is no TSC, perf_ns is used. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <x86intrin.h>
#define TRACER_TSC 1
#endif

static int tsc_on;
#ifdef TRACER_TSC
static double tsc_ns_per_tick;
static long long tsc_anchor_ns, tsc_origin_ns;
static unsigned long long tsc_anchor_ticks, tsc_origin_ticks;

/* A (ticks, ns) pair read as close together as three tries allow. */
static void
tsc_pair(unsigned long long *ticks, long long *ns)
{
    unsigned long long best = (unsigned long long)-1;
    for (int i = 0; i < 3; i++) {
        unsigned long long t1 = __rdtsc();
        long long t = perf_ns();
        unsigned long long t2 = __rdtsc();
        if (t2 - t1 < best) {
            best = t2 - t1;
            *ticks = t1 + (t2 - t1) / 2;
            *ns = t;
        }
    }
}
#endif

static inline long long
now_ns(void)
{
#ifdef TRACER_TSC
    if (tsc_on)
        return tsc_anchor_ns + (long long)((double)(long long)(__rdtsc() - tsc_anchor_ticks) * tsc_ns_per_tick);
#endif
    return perf_ns();
}

/* The origin of the rate's measurement: at module load. */
static void
clock_origin(void)
{
#ifdef TRACER_TSC
    tsc_pair(&tsc_origin_ticks, &tsc_origin_ns);
#endif
}

/* calibrate_clock(tsc) -> "tsc" or "perf_counter": the clock the next events are stamped with. tsc: whether
 * the counter may be used (the kernel's clocksource is the TSC). */
static PyObject *
calibrate_clock(PyObject *module, PyObject *allowed)
{
    int want = PyObject_IsTrue(allowed);
    if (want < 0)
        return NULL;
    tsc_on = 0;
#ifdef TRACER_TSC
    if (want) {
        unsigned long long ticks = 0;
        long long ns = 0;
        tsc_pair(&ticks, &ns);
        if (ns - tsc_origin_ns >= 50000000 && ticks > tsc_origin_ticks) {
            double rate = (double)(ns - tsc_origin_ns) / (double)(ticks - tsc_origin_ticks);
            if (rate > 0.01 && rate < 100.0) {  /* 10 MHz to 100 GHz: anything else is not a usable counter */
                tsc_ns_per_tick = rate;
                tsc_anchor_ticks = ticks;
                tsc_anchor_ns = ns;
                tsc_on = 1;
            }
        }
    }
#endif
    return PyUnicode_FromString(tsc_on ? "tsc" : "perf_counter");
}

#define CALIBRATE_CLOCK_METHOD \
    {"calibrate_clock", calibrate_clock, METH_O, \
     "calibrate_clock(tsc) -> 'tsc' or 'perf_counter': measure the time-stamp counter's rate and anchor it now " \
     "(tsc: the kernel's clocksource is the TSC), else stamp with perf_counter_ns."}

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

/* -- events: the EventLog -------------------------------------------------------------------------- */

/* The raw event stream, (kind, what, time_ns, extra) per event (tracer.record.events), kept as C structs:
 * 32 bytes an event, where a list of 4-tuples took a tuple, an int and a list slot (112 bytes), two
 * allocations counted by the garbage collector and a page of fresh memory every 36 events. The C
 * recorders push into it; Python code (the aten layer, the Python callbacks, the worker streams) appends
 * 4-tuples and reads it as a sequence of them, made on demand: len, log[i], log[i:j] (a list), iteration,
 * `del log[:n]` and clear(). An event holds a strong reference to its `what` and its `extra`.
 *
 * A call's argument summaries, where a C recorder reads them, are kept as a plain array (`args`, `nargs`
 * of them) and made into the tuple the event stands for only when read: a tuple is an object the garbage
 * collector counts, and one a call would set off a collection of the traced program's young objects every
 * 700 calls (a few ms on three DataLoader epochs). Recording then allocates no object the collector
 * counts, and the program's collections come when they would untraced. */

typedef struct {
    PyObject *what;
    union {
        PyObject *extra;   /* nargs < 0 */
        PyObject **args;   /* nargs >= 0: that many summaries (strong), a PyMem block */
    };
    long long t;
    int kind;
    int nargs;
} Event;

typedef struct {
    PyObject_HEAD
    Event *items;
    Py_ssize_t n, cap;
    Py_ssize_t ready;  /* n <= ready <= cap: items below `ready` are made present (see log_make_room) */
} EventLog;

static PyTypeObject EventLog_Type;

#define LOG_SIZE(log) (((EventLog *)(log))->n)

/* The events a populated window holds: 256 KiB. */
enum { LOG_WINDOW = (256 * 1024) / sizeof(Event) };

/* The spare: the array of an emptied log, kept for the next log to start in (with the GIL held: every
 * caller holds it). Memory new from the system costs a page fault, or a populate, for each of its pages
 * when first written: 1.5-2 us a page where measured (a VM), and a torch-free recording of 161,280 events
 * writes 5 MiB, 1,250 pages. A recording that starts in the spare writes into pages that are present
 * already, as viztracer's buffer, made once, is for each of its runs. Kept: the largest array emptied, up
 * to LOG_SPARE_BYTES; release_memory() (in _slab.h) frees it. */
enum { LOG_SPARE_BYTES = 16 * 1024 * 1024 };
static Event *log_spare;
static Py_ssize_t log_spare_cap, log_spare_ready;

/* An emptied log's array (cap events, the first `ready` present) to the spare, or freed. */
static void
log_spare_keep(Event *items, Py_ssize_t cap, Py_ssize_t ready)
{
    if (items == NULL)
        return;
    if ((size_t)cap * sizeof(Event) > LOG_SPARE_BYTES || cap <= log_spare_cap) {
        PyMem_RawFree(items);
        return;
    }
    PyMem_RawFree(log_spare);
    log_spare = items;
    log_spare_cap = cap;
    log_spare_ready = ready;
}

/* The spare taken out (NULL where there is none), with its capacity and how much of it is present. */
static Event *
log_spare_take(Py_ssize_t *cap, Py_ssize_t *ready)
{
    Event *items = log_spare;
    *cap = log_spare_cap;
    *ready = log_spare_ready;
    log_spare = NULL;
    log_spare_cap = log_spare_ready = 0;
    return items;
}

/* The spare's bytes, freed: how many. */
static size_t
log_spare_release(void)
{
    Py_ssize_t cap, ready;
    PyMem_RawFree(log_spare_take(&cap, &ready));
    return (size_t)cap * sizeof(Event);
}

/* Room for the next event, where n has reached `ready`: the array doubles where it is full, and the next
 * window of it (LOG_WINDOW events, or up to its end) is made present in one call (arenas_populate). The
 * torch-free benchmark's 161,280 events are 5 MiB: without this, a page fault every 128 events while the
 * program runs, where the memory is new from the system (as it is after a large tree was freed: the C
 * library gives it back). A window, not the whole array: a doubled array's second half may never be used.
 * 0, or -1 with an error set. */
static int
log_make_room(EventLog *log)
{
    if (log->cap == 0 && log_spare != NULL) {  /* a new log starts in the spare, present as far as it was */
        log->items = log_spare_take(&log->cap, &log->ready);
        if (log->n < log->ready)
            return 0;
    }
    if (log->n == log->cap) {
        Py_ssize_t cap = log->cap ? log->cap * 2 : 4096;
        if ((size_t)cap > PY_SSIZE_T_MAX / sizeof(Event)) {
            PyErr_NoMemory();
            return -1;
        }
        Event *items = PyMem_RawRealloc(log->items, (size_t)cap * sizeof(Event));
        if (items == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        log->items = items;
        log->cap = cap;
    }
    Py_ssize_t ready = log->cap - log->n > LOG_WINDOW ? log->n + LOG_WINDOW : log->cap;
    arenas_populate(log->items + log->n, (size_t)(ready - log->n) * sizeof(Event));
    log->ready = ready;
    return 0;
}

static inline int
log_push(EventLog *log, long kind, PyObject *what, long long t, PyObject *extra)
{
    if (log->n == log->ready && log_make_room(log) < 0)
        return -1;
    Event *e = &log->items[log->n++];
    e->what = Py_NewRef(what);
    e->extra = Py_NewRef(extra);
    e->t = t;
    e->kind = (int)kind;
    e->nargs = -1;
    return 0;
}

/* An array for `n` summaries (log_push_args takes it), or NULL with an error set. Inline: the 3.10 recorder
 * reads no fast locals and makes none. */
static inline PyObject **
args_new(Py_ssize_t n)
{
    PyObject **args = PyMem_Malloc((size_t)(n > 0 ? n : 1) * sizeof(PyObject *));
    if (args == NULL)
        PyErr_NoMemory();
    return args;
}

/* Release the first `filled` summaries of an array, and the array. */
static void
args_free(PyObject **args, Py_ssize_t filled)
{
    for (Py_ssize_t i = 0; i < filled; i++)
        Py_DECREF(args[i]);
    PyMem_Free(args);
}

/* A call's event with its `n` summaries in `args`: the log owns the array from here, even on failure. */
static int
log_push_args(EventLog *log, long kind, PyObject *what, long long t, PyObject **args, Py_ssize_t n)
{
    if (n > INT_MAX || (log->n == log->ready && log_make_room(log) < 0)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_OverflowError, "too many arguments to keep");
        args_free(args, n);
        return -1;
    }
    Event *e = &log->items[log->n++];
    e->what = Py_NewRef(what);
    e->args = args;
    e->t = t;
    e->kind = (int)kind;
    e->nargs = (int)n;
    return 0;
}

/* What an event's extra reads as: itself, or the tuple of its summaries (a new reference either way). */
static PyObject *
event_extra(Event *e)
{
    if (e->nargs < 0)
        return Py_NewRef(e->extra);
    PyObject *out = PyTuple_New(e->nargs);
    if (out == NULL)
        return NULL;
    for (int i = 0; i < e->nargs; i++)
        PyTuple_SET_ITEM(out, i, Py_NewRef(e->args[i]));
    return out;
}

static inline void
event_release(Event *e)
{
    Py_DECREF(e->what);
    if (e->nargs < 0)
        Py_DECREF(e->extra);
    else
        args_free(e->args, e->nargs);
}

/* record_event: the C recorders' one way in; `kind` is one of tracer.record.events' kinds. */
static int
record_event(PyObject *events, long kind, PyObject *what, long long t, PyObject *extra)
{
    return log_push((EventLog *)events, kind, what, t, extra);
}

static PyObject *
log_event_tuple(Event *e)
{
    PyObject *kind = PyLong_FromLong(e->kind), *t = PyLong_FromLongLong(e->t), *extra = event_extra(e);
    if (kind == NULL || t == NULL || extra == NULL) {
        Py_XDECREF(kind);
        Py_XDECREF(t);
        Py_XDECREF(extra);
        return NULL;
    }
    PyObject *event = PyTuple_New(4);
    if (event == NULL) {
        Py_DECREF(kind);
        Py_DECREF(t);
        Py_DECREF(extra);
        return NULL;
    }
    PyTuple_SET_ITEM(event, 0, kind);
    PyTuple_SET_ITEM(event, 1, Py_NewRef(e->what));
    PyTuple_SET_ITEM(event, 2, t);
    PyTuple_SET_ITEM(event, 3, extra);
    return event;
}

static PyObject *
EventLog_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) || (kwds != NULL && PyDict_GET_SIZE(kwds))) {
        PyErr_SetString(PyExc_TypeError, "EventLog() takes no arguments: append events to it");
        return NULL;
    }
    return type->tp_alloc(type, 0);
}

/* Drop events [0, n): their references go, the rest move to the front. */
static void
log_drop_front(EventLog *log, Py_ssize_t n)
{
    if (n <= 0)
        return;
    if (n >= log->n) {  /* all of them: the array itself is taken out, then released */
        Event *items = log->items;
        Py_ssize_t count = log->n, cap = log->cap, ready = log->ready;
        log->items = NULL;
        log->n = log->cap = log->ready = 0;
        for (Py_ssize_t i = 0; i < count; i++)
            event_release(&items[i]);
        log_spare_keep(items, cap, ready);
        return;
    }
    Event *dropped = PyMem_RawMalloc((size_t)n * sizeof(Event));
    if (dropped == NULL) {  /* drop one at a time, in place: slow but needs no memory */
        for (Py_ssize_t i = 0; i < n; i++) {
            Event e = log->items[0];
            memmove(log->items, log->items + 1, (size_t)(log->n - 1) * sizeof(Event));
            log->n--;
            event_release(&e);
        }
        return;
    }
    /* unlink first, then release: a finaliser that runs meanwhile sees a consistent log */
    memcpy(dropped, log->items, (size_t)n * sizeof(Event));
    memmove(log->items, log->items + n, (size_t)(log->n - n) * sizeof(Event));
    log->n -= n;
    for (Py_ssize_t i = 0; i < n; i++)
        event_release(&dropped[i]);
    PyMem_RawFree(dropped);
}

static int
EventLog_clear(EventLog *log)
{
    log_drop_front(log, log->n);
    return 0;
}

static int
EventLog_traverse(EventLog *log, visitproc visit, void *arg)
{
    for (Py_ssize_t i = 0; i < log->n; i++) {
        Event *e = &log->items[i];
        Py_VISIT(e->what);
        if (e->nargs < 0)
            Py_VISIT(e->extra);
        else
            for (int k = 0; k < e->nargs; k++)
                Py_VISIT(e->args[k]);
    }
    return 0;
}

static void
EventLog_dealloc(EventLog *log)
{
    PyObject_GC_UnTrack(log);
    EventLog_clear(log);
    Py_TYPE(log)->tp_free((PyObject *)log);
}

static Py_ssize_t
EventLog_length(EventLog *log)
{
    return log->n;
}

static PyObject *
EventLog_item(EventLog *log, Py_ssize_t i)
{
    if (i < 0 || i >= log->n) {
        PyErr_SetString(PyExc_IndexError, "event index out of range");
        return NULL;
    }
    return log_event_tuple(&log->items[i]);
}

static PyObject *
EventLog_subscript(EventLog *log, PyObject *key)
{
    if (PyIndex_Check(key)) {
        Py_ssize_t i = PyNumber_AsSsize_t(key, PyExc_IndexError);
        if (i == -1 && PyErr_Occurred())
            return NULL;
        if (i < 0)
            i += log->n;
        return EventLog_item(log, i);
    }
    if (PySlice_Check(key)) {
        Py_ssize_t start, stop, step;
        if (PySlice_Unpack(key, &start, &stop, &step) < 0)
            return NULL;
        Py_ssize_t count = PySlice_AdjustIndices(log->n, &start, &stop, step);
        PyObject *out = PyList_New(count);
        if (out == NULL)
            return NULL;
        for (Py_ssize_t k = 0, i = start; k < count; k++, i += step) {
            PyObject *event = log_event_tuple(&log->items[i]);
            if (event == NULL) {
                Py_DECREF(out);
                return NULL;
            }
            PyList_SET_ITEM(out, k, event);
        }
        return out;
    }
    return PyErr_Format(PyExc_TypeError, "event indices must be integers or slices, not %.100s", Py_TYPE(key)->tp_name);
}

static int
EventLog_ass_subscript(EventLog *log, PyObject *key, PyObject *value)
{
    Py_ssize_t start, stop, step;
    if (value != NULL || !PySlice_Check(key) || PySlice_Unpack(key, &start, &stop, &step) < 0 ||
            (PySlice_AdjustIndices(log->n, &start, &stop, step), start != 0 || step != 1)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "an EventLog only appends, and deletes from its front: del log[:n]");
        return -1;
    }
    log_drop_front(log, stop);
    return 0;
}

static PyObject *
EventLog_append(EventLog *log, PyObject *event)
{
    if (!PyTuple_Check(event) || PyTuple_GET_SIZE(event) != 4) {
        PyErr_SetString(PyExc_TypeError, "an event is a (kind, what, time_ns, extra) tuple");
        return NULL;
    }
    long kind = PyLong_AsLong(PyTuple_GET_ITEM(event, 0));
    if (kind == -1 && PyErr_Occurred())
        return NULL;
    long long t = PyLong_AsLongLong(PyTuple_GET_ITEM(event, 2));
    if (t == -1 && PyErr_Occurred())
        return NULL;
    if (log_push(log, kind, PyTuple_GET_ITEM(event, 1), t, PyTuple_GET_ITEM(event, 3)) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
EventLog_clear_method(EventLog *log, PyObject *unused)
{
    EventLog_clear(log);
    Py_RETURN_NONE;
}

static PyObject *
EventLog_sizeof(EventLog *log, PyObject *unused)
{
    return PyLong_FromSsize_t((Py_ssize_t)sizeof(EventLog) + log->cap * (Py_ssize_t)sizeof(Event));
}

static PyMethodDef EventLog_methods[] = {
    {"append", (PyCFunction)EventLog_append, METH_O, "append((kind, what, time_ns, extra)): one event at the end"},
    {"clear", (PyCFunction)EventLog_clear_method, METH_NOARGS, "clear(): drop every event"},
    {"__sizeof__", (PyCFunction)EventLog_sizeof, METH_NOARGS, NULL},
    {NULL},
};

static PySequenceMethods EventLog_as_sequence = {
    .sq_length = (lenfunc)EventLog_length,
    .sq_item = (ssizeargfunc)EventLog_item,
};

static PyMappingMethods EventLog_as_mapping = {
    .mp_length = (lenfunc)EventLog_length,
    .mp_subscript = (binaryfunc)EventLog_subscript,
    .mp_ass_subscript = (objobjargproc)EventLog_ass_subscript,
};

static PyTypeObject EventLog_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tracer.record.EventLog",
    .tp_basicsize = sizeof(EventLog),
    .tp_dealloc = (destructor)EventLog_dealloc,
    .tp_as_sequence = &EventLog_as_sequence,
    .tp_as_mapping = &EventLog_as_mapping,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "EventLog(): a recording's events, (kind, what, time_ns, extra) each, kept in C; "
              "append, len, [i], [i:j], iteration, del [:n], clear().",
    .tp_traverse = (traverseproc)EventLog_traverse,
    .tp_clear = (inquiry)EventLog_clear,
    .tp_methods = EventLog_methods,
    .tp_new = EventLog_new,
};

/* -- argument summaries ------------------------------------------------------------------------------ */

static PyObject *str_name;  /* "__name__", set by each module's init */

/* -- tensors: the summary by (dtype, shape, device, requires_grad, type), read each call ---------------- */

/* An attribute of a tensor read through its getset descriptor's getter, as PyObject_GetAttr would
 * (a getset is a data descriptor: no instance __dict__ comes first) without the generic lookup. */
static PyObject *
tensor_attr(PyObject *obj, PyObject *name)
{
    if (Py_TYPE(obj)->tp_getattro == PyObject_GenericGetAttr) {
        PyObject *descr = _PyType_Lookup(Py_TYPE(obj), name);  /* borrowed, from the type's cache */
        if (descr != NULL && Py_IS_TYPE(descr, &PyGetSetDescr_Type)) {
            PyGetSetDef *gs = ((PyGetSetDescrObject *)descr)->d_getset;
            if (gs->get != NULL)
                return gs->get(obj, gs->closure);
        }
    }
    return PyObject_GetAttr(obj, name);
}

enum { TENSOR_DIMS = 8, TENSOR_SLOTS = 1024 };

/* One remembered summary; direct-mapped by the hash of its key (a collision replaces the entry). The
 * key is read from the tensor at every call: only the text is remembered, never the tensor. */
typedef struct {
    PyObject *text;    /* NULL for an empty entry */
    PyObject *dtype, *type, *device;  /* device NULL for a CPU tensor */
    Py_hash_t hash;
    int requires_grad, ndim;
    Py_ssize_t dims[TENSOR_DIMS];
} TensorEntry;

static TensorEntry tensor_entries[TENSOR_SLOTS];
static PyObject *str_dtype, *str_shape, *str_device, *str_requires_grad, *str_is_cpu;

static int
tensor_names_init(void)
{
    if (str_dtype != NULL)
        return 0;
    str_dtype = PyUnicode_InternFromString("dtype");
    str_shape = PyUnicode_InternFromString("shape");
    str_device = PyUnicode_InternFromString("device");
    str_requires_grad = PyUnicode_InternFromString("requires_grad");
    str_is_cpu = PyUnicode_InternFromString("is_cpu");
    return (str_dtype && str_shape && str_device && str_requires_grad && str_is_cpu) ? 0 : -1;
}

/* The summary of a plain Tensor or Parameter: `make(value)` (summary._tensor) for a key not seen yet, or
 * wherever reading the key is not plain (a symbolic shape, more than TENSOR_DIMS dimensions, an error). */
static PyObject *
summarise_tensor(PyObject *value, PyObject *make)
{
    PyObject *dtype = NULL, *shape = NULL, *is_cpu = NULL, *grad = NULL, *device = NULL, *text = NULL;
    Py_ssize_t dims[TENSOR_DIMS];
    if (tensor_names_init() < 0)
        return NULL;
    if ((dtype = tensor_attr(value, str_dtype)) == NULL || (shape = tensor_attr(value, str_shape)) == NULL ||
            (is_cpu = tensor_attr(value, str_is_cpu)) == NULL || (grad = tensor_attr(value, str_requires_grad)) == NULL)
        goto slow;
    if (!PyTuple_Check(shape) || PyTuple_GET_SIZE(shape) > TENSOR_DIMS || !PyBool_Check(grad) || !PyBool_Check(is_cpu))
        goto slow;
    int ndim = (int)PyTuple_GET_SIZE(shape), requires_grad = grad == Py_True;
    Py_uhash_t h = (Py_uhash_t)(uintptr_t)dtype * 31u + (Py_uhash_t)(uintptr_t)Py_TYPE(value);
    h = h * 1000003u + (Py_uhash_t)requires_grad * 7u + (Py_uhash_t)ndim;
    for (int i = 0; i < ndim; i++) {
        PyObject *dim = PyTuple_GET_ITEM(shape, i);
        if (!PyLong_CheckExact(dim))
            goto slow;
        dims[i] = PyLong_AsSsize_t(dim);
        if (dims[i] == -1 && PyErr_Occurred())
            goto slow;
        h = h * 1000003u ^ (Py_uhash_t)dims[i];
    }
    if (is_cpu != Py_True) {
        if ((device = tensor_attr(value, str_device)) == NULL)
            goto slow;
        Py_hash_t dh = PyObject_Hash(device);
        if (dh == -1)
            goto slow;
        h = h * 1000003u ^ (Py_uhash_t)dh;
    }
    TensorEntry *e = &tensor_entries[(h ^ (h >> 17)) & (TENSOR_SLOTS - 1)];
    if (e->text != NULL && e->hash == (Py_hash_t)h && e->dtype == dtype && e->type == (PyObject *)Py_TYPE(value) &&
            e->requires_grad == requires_grad && e->ndim == ndim &&
            memcmp(e->dims, dims, sizeof(Py_ssize_t) * ndim) == 0 && (e->device == NULL) == (device == NULL)) {
        int same = device == NULL ? 1 : PyObject_RichCompareBool(e->device, device, Py_EQ);
        if (same < 0)
            goto slow;
        if (same) {
            text = Py_NewRef(e->text);
            goto done;
        }
    }
    text = PyObject_CallOneArg(make, value);
    if (text == NULL || !PyUnicode_Check(text))
        goto done;
    /* remember it: the entry's old references go, the new key's are taken */
    Py_XDECREF(e->text);
    Py_XDECREF(e->dtype);
    Py_XDECREF(e->type);
    Py_XDECREF(e->device);
    e->text = Py_NewRef(text);
    e->dtype = Py_NewRef(dtype);
    e->type = Py_NewRef((PyObject *)Py_TYPE(value));
    e->device = Py_XNewRef(device);
    e->hash = (Py_hash_t)h;
    e->requires_grad = requires_grad;
    e->ndim = ndim;
    memcpy(e->dims, dims, sizeof(Py_ssize_t) * ndim);
    goto done;
slow:
    if (PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_Exception))
            goto done;
        PyErr_Clear();
    }
    text = PyObject_CallOneArg(make, value);  /* it handles a tensor whose attributes raise */
done:
    Py_XDECREF(dtype);
    Py_XDECREF(shape);
    Py_XDECREF(is_cpu);
    Py_XDECREF(grad);
    Py_XDECREF(device);
    return text;
}

/* "name[n]" for a built-in container; the short ones made once (formatting costs more than the rest). */
enum { SIZED_KINDS = 5, SIZED_SHORT = 32 };
static PyObject *sized_texts[SIZED_KINDS][SIZED_SHORT];

static PyObject *
sized_text(PyTypeObject *type, PyObject *name, Py_ssize_t n)
{
    int kind = type == &PyList_Type ? 0 : type == &PyTuple_Type ? 1 : type == &PyDict_Type ? 2 :
               type == &PySet_Type ? 3 : type == &PyFrozenSet_Type ? 4 : -1;
    if (kind < 0 || n >= SIZED_SHORT)
        return PyUnicode_FromFormat("%U[%zd]", name, n);
    PyObject **slot = &sized_texts[kind][n];
    if (*slot == NULL && (*slot = PyUnicode_FromFormat("%U[%zd]", name, n)) == NULL)
        return NULL;
    return Py_NewRef(*slot);
}

/* What `fast` says of a type, remembered in front of the dict: direct-mapped by the type, each entry good
 * while the dict's version tag is the one it was read at (any change to the dict gives it a new tag). The
 * entries hold references to the type and the answer, as the dict does. Borrowed, or NULL (not there, or an
 * error set). */
enum { TYPE_SLOTS = 256 };

typedef struct {
    PyObject *type;  /* NULL for an empty entry */
    PyObject *how;
    uint64_t version;
} TypeEntry;

static TypeEntry type_entries[TYPE_SLOTS];

#if PY_VERSION_HEX < 0x030E0000  /* the tag is there through 3.13 (deprecated from 3.12, not yet gone) */
#define FAST_BY_TYPE_CACHE 1
static inline uint64_t
dict_version(PyObject *dict)
{
    _Py_COMP_DIAG_PUSH
    _Py_COMP_DIAG_IGNORE_DEPR_DECLS
    return ((PyDictObject *)dict)->ma_version_tag;
    _Py_COMP_DIAG_POP
}
#endif

static PyObject *
fast_how(PyObject *fast, PyObject *type)
{
#ifdef FAST_BY_TYPE_CACHE
    uint64_t version = dict_version(fast);
    TypeEntry *e = &type_entries[((uintptr_t)type >> 4) & (TYPE_SLOTS - 1)];
    if (e->type == type && e->version == version)
        return e->how;
    PyObject *how = PyDict_GetItemWithError(fast, type);  /* borrowed */
    if (how == NULL || !PyDict_CheckExact(fast) || dict_version(fast) != version)
        return how;  /* a key whose comparison ran code that changed the dict: not remembered */
    PyObject *old_type = e->type, *old_how = e->how;
    e->type = Py_NewRef(type);
    e->how = Py_NewRef(how);
    e->version = version;
    Py_XDECREF(old_type);
    Py_XDECREF(old_how);
    return how;
#else
    return PyDict_GetItemWithError(fast, type);
#endif
}

/* The texts of ints that fit in a long, remembered by value in front of their shared dict: a dict lookup
 * of an int that is not the very object filed (most ints are made anew) compares the two by calling
 * int's comparison, a fifth of the instructions the summaries cost on the torch-free benchmark (3.12,
 * counted by benchmarks/instructions.py). Direct-mapped, a collision replaces the entry; each entry holds
 * a reference to its text. The entries are good for the one dict they were read from (`int_texts_of`,
 * referenced so that its address is not reused): the int summariser's, whose text for a value is always
 * the value's repr. A new value's text is made here and kept in the table only, not filed in the dict too:
 * the dict holds what the summariser filed (the Python callbacks' texts), read where the table misses. */
enum { INT_TEXT_BITS = 12, INT_TEXT_SLOTS = 1 << INT_TEXT_BITS };

typedef struct {
    long value;
    PyObject *text;  /* NULL for an empty entry */
} IntTextEntry;

static IntTextEntry int_texts[INT_TEXT_SLOTS];
static PyObject *int_texts_of;

/* repr(v) for an int that fits in a long: its decimal digits, written here (int's own repr goes through
 * its general conversion, several times slower). A new reference, or NULL with an error set. */
static PyObject *
int_repr_small(long v)
{
    char digits[24], *p = digits + sizeof digits;
    unsigned long u = v < 0 ? 0UL - (unsigned long)v : (unsigned long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    Py_ssize_t n = digits + sizeof digits - p;
    PyObject *text = PyUnicode_New(n, 127);
    if (text != NULL)
        memcpy(PyUnicode_1BYTE_DATA(text), p, (size_t)n);
    return text;
}

/* The entry for exact int `value` read from `texts`, or NULL where the value does not fit in a long. An
 * entry of another dict's is emptied first. */
static IntTextEntry *
int_text_entry(PyObject *texts, PyObject *value)
{
    int overflow;
    long v = PyLong_AsLongAndOverflow(value, &overflow);  /* an exact int: cannot fail */
    if (overflow)
        return NULL;
    if (texts != int_texts_of) {
        for (int i = 0; i < INT_TEXT_SLOTS; i++)
            Py_CLEAR(int_texts[i].text);
        Py_XSETREF(int_texts_of, Py_NewRef(texts));
    }
    uint64_t h = (uint64_t)v * 0x9E3779B97F4A7C15ULL;
    IntTextEntry *e = &int_texts[h >> (64 - INT_TEXT_BITS)];  /* the product's top bits */
    if (e->text != NULL && e->value != v)
        Py_CLEAR(e->text);  /* a str: its release runs no code */
    e->value = v;
    return e;
}

/* summary.summarise(value), without calling Python for the common types:
 *   fast      summary._fast_by_type (or NULL): type -> a str (every value's summary), a dict (the shared
 *             {value: summary} its summariser fills: bools, None, short strings), (texts, limit) for ints
 *             (that dict, and a new value's text is its repr, filed while the dict holds fewer than limit),
 *             (name,) for "name[len]" (the built-in containers) or (None, summary._tensor) for a plain
 *             tensor (see summarise_tensor). Each entry comes from the type's own summariser, so the text is
 *             the one it would give.
 *   by_type   summary._by_type (or NULL): type -> its summariser, called (an Exception from it gives the
 *             type's __name__, as summarise does);
 *   summarise summary.summarise, for a type seen for the first time (it fills both dicts). */
static PyObject *
summarise_value(PyObject *summarise, PyObject *by_type, PyObject *fast, PyObject *value)
{
    PyObject *kind = (PyObject *)Py_TYPE(value);
    if (fast != NULL) {
        PyObject *how = fast_how(fast, kind);  /* borrowed */
        if (how != NULL) {
            if (PyUnicode_CheckExact(how))
                return Py_NewRef(how);
            /* a dict of shared texts, keyed by ints, strs, bools, None (hashing runs no Python), or (texts,
             * limit) for ints */
            PyObject *texts = NULL, *limit_of = NULL;
            if (PyDict_CheckExact(how))
                texts = how;
            else if (PyTuple_CheckExact(how) && PyTuple_GET_SIZE(how) == 2 &&
                     PyDict_CheckExact(PyTuple_GET_ITEM(how, 0))) {
                texts = PyTuple_GET_ITEM(how, 0);
                limit_of = PyTuple_GET_ITEM(how, 1);
            }
            if (texts != NULL) {
                IntTextEntry *entry = NULL;
                if (limit_of != NULL && PyLong_CheckExact(value) && (entry = int_text_entry(texts, value)) != NULL &&
                        entry->text != NULL)
                    return Py_NewRef(entry->text);
                PyObject *text = PyDict_GetItemWithError(texts, value);
                if (text != NULL) {
                    if (entry != NULL)
                        entry->text = Py_NewRef(text);
                    return Py_NewRef(text);
                }
                if (PyErr_Occurred())
                    return NULL;
                if (entry != NULL) {
                    /* a new int that fits in a long: its repr, kept in the table only; filing it in the dict
                     * as well cost as much as the rest of its summary (most such ints are seen once) */
                    if ((entry->text = int_repr_small(entry->value)) == NULL)
                        return NULL;
                    return Py_NewRef(entry->text);
                }
                /* a value not seen yet: its summariser makes the text and shares it; an int past a long's
                 * range is its repr, made and filed here as the summariser files it, which itself empties a
                 * full dict (and handles an int too long to write out) */
                Py_ssize_t limit = limit_of == NULL ? 0 : PyLong_AsSsize_t(limit_of);
                if (limit == -1 && PyErr_Occurred())
                    return NULL;
                if (PyLong_CheckExact(value) && PyDict_GET_SIZE(texts) < limit) {
                    if ((text = PyObject_Repr(value)) != NULL) {
                        if (PyDict_SetItem(texts, value, text) == 0)
                            return text;
                        Py_DECREF(text);
                        return NULL;
                    }
                    if (!PyErr_ExceptionMatches(PyExc_Exception))
                        return NULL;
                    PyErr_Clear();
                }
            }
            else if (PyTuple_CheckExact(how) && PyTuple_GET_SIZE(how) == 2 && PyTuple_GET_ITEM(how, 0) == Py_None)
                return summarise_tensor(value, PyTuple_GET_ITEM(how, 1));  /* (None, summary._tensor) */
            else if (PyTuple_CheckExact(how) && PyTuple_GET_SIZE(how) == 1 &&
                     PyUnicode_Check(PyTuple_GET_ITEM(how, 0))) {
                Py_ssize_t n = PyObject_Length(value);  /* a built-in container's: cannot fail */
                if (n < 0)
                    return NULL;
                return sized_text(Py_TYPE(value), PyTuple_GET_ITEM(how, 0), n);
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

/* summarise_values(values, summarise, by_type, fast) -> a tuple of summarise_value of each: the aten
 * layer's positional arguments. */
static PyObject *
summarise_values(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyTuple_Check(args[0]) || !PyDict_Check(args[2]) || !PyDict_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "summarise_values(values: tuple, summarise, by_type: dict, fast: dict)");
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(args[0]);
    PyObject *out = PyTuple_New(n);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *text = summarise_value(args[1], args[2], args[3], PyTuple_GET_ITEM(args[0], i));
        if (text == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(out, i, text);
    }
    return out;
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

/* -- builtin keys: builtin_key(func) remembered in C ------------------------------------------------- */

/* The builtin layer asks builtin_key(func) (Recording.builtin_key, a Python method) at every C call and
 * return of the included code: tens of thousands of Python calls a second. Its answer depends on the C
 * function (its PyMethodDef) and its owner: the module or type it is bound to, or else the type of the
 * instance (as Recording.builtin_key caches it: by (type, name), or by the function itself). This
 * direct-mapped cache keeps that answer by (PyMethodDef, owner); a collision replaces the entry. It holds
 * a reference to each owner, so no address is reused while it is kept. */

enum { BUILTIN_SLOTS = 1024 };

typedef struct {
    void *ml;          /* the PyMethodDef; NULL for an empty slot */
    PyObject *owner;   /* strong */
    PyObject *key;     /* strong: builtin_key's answer, a (module, name) tuple or None */
} BuiltinSlot;

typedef struct {
    BuiltinSlot *slots;  /* NULL until first used */
} BuiltinCache;

/* What an owner is filed under: a module or a type as itself, an instance as its type. */
static PyObject *
builtin_owner(PyObject *bound_to)
{
    if (bound_to == NULL)
        return Py_None;
    if (PyModule_Check(bound_to) || PyType_Check(bound_to))
        return bound_to;
    return (PyObject *)Py_TYPE(bound_to);
}

static BuiltinSlot *
builtin_slot(BuiltinCache *cache, void *ml, PyObject *owner)
{
    uintptr_t h = ((uintptr_t)ml >> 3) * (uintptr_t)0x9E3779B97F4A7C15ULL ^ ((uintptr_t)owner >> 4);
    return &cache->slots[(h ^ (h >> 29)) & (BUILTIN_SLOTS - 1)];
}

/* The answer remembered for C function `ml` bound to `bound_to` (NULL: none): borrowed, or NULL if none is. */
static PyObject *
builtin_key_known(BuiltinCache *cache, void *ml, PyObject *bound_to)
{
    if (cache->slots == NULL)
        return NULL;
    PyObject *owner = builtin_owner(bound_to);
    BuiltinSlot *slot = builtin_slot(cache, ml, owner);
    return slot->ml == ml && slot->owner == owner ? slot->key : NULL;
}

/* builtin_key(func) for C function `ml` bound to `bound_to` (NULL: none), asking `ckey(func)` on a miss. */
static PyObject *
builtin_key_cached(BuiltinCache *cache, PyObject *ckey, void *ml, PyObject *bound_to, PyObject *func)
{
    PyObject *known = builtin_key_known(cache, ml, bound_to);
    if (known != NULL)
        return Py_NewRef(known);
    if (cache->slots == NULL && (cache->slots = PyMem_Calloc(BUILTIN_SLOTS, sizeof(BuiltinSlot))) == NULL)
        return PyErr_NoMemory();
    PyObject *key = PyObject_CallOneArg(ckey, func);
    if (key == NULL)
        return NULL;
    PyObject *owner = builtin_owner(bound_to);
    BuiltinSlot *slot = builtin_slot(cache, ml, owner);  /* after ckey: Python code ran, the slot may have changed */
    PyObject *old_owner = slot->owner, *old_key = slot->key;
    slot->ml = ml;
    slot->owner = Py_NewRef(owner);
    slot->key = Py_NewRef(key);
    Py_XDECREF(old_owner);
    Py_XDECREF(old_key);
    return key;
}

static int
builtin_cache_traverse(BuiltinCache *cache, visitproc visit, void *arg)
{
    if (cache->slots != NULL)
        for (int i = 0; i < BUILTIN_SLOTS; i++)
            Py_VISIT(cache->slots[i].owner);
    return 0;
}

static void
builtin_cache_clear(BuiltinCache *cache)
{
    BuiltinSlot *slots = cache->slots;
    cache->slots = NULL;
    if (slots == NULL)
        return;
    for (int i = 0; i < BUILTIN_SLOTS; i++) {
        Py_XDECREF(slots[i].owner);
        Py_XDECREF(slots[i].key);
    }
    PyMem_Free(slots);
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

/* -- CallBase: the fields of a Call kept in C ------------------------------------------------------ */

/* model.Call derives from it and adds nothing: every field of a call is here. What a call shares with every
 * other call of the same function (name, module, relpath, line, file, kind and the parameter names) is one
 * tuple, its *site*, made once per function by the build; setting one of those fields gives the call a site
 * of its own (copy on write). Start, duration and depth are C integers; a call without children gets its
 * list when `children` is first read (and keeps it, so `call.children.append(c)` works on any call); the
 * argument summaries stay the recorder's array until `_args` is first read. The build so makes one object
 * of 128 bytes per call, cut from a chunk of _slab.h's. */

enum { SITE_NAME, SITE_MODULE, SITE_RELPATH, SITE_LINE, SITE_FILE, SITE_KIND, SITE_NAMES, SITE_SIZE };
static const char *site_fields[SITE_SIZE] = {"name", "module", "relpath", "line", "file", "kind", "_arg_names"};

enum { CALL_ARGV = 1,       /* the union holds argv (argc summaries), not args */
       CALL_ARGS_MADE = 2,  /* `args` is final (a dict, or what was set): the site's names no longer apply */
       CALL_SLAB = 4        /* made by the build in a chunk of _slab.h, where its memory goes back */ };

typedef struct {
    PyObject_HEAD
    PyObject *children;  /* NULL until a child is added or the list is read */
    long long start_ns, duration_ns;
    int depth;
    int argc;            /* how many summaries argv holds */
    union {
        PyObject *args;  /* `_args`: what was set, or the tuple made from argv when first read */
        PyObject **argv; /* the summaries as the recorder kept them (strong), a PyMem block */
    };
    PyObject *site;      /* the 7-tuple of site_fields, NULL until set */
    PyObject *parent, *error, *pinned_url, *batch;  /* NULL reads as None */
    char open, resumed;
    unsigned char flags;
} CallBase;

/* The children list of a call, made where it has none yet: borrowed, or NULL with an error set. */
static PyObject *
call_children(PyObject *call)
{
    CallBase *c = (CallBase *)call;
    if (c->children == NULL && (c->children = PyList_New(0)) == NULL)
        return NULL;
    return c->children;
}

static PyObject *
CallBase_get_children(CallBase *self, void *closure)
{
    return Py_XNewRef(call_children((PyObject *)self));
}

static int
CallBase_set_children(CallBase *self, PyObject *value, void *closure)
{
    Py_XSETREF(self->children, Py_XNewRef(value));  /* deleting leaves a new empty list for the next read */
    return 0;
}

/* The summaries pass to the call: from the event (the build's consume=True) or copied (refs taken). */
static void
call_take_argv(CallBase *c, PyObject **argv, int argc)
{
    c->argv = argv;
    c->argc = argc;
    c->flags |= CALL_ARGV;
}

/* The call's summaries become `value` (a new reference taken; NULL: none), the old ones released after:
 * their release may run code. */
static void
call_replace_args(CallBase *c, PyObject *value)
{
    PyObject *old = NULL, **argv = NULL;
    int argc = 0;
    if (c->flags & CALL_ARGV) {
        argv = c->argv;
        argc = c->argc;
        c->argc = 0;
        c->flags &= ~CALL_ARGV;
    }
    else
        old = c->args;
    c->args = Py_XNewRef(value);
    Py_XDECREF(old);
    if (argv != NULL)
        args_free(argv, argc);
}

static PyObject *
CallBase_get_args(CallBase *self, void *closure)
{
    if (self->flags & CALL_ARGV) {
        PyObject *tuple = PyTuple_New(self->argc);
        if (tuple == NULL)
            return NULL;
        for (int i = 0; i < self->argc; i++)
            PyTuple_SET_ITEM(tuple, i, self->argv[i]);  /* the references pass to the tuple */
        PyMem_Free(self->argv);
        self->argc = 0;
        self->flags &= ~CALL_ARGV;
        PyObject_GC_UnTrack(tuple);  /* strings and None only: in no cycle */
        self->args = tuple;
    }
    if (self->args == NULL) {
        PyErr_SetString(PyExc_AttributeError, "'Call' object has no attribute '_args'");
        return NULL;
    }
    return Py_NewRef(self->args);
}

static int
CallBase_set_args(CallBase *self, PyObject *value, void *closure)
{
    call_replace_args(self, value);
    return 0;
}

/* A site field: name, module, relpath, line, file, kind (closure: its index). */
static PyObject *
CallBase_get_site_field(CallBase *self, void *closure)
{
    int i = (int)(intptr_t)closure;
    if (self->site == NULL)
        return PyErr_Format(PyExc_AttributeError, "'Call' object has no attribute '%s'", site_fields[i]);
    return Py_NewRef(PyTuple_GET_ITEM(self->site, i));
}

/* Give the call a site of its own with field i set to value (None where it had no site). */
static int
call_set_site_field(CallBase *self, int i, PyObject *value)
{
    if (self->site != NULL && PyTuple_GET_ITEM(self->site, i) == value)
        return 0;
    PyObject *site = PyTuple_New(SITE_SIZE);
    if (site == NULL)
        return -1;
    for (int k = 0; k < SITE_SIZE; k++) {
        PyObject *item = k == i ? value : self->site != NULL ? PyTuple_GET_ITEM(self->site, k) :
                         k == SITE_NAMES ? NULL : Py_None;
        if (item == NULL) {  /* no names yet: an empty tuple */
            if ((item = PyTuple_New(0)) == NULL) {
                Py_DECREF(site);
                return -1;
            }
            PyTuple_SET_ITEM(site, k, item);
        }
        else
            PyTuple_SET_ITEM(site, k, Py_NewRef(item));
    }
    Py_XSETREF(self->site, site);
    return 0;
}

static int
CallBase_set_site_field(CallBase *self, PyObject *value, void *closure)
{
    return call_set_site_field(self, (int)(intptr_t)closure, value == NULL ? Py_None : value);
}

/* `_arg_names`: the names the summaries in `_args` go with (the site's), or None once `args` is final. */
static PyObject *
CallBase_get_arg_names(CallBase *self, void *closure)
{
    if (self->flags & CALL_ARGS_MADE)
        Py_RETURN_NONE;
    return CallBase_get_site_field(self, (void *)(intptr_t)SITE_NAMES);
}

static int
CallBase_set_arg_names(CallBase *self, PyObject *value, void *closure)
{
    if (value == NULL || value == Py_None) {
        self->flags |= CALL_ARGS_MADE;
        return 0;
    }
    if (call_set_site_field(self, SITE_NAMES, value) < 0)
        return -1;
    self->flags &= ~CALL_ARGS_MADE;
    return 0;
}

static PyObject *
CallBase_get_site(CallBase *self, void *closure)
{
    if (self->site == NULL) {
        PyErr_SetString(PyExc_AttributeError, "'Call' object has no attribute '_site'");
        return NULL;
    }
    return Py_NewRef(self->site);
}

static int
CallBase_set_site(CallBase *self, PyObject *value, void *closure)
{
    if (value == NULL || !PyTuple_CheckExact(value) || PyTuple_GET_SIZE(value) != SITE_SIZE) {
        PyErr_SetString(PyExc_TypeError, "a call's _site is a tuple (name, module, relpath, line, file, kind, "
                                         "parameter names)");
        return -1;
    }
    Py_XSETREF(self->site, Py_NewRef(value));
    return 0;
}

static int
CallBase_traverse(CallBase *self, visitproc visit, void *arg)
{
    Py_VISIT(self->children);
    if (self->flags & CALL_ARGV)
        for (int i = 0; i < self->argc; i++)
            Py_VISIT(self->argv[i]);
    else
        Py_VISIT(self->args);
    Py_VISIT(self->site);
    Py_VISIT(self->parent);
    Py_VISIT(self->error);
    Py_VISIT(self->pinned_url);
    Py_VISIT(self->batch);
    return 0;
}

static int
CallBase_clear(CallBase *self)
{
    Py_CLEAR(self->children);
    call_replace_args(self, NULL);
    Py_CLEAR(self->site);
    Py_CLEAR(self->parent);
    Py_CLEAR(self->error);
    Py_CLEAR(self->pinned_url);
    Py_CLEAR(self->batch);
    return 0;
}

/* _slab.h (included by each module after the interpreter's internal headers) */
static int slab_start(PyTypeObject *type);
static PyObject *slab_alloc(PyTypeObject *type);
static void slab_free(PyObject *op);
static void slab_retire(void);

static void
CallBase_dealloc(CallBase *self)
{
    PyObject_GC_UnTrack(self);
    CallBase_clear(self);
    if (self->flags & CALL_SLAB)
        slab_free((PyObject *)self);
    else
        Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef CallBase_members[] = {
    {"start_ns", T_LONGLONG, offsetof(CallBase, start_ns), 0, "when the call started, in ns of time.perf_counter_ns"},
    {"duration_ns", T_LONGLONG, offsetof(CallBase, duration_ns), 0, "how long it ran, in ns"},
    {"depth", T_INT, offsetof(CallBase, depth), 0, "0 for the root, its parent's depth + 1 below it"},
    {"parent", T_OBJECT, offsetof(CallBase, parent), 0, "the call that made it (None for the root)"},
    {"error", T_OBJECT, offsetof(CallBase, error), 0, "the exception's type name where it raised, else None"},
    {"pinned_url", T_OBJECT, offsetof(CallBase, pinned_url), 0, "a loaded trace's saved link, else None"},
    {"batch", T_OBJECT, offsetof(CallBase, batch), 0, "a DataLoader batch's send index, else None"},
    {"open", T_BOOL, offsetof(CallBase, open), 0, "still running when recording stopped"},
    {"resumed", T_BOOL, offsetof(CallBase, resumed), 0, "a generator or coroutine going on, not a new call"},
    {NULL},
};

static PyGetSetDef CallBase_getset[] = {
    {"children", (getter)CallBase_get_children, (setter)CallBase_set_children,
     "the calls it made, in order (a list)", NULL},
    {"_args", (getter)CallBase_get_args, (setter)CallBase_set_args,
     "the summaries as recorded (a tuple, in the order of _arg_names), or the {name: summary} dict `args` made "
     "of them", NULL},
    {"_arg_names", (getter)CallBase_get_arg_names, (setter)CallBase_set_arg_names,
     "the parameter names _args goes with, None once `args` is a dict", NULL},
    {"_site", (getter)CallBase_get_site, (setter)CallBase_set_site,
     "(name, module, relpath, line, file, kind, parameter names), shared by the calls of one function", NULL},
    {"name", (getter)CallBase_get_site_field, (setter)CallBase_set_site_field, "the function's name",
     (void *)(intptr_t)SITE_NAME},
    {"module", (getter)CallBase_get_site_field, (setter)CallBase_set_site_field, "its module",
     (void *)(intptr_t)SITE_MODULE},
    {"relpath", (getter)CallBase_get_site_field, (setter)CallBase_set_site_field,
     "its file, relative to the installed package's root", (void *)(intptr_t)SITE_RELPATH},
    {"line", (getter)CallBase_get_site_field, (setter)CallBase_set_site_field, "its first line",
     (void *)(intptr_t)SITE_LINE},
    {"file", (getter)CallBase_get_site_field, (setter)CallBase_set_site_field, "its file's path",
     (void *)(intptr_t)SITE_FILE},
    {"kind", (getter)CallBase_get_site_field, (setter)CallBase_set_site_field,
     "python, builtin, aten, block, worker or thread", (void *)(intptr_t)SITE_KIND},
    {NULL},
};

static PyTypeObject CallBase_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tracer.model.CallBase",
    .tp_basicsize = sizeof(CallBase),
    .tp_dealloc = (destructor)CallBase_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The fields of a Call, kept in C: what the calls of one function share is one tuple (_site), "
              "start_ns, duration_ns and depth are integers, children a list made when first read where "
              "the call has none, _args a tuple of the summaries as recorded, made when first read.",
    .tp_traverse = (traverseproc)CallBase_traverse,
    .tp_clear = (inquiry)CallBase_clear,
    .tp_members = CallBase_members,
    .tp_getset = CallBase_getset,
    .tp_new = PyType_GenericNew,
};

/* -- building the call tree ------------------------------------------------------------------------- */

/* build_calls(): model._build_events' loop over the events, which it must match call for call. Calls are
 * made as Call.__new__(Call) makes them (zeroed) and their CallBase fields written directly; a slot a
 * subclass of Call adds is set to None. Each function's site is made once, kept in the info tables. */

enum { MAX_OTHER_SLOTS = 16 };
/* The build asks for the event this many ahead of the one it reads: the log, written while the program ran,
 * is out of the caches by its end (ten load_state_dict of a resnet18 copy 45 MB between the events), and
 * waiting for its loads was the build's largest single cost. The cold build of that workload's 15,260 calls
 * went from 0.94-0.95 ms to 0.88-0.89 ms (fastest of 15, three processes each, alternated); 32 ahead gave
 * no more. */
enum { LOG_PREFETCH = 16 };
/* From this many events on, the tree's calls are cut from _slab.h's chunks and the new arenas it fills are
 * made present as they are made (_arenas.h); a smaller tree (under about 600 KiB) mostly fits in what the
 * allocator already has, and would leave most of its last chunk empty. */
enum { POPULATE_MIN_EVENTS = 10000 };

/* An open call (or marker) on the build's stack: one array of these, where four arrays side by side took
 * four stores to four places and four checks of room a push. */
typedef struct {
    PyObject *entry;    /* the open call, or a marker (hidden, dropped): a strong reference */
    PyObject *key;      /* what it opened with: a strong reference (None for the root) */
    Py_ssize_t depth;   /* its depth */
    Py_ssize_t from;    /* where its children start in `kids` */
} Open;

typedef struct {
    PyTypeObject *type;
    Py_ssize_t other[MAX_OTHER_SLOTS];  /* the slots subclasses of CallBase add: set to None */
    int n_other;
    Open *stack;        /* the open calls, the root first */
    Py_ssize_t n, cap;
    /* The children of the open calls, strong references, each open call's after its parent's: a call's
     * become its list, made to their number, when it closes (builder_flush). Appending each to a growing
     * list cost 6% more of the build's instructions (3.12, torch-free workload) and left lists spare room. */
    PyObject **kids;
    Py_ssize_t n_kids, cap_kids;
    PyObject *hidden, *dropped, *raised, *raised_here, *unwound, *empty;
    int slab;           /* calls are cut from _slab.h's chunks */
} Builder;


static int
builder_push(Builder *b, PyObject *entry, PyObject *key, Py_ssize_t depth)
{
    if (b->n == b->cap) {
        Py_ssize_t cap = b->cap * 2;
        Open *stack = PyMem_Realloc(b->stack, cap * sizeof(Open));
        if (stack == NULL)
            return PyErr_NoMemory(), -1;
        b->stack = stack;
        b->cap = cap;
    }
    Open *top = &b->stack[b->n++];
    top->entry = Py_NewRef(entry);
    top->key = Py_NewRef(key);
    top->depth = depth;
    top->from = b->n_kids;
    return 0;
}

/* A new child of the innermost open call (the reference passes to `kids`): 0, or -1 with an error set. */
static int
builder_add_kid(Builder *b, PyObject *call)
{
    if (b->n_kids == b->cap_kids) {
        Py_ssize_t cap = b->cap_kids ? b->cap_kids * 2 : 256;
        PyObject **kids = PyMem_Realloc(b->kids, cap * sizeof(PyObject *));
        if (kids == NULL) {
            Py_DECREF(call);
            return PyErr_NoMemory(), -1;
        }
        b->kids = kids;
        b->cap_kids = cap;
    }
    b->kids[b->n_kids++] = call;
    return 0;
}

/* Open entry i's children (kids from b->stack[i].from on) become its `children`: a list of their number, or,
 * where the call has a list already (the root, made in Python), appended to it. 0, or -1 with an error set;
 * the children's references leave `kids` either way. */
static int
builder_flush(Builder *b, Py_ssize_t i)
{
    Py_ssize_t from = b->stack[i].from, n = b->n_kids - from;
    if (n <= 0)
        return 0;
    PyObject **items = b->kids + from;
    b->n_kids = from;
    CallBase *call = (CallBase *)b->stack[i].entry;  /* a call: markers have no children */
    int rc = 0;
    if (call->children == NULL) {
        /* an empty list given the array itself, where PyList_New(n) would allocate one zeroed and fill it (the
         * list's layout is the GIL build's: setup.py builds no C module for a free-threaded Python) */
        PyObject *list = PyList_New(0);
        PyObject **array = list == NULL ? NULL : PyMem_Malloc((size_t)n * sizeof(PyObject *));
        if (array != NULL) {
            memcpy(array, items, (size_t)n * sizeof(PyObject *));  /* the references pass to the list */
            ((PyListObject *)list)->ob_item = array;
            ((PyListObject *)list)->allocated = n;
            Py_SET_SIZE(list, n);
            call->children = list;
            return 0;
        }
        if (list != NULL)
            PyErr_NoMemory();
        Py_XDECREF(list);
        rc = -1;
    }
    else if (!PyList_Check(call->children)) {
        PyErr_SetString(PyExc_TypeError, "build_calls: an open call's children are not a list");
        rc = -1;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        if (rc == 0 && PyList_Append(call->children, items[k]) < 0)
            rc = -1;
        Py_DECREF(items[k]);
    }
    return rc;
}

/* The site of a code object, operator or C function (name, module, relpath, line, file, kind, names), made
 * once per key and kept in `table` (in the slot's names; the slot's keep says whether it is plumbing):
 * borrowed, or NULL with an error set. info_of(key) gives a tuple of `size` items, with file, names and
 * plumbing at the positions given (-1: none; no names: an empty tuple); info_of NULL: the key is a C
 * function's (module, name), its site made from that. */
static PyObject *
builder_site(CodeTable *table, PyObject *key, PyObject *info_of, Py_ssize_t size, const char *what,
             PyObject *kind_text, int file_at, int names_at, int plumbing_at, int *plumbing)
{
    CodeSlot *slot = table_find(table, key);
    if (slot->code == key) {
        *plumbing = slot->keep;
        return slot->names;
    }
    PyObject *info;
    if (info_of != NULL)
        info = PyObject_CallOneArg(info_of, key);
    else if (!PyTuple_Check(key) || PyTuple_GET_SIZE(key) != 2) {
        PyErr_SetString(PyExc_TypeError, "build_calls: a C call's key is (module, name)");
        return NULL;
    }
    else
        info = Py_BuildValue("(OOOO)", PyTuple_GET_ITEM(key, 1), PyTuple_GET_ITEM(key, 0), Py_None, Py_None);
    if (info == NULL)
        return NULL;
    if (!PyTuple_Check(info) || PyTuple_GET_SIZE(info) != size) {
        Py_DECREF(info);
        PyErr_Format(PyExc_TypeError, "build_calls: %s must give a %zd-tuple", what, size);
        return NULL;
    }
    int is_plumbing = plumbing_at < 0 ? 0 : PyObject_IsTrue(PyTuple_GET_ITEM(info, plumbing_at));
    PyObject *site = is_plumbing < 0 ? NULL : PyTuple_New(SITE_SIZE);
    if (site != NULL) {
        PyObject *items[SITE_SIZE] = {
            PyTuple_GET_ITEM(info, 0), PyTuple_GET_ITEM(info, 1), PyTuple_GET_ITEM(info, 2),
            PyTuple_GET_ITEM(info, 3), file_at < 0 ? Py_None : PyTuple_GET_ITEM(info, file_at), kind_text,
            names_at < 0 ? NULL : PyTuple_GET_ITEM(info, names_at)};
        for (int k = 0; k < SITE_SIZE; k++)
            PyTuple_SET_ITEM(site, k, items[k] == NULL ? PyTuple_New(0) : Py_NewRef(items[k]));
        if (PyTuple_GET_ITEM(site, SITE_NAMES) == NULL)
            Py_CLEAR(site);
    }
    Py_DECREF(info);
    if (site == NULL)
        return NULL;
    if (table_remember(table, key, is_plumbing) < 0) {
        Py_DECREF(site);
        return NULL;
    }
    table_find(table, key)->names = site;  /* the table owns it now */
    *plumbing = is_plumbing;
    return site;
}

/* A new call under the innermost open one, pushed, at `site`. Its summaries are the `argc` in `argv`, which
 * the call takes (on failure too), or else `args`: a tuple that goes with the site's names, or (final) what
 * `args` reads as. */
static PyObject *
builder_open(Builder *b, PyObject *key, long long t, PyObject *site, PyObject **argv, int argc, PyObject *args,
             int final, int resumed)
{
    PyObject *parent = b->stack[b->n - 1].entry;
    Py_ssize_t depth = b->stack[b->n - 1].depth + 1;
    PyObject *call = NULL;
    if (depth <= INT_MAX)
        call = b->slab ? slab_alloc(b->type) : b->type->tp_alloc(b->type, 0);  /* zeroed: no children yet, duration 0 */
    else
        PyErr_SetString(PyExc_OverflowError, "build_calls: calls nested too deep");
    if (call == NULL) {
        if (argv != NULL)
            args_free(argv, argc);
        return NULL;
    }
    CallBase *fields = (CallBase *)call;
    fields->start_ns = t;
    fields->depth = (int)depth;
    if (argv != NULL)
        call_take_argv(fields, argv, argc);
    else
        fields->args = Py_NewRef(args);
    if (final)
        fields->flags |= CALL_ARGS_MADE;
    fields->site = Py_NewRef(site);
    fields->parent = Py_NewRef(parent);
    fields->resumed = (char)resumed;
    for (int i = 0; i < b->n_other; i++) {
        PyObject **p = (PyObject **)((char *)call + b->other[i]);
        Py_XSETREF(*p, Py_NewRef(Py_None));
    }
    /* the new reference goes to its parent's children, then the stack takes one: its children start after it */
    if (builder_add_kid(b, call) < 0 || builder_push(b, call, key, depth) < 0)
        return NULL;
    return call;  /* borrowed: the stack holds it */
}

static void
builder_finish(PyObject *call, long long t)
{
    CallBase *fields = (CallBase *)call;
    fields->duration_ns = t - fields->start_ns;
}

/* The call raised: remember (index, error) for naming an escaped exception, and set its error. */
static int
builder_raised(Builder *b, PyObject *call, PyObject *error, Py_ssize_t index)
{
    int here = PyObject_RichCompareBool(error, b->raised_here, Py_EQ);
    if (here < 0)
        return -1;
    PyObject *id = PyLong_FromVoidPtr(call);
    PyObject *entry = Py_BuildValue("(nO)", index, error);
    int rc = (id == NULL || entry == NULL) ? -1 : PyDict_SetItem(b->unwound, id, entry);
    Py_XDECREF(id);
    Py_XDECREF(entry);
    if (rc < 0)
        return -1;
    Py_XSETREF(((CallBase *)call)->error, Py_NewRef(here ? b->raised : error));
    return 0;
}

static inline int
is_call(Builder *b, PyObject *entry)
{
    return entry != b->hidden && entry != b->dropped;
}

/* The innermost open entry, taken off the stack (the references pass to the caller), its children made
 * its list: 0, or -1 with an error set (the references are the caller's still). */
static int
builder_pop(Builder *b, PyObject **entry, PyObject **key)
{
    int rc = builder_flush(b, b->n - 1);
    b->n--;
    *entry = b->stack[b->n].entry;
    *key = b->stack[b->n].key;
    return rc;
}

/* A return whose call is not the innermost open one (model._close). */
static int
builder_close(Builder *b, PyObject *key, long long t, PyObject *error, Py_ssize_t index)
{
    Py_ssize_t i = b->n - 1;
    while (i >= 0 && b->stack[i].key != key)
        i--;
    if (i < 0)  /* its call opened before recording started */
        return 0;
    while (b->n > 1) {
        PyObject *entry, *open_key;
        int rc = builder_pop(b, &entry, &open_key), done = open_key == key;
        if (rc == 0 && is_call(b, entry)) {
            builder_finish(entry, t);
            if (done && error != Py_None) {
                int truth = PyObject_IsTrue(error);
                rc = truth < 0 ? -1 : truth ? builder_raised(b, entry, error, index) : 0;
            }
            if (rc == 0 && !done)
                ((CallBase *)entry)->open = 1;
        }
        Py_DECREF(entry);
        Py_DECREF(open_key);
        if (rc < 0)
            return -1;
        if (done)
            return 0;
    }
    return 0;
}

static long
constant_long(PyObject *constants, const char *name)
{
    PyObject *value = lookup_constant(constants, name);
    if (value == NULL)
        return -1;
    long v = PyLong_AsLong(value);
    Py_DECREF(value);
    return v;
}

/* The six event kinds a C recorder stamps (CALL, RETURN, C_CALL, C_RETURN, TRUNCATED, RESUME), read from
 * tracer.record.events' namespace into `kinds`: 0, or -1 with an error set. */
static int
event_kinds(PyObject *constants, long *kinds[6])
{
    static const char *names[6] = {"CALL", "RETURN", "C_CALL", "C_RETURN", "TRUNCATED", "RESUME"};
    for (int i = 0; i < 6; i++)
        if ((*kinds[i] = constant_long(constants, names[i])) == -1 && PyErr_Occurred())
            return -1;
    return 0;
}

static PyObject *
build_calls(PyObject *module, PyObject *args)
{
    PyObject *events, *root, *call_type, *info_of, *aten_info_of, *constants, *hidden, *dropped;
    PyObject *python_text, *builtin_text, *aten_text;
    long depth_limit;
    int consume = 0;
    if (!PyArg_ParseTuple(args, "OOO!OOOlOOUUU|p:build_calls", &events, &root, &PyType_Type,
                          &call_type, &info_of, &aten_info_of, &constants, &depth_limit, &hidden, &dropped,
                          &python_text, &builtin_text, &aten_text, &consume))
        return NULL;
    int from_log = Py_IS_TYPE(events, &EventLog_Type);
    if (!from_log && !PyList_Check(events))
        return PyErr_Format(PyExc_TypeError, "build_calls: the events are an EventLog or a list, not %.100s",
                            Py_TYPE(events)->tp_name);
    Builder b = {0};
    b.type = (PyTypeObject *)call_type;
    if (!PyType_IsSubtype(b.type, &CallBase_Type))
        return PyErr_Format(PyExc_TypeError, "build_calls: Call must derive from CallBase");
    if (!PyObject_TypeCheck(root, b.type))
        return PyErr_Format(PyExc_TypeError, "build_calls: the root must be a Call");
    /* A slot that a class between Call and CallBase declares gets None, so that no call is left without it. */
    PyObject *mro = b.type->tp_mro;
    for (Py_ssize_t m = 0; mro != NULL && m < PyTuple_GET_SIZE(mro); m++) {
        PyTypeObject *cls = (PyTypeObject *)PyTuple_GET_ITEM(mro, m);
        if (cls == &CallBase_Type)
            break;
        PyObject *slots = cls->tp_dict == NULL ? NULL : PyDict_GetItemString(cls->tp_dict, "__slots__");
        PyObject *names = slots == NULL ? PyTuple_New(0) :
                          PyUnicode_Check(slots) ? PyTuple_Pack(1, slots) : PySequence_Tuple(slots);
        if (names == NULL)
            return NULL;
        for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(names); j++) {
            PyObject *name = PyTuple_GET_ITEM(names, j);
            if (PyUnicode_Check(name) && (PyUnicode_CompareWithASCIIString(name, "__weakref__") == 0 ||
                                          PyUnicode_CompareWithASCIIString(name, "__dict__") == 0))
                continue;
            PyObject *descr = PyUnicode_Check(name) ? PyDict_GetItemWithError(cls->tp_dict, name) : NULL;
            int ok = descr != NULL && Py_IS_TYPE(descr, &PyMemberDescr_Type) &&
                     ((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT_EX && b.n_other < MAX_OTHER_SLOTS;
            if (ok)
                b.other[b.n_other++] = ((PyMemberDescrObject *)descr)->d_member->offset;
            else {
                Py_DECREF(names);
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_TypeError, "build_calls: a slot of Call it cannot set");
                return NULL;
            }
        }
        Py_DECREF(names);
    }
    long k_call = constant_long(constants, "CALL"), k_resume = constant_long(constants, "RESUME"),
         k_return = constant_long(constants, "RETURN"), k_c_call = constant_long(constants, "C_CALL"),
         k_c_return = constant_long(constants, "C_RETURN"), k_truncated = constant_long(constants, "TRUNCATED"),
         k_aten_call = constant_long(constants, "ATEN_CALL"), k_aten_return = constant_long(constants, "ATEN_RETURN");
    if (PyErr_Occurred())
        return NULL;
    b.raised = lookup_constant(constants, "RAISED");
    b.raised_here = lookup_constant(constants, "RAISED_HERE");
    b.hidden = hidden;
    b.dropped = dropped;
    b.unwound = PyDict_New();
    b.empty = PyTuple_New(0);
    b.cap = 64;
    b.stack = PyMem_Malloc(b.cap * sizeof(Open));
    CodeTable infos = {0}, aten_infos = {0}, builtin_sites = {0};
    PyObject *out = NULL;
    EventLog *log = from_log ? (EventLog *)events : NULL;
    Event *taken = NULL;  /* a consuming build's events, taken out of the log (below) */
    Py_ssize_t n_taken = 0, taken_cap = 0, taken_ready = 0, released = 0;
    Py_ssize_t n_hidden = 0, in_aten = 0;  /* in_aten: inside an operator, the dispatcher's Python is skipped */
    int truncated = 0, populated = 0;
    if (b.raised == NULL || b.raised_here == NULL || b.unwound == NULL || b.empty == NULL)
        goto done;
    if (b.stack == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (table_init(&infos) < 0 || table_init(&aten_infos) < 0 || table_init(&builtin_sites) < 0 ||
            builder_push(&b, root, Py_None, 0) < 0)
        goto done;

    /* The events stay alive through the loop: Python code it calls (info_of) appends nothing to them. A
     * consuming build from a log takes the log's array out of it first (the log is empty from here on, to
     * any code that runs meanwhile too) and releases each event once past it, then keeps the array as the
     * next log's spare: the log is read once, where dropping it afterwards read it all again, cold. */
    if (log != NULL && consume) {
        taken = log->items;
        n_taken = log->n;
        taken_cap = log->cap;
        taken_ready = log->ready;
        log->items = NULL;
        log->n = log->cap = log->ready = 0;
    }
    Py_ssize_t n_events = taken != NULL ? n_taken : from_log ? LOG_SIZE(events) : PyList_GET_SIZE(events);
    if (n_events >= POPULATE_MIN_EVENTS) {  /* a large tree: see _slab.h and _arenas.h */
        b.slab = slab_start(b.type);
        populated = arenas_wrap();
    }
    for (Py_ssize_t index = 0; index < n_events; index++) {
        long kind;
        long long t;
        PyObject *what, *extra;
        int pooled = 0;  /* a call whose summaries are an array in the log: made into a tuple where kept */
        if (taken != NULL) {
            while (released < index)  /* the events already built from */
                event_release(&taken[released++]);
        }
        else if (from_log && index >= LOG_SIZE(events))  /* info_of ran Python code that cleared the log */
            break;
        if (from_log) {
            Event *e = taken != NULL ? &taken[index] : &log->items[index];
#if defined(__GNUC__) || defined(__clang__)
            /* within the array: a pointer past its end is undefined in C, though a prefetch never faults */
            if (index + LOG_PREFETCH < (taken != NULL ? n_taken : LOG_SIZE(events)))
                __builtin_prefetch(e + LOG_PREFETCH);
#endif
            kind = e->kind;
            what = e->what;
            t = e->t;
            pooled = e->nargs >= 0;
            extra = pooled ? Py_None : e->extra;
        }
        else {
            if (index >= PyList_GET_SIZE(events))
                break;
            PyObject *event = PyList_GET_ITEM(events, index);
            if (!PyTuple_Check(event) || PyTuple_GET_SIZE(event) != 4) {
                PyErr_SetString(PyExc_TypeError, "build_calls: an event is a 4-tuple");
                goto done;
            }
            kind = PyLong_AsLong(PyTuple_GET_ITEM(event, 0));
            if (kind == -1 && PyErr_Occurred())
                goto done;
            what = PyTuple_GET_ITEM(event, 1);
            t = PyLong_AsLongLong(PyTuple_GET_ITEM(event, 2));
            if (t == -1 && PyErr_Occurred())
                goto done;
            extra = PyTuple_GET_ITEM(event, 3);
        }
        PyObject *parent = b.stack[b.n - 1].entry;
        Py_ssize_t parent_depth = b.stack[b.n - 1].depth;
        if (in_aten && kind != k_aten_call && kind != k_aten_return && kind != k_truncated)
            continue;
        if (kind == k_call || kind == k_resume) {
            int plumbing;
            PyObject *site = builder_site(&infos, what, info_of, 7, "info_of(code)", python_text, 4, 5, 6,
                                          &plumbing);
            if (site == NULL)
                goto done;
            if (plumbing || parent == dropped) {
                if (builder_push(&b, dropped, what, 0) < 0)
                    goto done;
                continue;
            }
            if (parent == hidden || (depth_limit >= 0 && parent_depth >= depth_limit)) {
                if (builder_push(&b, hidden, what, 0) < 0)
                    goto done;
                n_hidden++;
                continue;
            }
            PyObject **argv = NULL;
            int argc = 0;
            if (pooled) {  /* the event itself, looked up again: info_of may have run Python code */
                if (taken == NULL && index >= LOG_SIZE(events))
                    break;
                Event *e = taken != NULL ? &taken[index] : &log->items[index];
                argc = e->nargs;
                if (consume) {  /* the call takes the array; the event is left with no summaries */
                    argv = e->args;
                    e->nargs = -1;
                    e->extra = Py_NewRef(Py_None);
                }
                else if ((argv = args_new(argc)) == NULL)
                    goto done;
                else
                    for (int i = 0; i < argc; i++)
                        argv[i] = Py_NewRef(e->args[i]);
            }
            /* no summaries (args=False, or a resumption: shown where it started): an empty tuple */
            PyObject *opened = builder_open(&b, what, t, site, argv, argc, extra == Py_None ? b.empty : extra, 0,
                                            kind == k_resume);
            if (opened == NULL)
                goto done;
        }
        else if (kind == k_return || kind == k_c_return) {
            if (b.stack[b.n - 1].key == what && what != Py_None) {
                PyObject *entry, *key;
                int rc = builder_pop(&b, &entry, &key);
                if (rc == 0 && is_call(&b, entry)) {
                    builder_finish(entry, t);
                    if (extra != Py_None) {
                        int truth = PyObject_IsTrue(extra);
                        rc = truth < 0 ? -1 : truth ? builder_raised(&b, entry, extra, index) : 0;
                    }
                }
                Py_DECREF(entry);
                Py_DECREF(key);
                if (rc < 0)
                    goto done;
            }
            else if (builder_close(&b, what, t, extra, index) < 0)
                goto done;
        }
        else if (kind == k_c_call) {
            if (parent == dropped) {
                if (builder_push(&b, dropped, what, 0) < 0)
                    goto done;
                continue;
            }
            if (parent == hidden || (depth_limit >= 0 && parent_depth >= depth_limit)) {
                if (builder_push(&b, hidden, what, 0) < 0)
                    goto done;
                n_hidden++;
                continue;
            }
            int plumbing;
            PyObject *site = builder_site(&builtin_sites, what, NULL, 4, "a C call's key", builtin_text, -1, -1,
                                          -1, &plumbing);
            if (site == NULL || builder_open(&b, what, t, site, NULL, 0, b.empty, 0, 0) == NULL)
                goto done;
        }
        else if (kind == k_aten_call) {
            if (in_aten++ > 0)
                continue;
            if (parent == dropped) {
                if (builder_push(&b, dropped, what, 0) < 0)
                    goto done;
                continue;
            }
            if (parent == hidden || (depth_limit >= 0 && parent_depth >= depth_limit)) {
                if (builder_push(&b, hidden, what, 0) < 0)
                    goto done;
                n_hidden++;
                continue;
            }
            int plumbing;
            PyObject *site = builder_site(&aten_infos, what, aten_info_of, 5, "aten_info_of(op)", aten_text, -1, 4,
                                          -1, &plumbing);
            if (site == NULL)
                goto done;
            /* positional summaries go with the schema's names (the site's); a dict (or nothing) is the args
             * itself */
            int positional = PyTuple_CheckExact(extra), truth = positional ? 1 : PyObject_IsTrue(extra);
            if (truth < 0)
                goto done;
            PyObject *call_args = positional || truth ? Py_NewRef(extra) : PyDict_New();
            if (call_args == NULL)
                goto done;
            PyObject *opened = builder_open(&b, what, t, site, NULL, 0, call_args, !positional, 0);
            Py_DECREF(call_args);
            if (opened == NULL)
                goto done;
        }
        else if (kind == k_aten_return) {
            if (--in_aten == 0 && builder_close(&b, what, t, extra, index) < 0)
                goto done;
        }
        else if (kind == k_truncated) {
            truncated = 1;
            break;
        }
        else {
            PyErr_Format(PyExc_ValueError, "build_calls: unknown event kind %ld", kind);
            goto done;
        }
    }
    for (Py_ssize_t i = b.n - 1; i >= 0; i--)  /* the calls still open, the root last */
        if (builder_flush(&b, i) < 0)
            goto done;
    PyObject *stack = PyList_New(b.n), *keys = PyList_New(b.n);
    if (stack == NULL || keys == NULL) {
        Py_XDECREF(stack);
        Py_XDECREF(keys);
        goto done;
    }
    for (Py_ssize_t i = 0; i < b.n; i++) {
        PyList_SET_ITEM(stack, i, Py_NewRef(b.stack[i].entry));
        PyList_SET_ITEM(keys, i, Py_NewRef(b.stack[i].key));
    }
    out = Py_BuildValue("(NNnOO)", stack, keys, n_hidden, b.unwound, truncated ? Py_True : Py_False);
done:
    if (taken != NULL) {  /* past a truncation, or a failed build: the rest go too */
        while (released < n_taken)
            event_release(&taken[released++]);
        log_spare_keep(taken, taken_cap, taken_ready);
    }
    if (populated)
        arenas_unwrap();
    slab_retire();
    for (Py_ssize_t i = 0; i < b.n; i++) {
        Py_DECREF(b.stack[i].entry);
        Py_DECREF(b.stack[i].key);
    }
    for (Py_ssize_t i = 0; i < b.n_kids; i++)  /* children not given to their parents: a failed build */
        Py_DECREF(b.kids[i]);
    PyMem_Free(b.stack);
    PyMem_Free(b.kids);
    if (infos.slots != NULL)
        table_free(&infos);
    if (aten_infos.slots != NULL)
        table_free(&aten_infos);
    if (builtin_sites.slots != NULL)
        table_free(&builtin_sites);
    Py_XDECREF(b.raised);
    Py_XDECREF(b.raised_here);
    Py_XDECREF(b.unwound);
    Py_XDECREF(b.empty);
    return out;
}

#define SUMMARISE_VALUES_METHOD \
    {"summarise_values", (PyCFunction)(void (*)(void))summarise_values, METH_FASTCALL, \
     "summarise_values(values, summarise, by_type, fast) -> tuple: each value's summary, as summary.summarise gives it."}

#define BUILD_CALLS_METHOD \
    {"build_calls", build_calls, METH_VARARGS, \
     "build_calls(events, root, Call, info_of, aten_info_of, constants, depth_limit, hidden, dropped, 'python', " \
     "'builtin', 'aten', consume=False) -> (stack, keys, hidden, unwound, truncated): model._build_events' loop. " \
     "consume: the calls take the summaries out of the events, and a log is emptied (a list is left as it was)."}

/* -- a block's end that an interrupt cannot cut short ----------------------------------------------------- */

/* ExitGuard(stop, finish) is Trace.__exit__: a method that calls stop(trace, exc_type) and, should that raise
 * (a KeyboardInterrupt that lands anywhere in it, even on its very first line, where Python code cannot
 * catch it), calls it again: stop is idempotent, so the second call takes off whatever hook the first left.
 * Then finish(trace, exc_type, exc, tb) builds the tree, and the first error, if any, is raised again.
 * Written in C because the first line of any Python __exit__ is itself a place where a pending signal raises. */

/* Both guards hold two callables and bind as methods; they differ in what calling them does. */
typedef struct {
    PyObject_HEAD
    PyObject *first, *second;  /* ExitGuard: stop, finish; EnterGuard: start, undo */
} Guard;

static PyObject *
Guard_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *first, *second;
    if (!PyArg_UnpackTuple(args, type->tp_name, 2, 2, &first, &second))
        return NULL;
    Guard *self = (Guard *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->first = Py_NewRef(first);
    self->second = Py_NewRef(second);
    return (PyObject *)self;
}

static void
Guard_dealloc(Guard *self)
{
    Py_CLEAR(self->first);
    Py_CLEAR(self->second);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Guard_get(PyObject *self, PyObject *obj, PyObject *type)
{
    if (obj == NULL || obj == Py_None) {
        Py_INCREF(self);
        return self;
    }
    return PyMethod_New(self, obj);
}

static PyObject *
ExitGuard_call(Guard *self, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) != 4 || (kwds != NULL && PyDict_GET_SIZE(kwds))) {
        PyErr_SetString(PyExc_TypeError, "__exit__ takes the trace, exc_type, exc and tb");
        return NULL;
    }
    PyObject *trace = PyTuple_GET_ITEM(args, 0), *exc_type = PyTuple_GET_ITEM(args, 1);
    PyObject *type = NULL, *value = NULL, *tb = NULL;
    PyObject *done = PyObject_CallFunctionObjArgs(self->first, trace, exc_type, NULL);
    if (done == NULL) {
        PyErr_Fetch(&type, &value, &tb);
        done = PyObject_CallFunctionObjArgs(self->first, trace, exc_type, NULL);  /* finishes what was cut short */
        if (done == NULL)
            PyErr_Clear();  /* the first error is the one to report */
    }
    Py_XDECREF(done);
    PyObject *result = PyObject_Call(self->second, args, NULL);
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
    .tp_basicsize = sizeof(Guard),
    .tp_dealloc = (destructor)Guard_dealloc,
    .tp_call = (ternaryfunc)ExitGuard_call,
    .tp_descr_get = Guard_get,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "ExitGuard(stop, finish): an __exit__ that calls stop(self, exc_type) again if an interrupt cut it "
              "short, then finish(self, exc_type, exc, tb).",
    .tp_new = Guard_new,
};

/* EnterGuard(start, undo) is Trace.__enter__: start(trace) installs the hooks, its last step; should it raise
 * (an interrupt that lands in the Python frames that return after the hook went on, which the hook itself
 * runs code for), undo(trace, error) takes them off again before the error goes on. It returns the trace to
 * the `with` statement from C, so no Python frame runs between the hook going on and __exit__ being armed. */

static PyObject *
EnterGuard_call(Guard *self, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) != 1 || (kwds != NULL && PyDict_GET_SIZE(kwds))) {
        PyErr_SetString(PyExc_TypeError, "__enter__ takes the trace alone");
        return NULL;
    }
    PyObject *trace = PyTuple_GET_ITEM(args, 0);
    PyObject *started = PyObject_CallOneArg(self->first, trace);
    if (started == NULL) {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        PyObject *undone = PyObject_CallFunctionObjArgs(self->second, trace, value ? value : Py_None, NULL);
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
    .tp_basicsize = sizeof(Guard),
    .tp_dealloc = (destructor)Guard_dealloc,
    .tp_call = (ternaryfunc)EnterGuard_call,
    .tp_descr_get = Guard_get,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "EnterGuard(start, undo): an __enter__ that calls start(self), undo(self, error) if that raised, "
              "and returns self.",
    .tp_new = Guard_new,
};

/* Add ExitGuard, EnterGuard, EventLog and CallBase to a module: 0, or -1 with an error set. */
static int
add_exit_guard(PyObject *module)
{
    PyTypeObject *types[] = {&ExitGuard_Type, &EnterGuard_Type, &EventLog_Type, &CallBase_Type};
    const char *names[] = {"ExitGuard", "EnterGuard", "EventLog", "CallBase"};
    for (int i = 0; i < 4; i++) {
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
