/* The setprofile backend's callback in C, for Python 3.10 and 3.11.
 *
 * setprofile.py's `_make_callback` builds a Python function that CPython calls on every call, return
 * and C call of the traced block; the call through the profile trampoline alone costs about as much
 * as a whole C tracer. This module does the same work as a C profile function installed with
 * PyEval_SetProfile, and appends exactly the same events (kind, what, time_ns, extra) to the same
 * EventLog (_recording.h), where the Python callback appends them as 4-tuples:
 *
 *   call      (CALL, code, t, summarise_frame(code, f_locals) or None)  a function starts
 *             (RESUME, code, t, None)                                   a generator goes on
 *             (TRUNCATED, code, t, None), then truncate()               at the cap
 *   return    (RETURN, code, t, None | RAISED | RAISED_HERE)
 *   c_call    (C_CALL, key, t, None)              key = builtin_key(func), when not None
 *   c_return  (C_RETURN, key, t, None)            and c_exception: (C_RETURN, key, t, RAISED)
 *
 * Only code objects in the include set are recorded; `classify(code, module_name)` decides, once per
 * code object, and fills the `codes` dict (id(code) -> bool) that is the one record of its decisions.
 * The Profiler keeps a CodeTable (_recording.h) in front of that dict so that the common case costs
 * no allocation; the table holds a reference to each code object it names, so no id is reused meanwhile.
 *
 * Times come from now_ns (_recording.h), the clock of time.perf_counter_ns, so they compare with the
 * Recording's start and stop stamps.
 *
 * An error inside the callback (in classify, builtin_key, summarise_frame, truncate, or memory) must
 * never break the traced program: CPython would raise it in the traced frame, since a C profile
 * function that returns -1 fails the frame. An Exception is therefore cleared, counted in the
 * Profiler's `errors`, and the event is not recorded. A BaseException that is not an Exception
 * (KeyboardInterrupt while a Python helper ran, SystemExit) is let through to the program.
 *
 * A Profiler is also callable as profiler(frame, event, arg), the signature of a sys.setprofile
 * function, and says `_tracer_callback = True`: sys.getprofile() returns it, and an enclosing trace
 * can call it. Given `chain`, it feeds that profile function after itself (directly in C when `chain`
 * is a Profiler too), which is how a trace nested in another trace records into both.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "_recording.h"
#include <frameobject.h>
#if PY_VERSION_HEX >= 0x030B0000
/* 3.11's frame layout, to read a starting frame's arguments without building its f_locals dict (which
 * raises and clears a KeyError for every local not bound yet): see frame_argument. */
#define Py_BUILD_CORE 1
#include <internal/pycore_frame.h>
#include <internal/pycore_code.h>
#undef Py_BUILD_CORE
#endif
/* The collector's generations, for _young.h (pycore_gc.h redefines the _PyGC_FINALIZED macro). */
#define Py_BUILD_CORE 1
#undef _PyGC_FINALIZED
#include <internal/pycore_interp.h>
#include <internal/pycore_pystate.h>
#undef Py_BUILD_CORE
#include "_young.h"
#include "_slab.h"

#if PY_VERSION_HEX < 0x030A0000 || PY_VERSION_HEX >= 0x030C0000
#error "_fastprofile is for Python 3.10 and 3.11: 3.12+ record with sys.monitoring"
#endif

/* -- the recorder's state ----------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *events;       /* the Recording's EventLog */
    PyObject *codes;        /* id(code) -> bool, filled by classify */
    PyObject *classify;     /* classify(code, module_name) -> bool */
    PyObject *ckey;         /* builtin_key(func) -> (module, name) or None */
    PyObject *summarise;    /* summarise_frame(code, f_locals) -> args */
    /* From the `summaries` module (tracer.record.summary), when given: the frame is summarised here. */
    PyObject *s_value;      /* summarise(value) -> str */
    PyObject *s_by_type;    /* _by_type */
    PyObject *s_fast;       /* _fast_by_type */
    PyObject *s_arg_names;  /* cached_argument_names(code) -> tuple */
    PyObject *truncate;     /* called once the cap is reached */
    PyObject *chain;        /* a profile function to feed after this one, or NULL */
    long k_call, k_return, k_c_call, k_c_return, k_truncated, k_resume;           /* event kinds */
    PyObject *raised, *raised_here;                                               /* return errors */
    int want_c;             /* the builtin layer: record C calls */
    int want_args;          /* summarise the arguments of each call */
    Py_ssize_t cap;         /* max_events */
    Py_ssize_t errors;      /* events dropped because the callback failed */
    unsigned char exit_error[256];  /* opcode -> 0 for a normal exit, 1 RAISED, 2 RAISED_HERE */
    CodeTable table;        /* code object -> keep, in front of `codes` */
    BuiltinCache builtins;  /* builtin_key's answers, in front of `ckey` */
} Profiler;

static PyTypeObject Profiler_Type;
static PyObject *event_names[8];  /* PyTrace_* -> the event's name, as sys.setprofile gives it */

/* Whether to keep `code`, classifying it on first sight: 1, 0, or -1 on an error. */
static int
code_keep(Profiler *self, PyObject *code, PyFrameObject *frame)
{
    int keep = table_known(&self->table, self->codes, code);
    if (keep != -2)
        return keep;
    /* frame.f_globals.get("__name__") */
#if PY_VERSION_HEX >= 0x030B0000
    PyObject *globals = PyFrame_GetGlobals(frame);
#else
    PyObject *globals = frame->f_globals;
    Py_XINCREF(globals);
#endif
    PyObject *module = NULL;
    if (globals != NULL && PyDict_Check(globals)) {
        module = PyDict_GetItemWithError(globals, str_name);
        if (module == NULL && PyErr_Occurred()) {
            Py_DECREF(globals);
            return -1;
        }
    }
    PyObject *result = PyObject_CallFunctionObjArgs(self->classify, code, module ? module : Py_None, NULL);
    Py_XDECREF(globals);
    if (result == NULL)
        return -1;
    keep = PyObject_IsTrue(result);
    Py_DECREF(result);
    if (keep < 0 || table_remember(&self->table, code, keep) < 0)
        return -1;
    return keep;
}

/* -- the bytecode at f_lasti ------------------------------------------------------------------------ */

/* The byte at `offset` of code.co_code, as Python reads it (a negative offset counts from the end).
 * On 3.11 co_code is the bytecode with its specialisations undone; the running bytecode differs only
 * in specialised opcodes and inline caches. The bytes read here are an instruction's argument (kept
 * as is by specialisation) or the opcode of an exit (RETURN_VALUE, YIELD_VALUE, RETURN_GENERATOR,
 * RAISE_VARARGS: never specialised, and no specialised opcode shares their numbers), so the running
 * bytecode answers alike without copying it. Only a negative offset, which can land in a cache, reads
 * co_code itself. Returns -1 with an error set when out of range, as co_code[offset] would raise. */
static int
code_byte(PyCodeObject *code, Py_ssize_t offset)
{
#if PY_VERSION_HEX >= 0x030B0000
    Py_ssize_t size = Py_SIZE(code) * (Py_ssize_t)sizeof(_Py_CODEUNIT);
    if (offset >= 0 && offset < size)
        return ((const unsigned char *)_PyCode_CODE(code))[offset];
    PyObject *bytes = PyCode_GetCode(code);
    if (bytes == NULL)
        return -1;
#else
    PyObject *bytes = code->co_code;
    Py_INCREF(bytes);
#endif
    Py_ssize_t n = PyBytes_GET_SIZE(bytes);
    int byte = -1;
    if (offset < 0)
        offset += n;
    if (offset >= 0 && offset < n)
        byte = ((const unsigned char *)PyBytes_AS_STRING(bytes))[offset];
    else
        PyErr_SetString(PyExc_IndexError, "index out of range");
    Py_DECREF(bytes);
    return byte;
}

/* frame.f_lasti: the byte offset of the instruction the frame stopped at, -1 before the first one (read
 * as PyFrame_GetLasti reads it, without the call). */
static int
frame_lasti(PyFrameObject *frame)
{
#if PY_VERSION_HEX >= 0x030B0000
    int lasti = _PyInterpreterFrame_LASTI(frame->f_frame);
    return lasti < 0 ? -1 : lasti * (int)sizeof(_Py_CODEUNIT);
#else
    return frame->f_lasti < 0 ? -1 : frame->f_lasti * (int)sizeof(_Py_CODEUNIT);
#endif
}

/* -- argument summaries ----------------------------------------------------------------------------- */

#if PY_VERSION_HEX >= 0x030B0000
/* The value of argument `i` of a frame at its 'call' event (a borrowed reference, NULL if unbound), as
 * f_locals would give it: the arguments are the first fast locals, in the order of co_varnames, and
 * MAKE_CELL has already run (it comes before RESUME, where the event is), so a cell argument's value
 * is in its cell. */
static PyObject *
frame_argument(struct _PyInterpreterFrame *f, PyCodeObject *code, Py_ssize_t i)
{
    PyObject *value = f->localsplus[i];
    if (value != NULL && (_PyLocals_GetKind(code->co_localspluskinds, (int)i) & CO_FAST_CELL) && PyCell_Check(value))
        value = PyCell_GET(value);
    return value;
}
#endif

static PyObject *summarise_locals_tuple(Profiler *self, PyFrameObject *frame, PyCodeObject *code, PyObject *names);

/* frame.f_locals: a new reference, or NULL with an error set. */
static PyObject *
frame_locals(PyFrameObject *frame)
{
#if PY_VERSION_HEX >= 0x030B0000
    return PyFrame_GetLocals(frame);
#else
    if (PyFrame_FastToLocalsWithError(frame) < 0)
        return NULL;
    return Py_XNewRef(frame->f_locals);
#endif
}

/* summarise_frame(code, frame.f_locals) done here: the summaries in the order of the argument names,
 * None for an unbound one. On 3.11, read from the frame's fast locals into an array (*array, *count: see
 * log_push_args), else a tuple (*tuple). No locals are built for a function without parameters, nor on
 * 3.11. 0, or -1 with an error set. */
static int
summarise_locals(Profiler *self, PyFrameObject *frame, PyCodeObject *code, PyObject **tuple, PyObject ***array,
                 Py_ssize_t *count)
{
    PyObject *names = table_arg_names(&self->table, (PyObject *)code, self->s_arg_names);
    if (names == NULL)
        return -1;
    Py_ssize_t n = PyTuple_GET_SIZE(names);
    if (n == 0)
        return (*tuple = PyTuple_New(0)) == NULL ? -1 : 0;
#if PY_VERSION_HEX >= 0x030B0000
    struct _PyInterpreterFrame *f = frame->f_frame;
    if (f != NULL && f->f_code == code && n <= code->co_argcount + code->co_kwonlyargcount + 2 &&
            n <= code->co_nlocalsplus) {
        PyObject **out = args_new(n);
        if (out == NULL)
            return -1;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *value = frame_argument(f, code, i), *text;
            if (value == NULL)
                text = Py_NewRef(Py_None);  /* unbound: not in f_locals */
            else {
                Py_INCREF(value);  /* a summariser may run Python code */
                text = summarise_value(self->s_value, self->s_by_type, self->s_fast, value);
                Py_DECREF(value);
                if (text == NULL) {
                    args_free(out, i);
                    return -1;
                }
            }
            out[i] = text;
        }
        *array = out;
        *count = n;
        return 0;
    }
#endif
    *tuple = summarise_locals_tuple(self, frame, code, names);
    return *tuple == NULL ? -1 : 0;
}

/* The same through frame.f_locals: a tuple. `names` is borrowed from the code table. */
static PyObject *
summarise_locals_tuple(Profiler *self, PyFrameObject *frame, PyCodeObject *code, PyObject *names)
{
    Py_ssize_t n = PyTuple_GET_SIZE(names);
    Py_INCREF(names);
    PyObject *locals = frame_locals(frame);
    PyObject *out = NULL;
    if (locals == NULL)
        goto done;
    if (!PyDict_Check(locals)) {  /* not a function's frame: the Python summariser handles any mapping */
        out = PyObject_CallFunctionObjArgs(self->summarise, (PyObject *)code, locals, NULL);
        goto done;
    }
    if ((out = PyTuple_New(n)) == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *value = PyDict_GetItemWithError(locals, PyTuple_GET_ITEM(names, i));  /* borrowed */
        PyObject *text;
        if (value == NULL) {
            if (PyErr_Occurred())
                goto error;
            text = Py_NewRef(Py_None);  /* unbound: not in f_locals */
        }
        else {
            Py_INCREF(value);  /* a summariser may run Python code */
            text = summarise_value(self->s_value, self->s_by_type, self->s_fast, value);
            Py_DECREF(value);
            if (text == NULL)
                goto error;
        }
        PyTuple_SET_ITEM(out, i, text);
    }
    PyObject_GC_UnTrack(out);  /* strings and None only: in no cycle, so the collector need not walk it */
    goto done;
error:
    Py_CLEAR(out);
done:
    Py_XDECREF(locals);
    Py_DECREF(names);
    return out;
}

/* -- the events ------------------------------------------------------------------------------------ */

static int
on_call(Profiler *self, PyFrameObject *frame, PyCodeObject *code)
{
    int keep = code_keep(self, (PyObject *)code, frame);
    if (keep <= 0)
        return keep;
    if (LOG_SIZE(self->events) >= self->cap) {
        if (record_event(self->events, self->k_truncated, (PyObject *)code, now_ns(), Py_None) < 0)
            return -1;
        PyObject *done = PyObject_CallNoArgs(self->truncate);  /* uninstalls this profiler */
        Py_XDECREF(done);
        return done == NULL ? -1 : 0;
    }
    int lasti = frame_lasti(frame);
#if PY_VERSION_HEX >= 0x030B0000
    /* A 'call' stops at RESUME, whose argument is 0 only at the start of a function. */
    int resumed = code_byte(code, (Py_ssize_t)lasti + 1);
    if (resumed < 0)
        return -1;
#else
    /* 3.10 starts a fresh frame at instruction -1. */
    int resumed = lasti >= 0;
#endif
    if (resumed)  /* its arguments were shown where it started */
        return record_event(self->events, self->k_resume, (PyObject *)code, now_ns(), Py_None);
    long long t = now_ns();
    if (!self->want_args)
        return record_event(self->events, self->k_call, (PyObject *)code, t, Py_None);
    if (self->s_value != NULL) {
        PyObject *args = NULL, **array = NULL;
        Py_ssize_t count = 0;
        if (summarise_locals(self, frame, code, &args, &array, &count) < 0)
            return -1;
        if (array != NULL)
            return log_push_args((EventLog *)self->events, self->k_call, (PyObject *)code, t, array, count);
        int rc = record_event(self->events, self->k_call, (PyObject *)code, t, args);
        Py_DECREF(args);
        return rc;
    }
    PyObject *locals = frame_locals(frame);
    if (locals == NULL)
        return -1;
    PyObject *args = PyObject_CallFunctionObjArgs(self->summarise, (PyObject *)code, locals, NULL);
    Py_DECREF(locals);
    if (args == NULL)
        return -1;
    int rc = record_event(self->events, self->k_call, (PyObject *)code, t, args);
    Py_DECREF(args);
    return rc;
}

static int
on_return(Profiler *self, PyFrameObject *frame, PyCodeObject *code, PyObject *arg)
{
    int keep = table_known(&self->table, self->codes, (PyObject *)code);
    if (keep == -1)
        return -1;
    if (keep != 1)
        return 0;
    PyObject *error = Py_None;
    if (arg == NULL || arg == Py_None) {
        /* A normal return of None, a yield of None, or an unwind: the instruction tells which. */
        int op = code_byte(code, frame_lasti(frame));
        if (op < 0)
            return -1;
        switch (self->exit_error[op]) {
        case 1: error = self->raised; break;
        case 2: error = self->raised_here; break;
        }
    }
    return record_event(self->events, self->k_return, (PyObject *)code, now_ns(), error);
}

static int
on_c_event(Profiler *self, PyCodeObject *code, int what, PyObject *func)
{
    int keep = table_known(&self->table, self->codes, (PyObject *)code);
    if (keep == -1)
        return -1;
    if (keep != 1)
        return 0;
    PyObject *key;
    if (func != NULL && PyCFunction_Check(func))
        key = builtin_key_cached(&self->builtins, self->ckey, ((PyCFunctionObject *)func)->m_ml,
                                 ((PyCFunctionObject *)func)->m_self, func);
    else
        key = PyObject_CallOneArg(self->ckey, func ? func : Py_None);
    if (key == NULL)
        return -1;
    int rc = 0;
    if (key != Py_None) {
        if (what == PyTrace_C_CALL)
            rc = record_event(self->events, self->k_c_call, key, now_ns(), Py_None);
        else
            rc = record_event(self->events, self->k_c_return, key, now_ns(),
                              what == PyTrace_C_EXCEPTION ? self->raised : Py_None);
    }
    Py_DECREF(key);
    return rc;
}

/* This profiler's own work for one event: 0, or -1 with an error set. */
static int
record(Profiler *self, PyFrameObject *frame, int what, PyObject *arg)
{
    if (self->events == NULL)  /* never set up, or emptied by the garbage collector's tp_clear */
        return 0;
    if (what != PyTrace_CALL && what != PyTrace_RETURN &&
        !(self->want_c && (what == PyTrace_C_CALL || what == PyTrace_C_RETURN || what == PyTrace_C_EXCEPTION)))
        return 0;
    /* borrowed, as PyFrame_GetCode would give it less the reference: the running frame holds its code */
#if PY_VERSION_HEX >= 0x030B0000
    PyCodeObject *code = frame->f_frame->f_code;
#else
    PyCodeObject *code = frame->f_code;
#endif
    switch (what) {
    case PyTrace_CALL: return on_call(self, frame, code);
    case PyTrace_RETURN: return on_return(self, frame, code, arg);
    default: return on_c_event(self, code, what, arg);
    }
}

/* An error in the callback is the tracer's, not the program's: drop the event (see the top). */
static int
swallow_error(Profiler *self)
{
    if (!PyErr_ExceptionMatches(PyExc_Exception))
        return -1;
    PyErr_Clear();
    self->errors++;
    return 0;
}

#ifndef Py_NO_INLINE  /* pyport.h has it from 3.11 */
#if defined(__GNUC__) || defined(__clang__)
#define Py_NO_INLINE __attribute__((noinline))
#else
#define Py_NO_INLINE
#endif
#endif

/* One event for this profiler and those it feeds (profile's work, past its first test): not inlined into
 * profile, so that profile's first test comes before any register is saved. */
Py_NO_INLINE static int
profile_event(Profiler *self, PyFrameObject *frame, int what, PyObject *arg)
{
    Py_INCREF(self);  /* truncate() uninstalls it, which drops the interpreter's reference */
    int rc = 0;
    if (record(self, frame, what, arg) < 0)
        rc = swallow_error(self);
    PyObject *chain = self->chain;
    if (rc == 0 && chain != NULL) {
        if (Py_IS_TYPE(chain, &Profiler_Type)) {
            Py_INCREF(chain);  /* a truncate() on the way may unlink it */
            rc = profile_event((Profiler *)chain, frame, what, arg);
            Py_DECREF(chain);
        }
        else if (what >= 0 && what < 8 && event_names[what] != NULL) {
            Py_INCREF(chain);
            PyObject *result = PyObject_CallFunctionObjArgs(chain, (PyObject *)frame, event_names[what],
                                                            arg ? arg : Py_None, NULL);
            Py_DECREF(chain);
            if (result == NULL)
                rc = swallow_error(self);
            Py_XDECREF(result);
        }
    }
    Py_DECREF(self);
    return rc;
}

/* The profile function given to PyEval_SetProfile, with the Profiler as its object. A C function's call or
 * return, where neither this profiler nor one it feeds records C calls, returns at once: the most frequent
 * event (ten load_state_dict of a resnet18: 120,000 of them against 30,000 Python calls and returns) costs
 * no more than this test, before any register is saved or reference taken. */
static int
profile(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg)
{
    Profiler *self = (Profiler *)obj;
    if (what >= PyTrace_C_CALL && !self->want_c && self->chain == NULL)
        return 0;
    return profile_event(self, frame, what, arg);
}

/* -- the Profiler type ------------------------------------------------------------------------------ */

static int
Profiler_init(Profiler *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"events", "codes", "classify", "builtin_key", "summarise_frame", "truncate",
                             "constants", "normal_exits", "raise_op", "want_c", "want_args", "cap",
                             "chain", "summaries", NULL};
    PyObject *events, *codes, *classify, *ckey, *summarise, *truncate, *constants, *normal_exits;
    PyObject *chain = Py_None, *summaries = Py_None;
    int raise_op, want_c, want_args;
    Py_ssize_t cap;
    if (self->events != NULL) {
        PyErr_SetString(PyExc_TypeError, "a Profiler is set up once");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!OOOOOOippn|OO:Profiler", kwlist,
                                     &EventLog_Type, &events, &PyDict_Type, &codes, &classify, &ckey,
                                     &summarise, &truncate, &constants, &normal_exits, &raise_op,
                                     &want_c, &want_args, &cap, &chain, &summaries))
        return -1;
    if (raise_op < 0 || raise_op > 255) {
        PyErr_SetString(PyExc_ValueError, "raise_op must be an opcode, 0 to 255");
        return -1;
    }
    if (!PyCallable_Check(classify) || !PyCallable_Check(ckey) || !PyCallable_Check(summarise) ||
            !PyCallable_Check(truncate) || (chain != Py_None && !PyCallable_Check(chain))) {
        PyErr_SetString(PyExc_TypeError, "classify, builtin_key, summarise_frame, truncate and chain must be callable");
        return -1;
    }
    /* Any opcode other than a normal exit, at a return of None, is an unwind. */
    memset(self->exit_error, 1, sizeof self->exit_error);
    self->exit_error[raise_op] = 2;
    PyObject *it = PyObject_GetIter(normal_exits), *item;
    if (it == NULL)
        return -1;
    while ((item = PyIter_Next(it)) != NULL) {
        long op = PyLong_AsLong(item);
        Py_DECREF(item);
        if (op == -1 && PyErr_Occurred())
            break;
        if (op < 0 || op > 255) {
            PyErr_SetString(PyExc_ValueError, "normal_exits must hold opcodes, 0 to 255");
            break;
        }
        self->exit_error[op] = 0;
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return -1;

    long *kinds[6] = {&self->k_call, &self->k_return, &self->k_c_call, &self->k_c_return, &self->k_truncated,
                      &self->k_resume};
    if (event_kinds(constants, kinds) < 0)
        return -1;
    PyObject **errors[] = {&self->raised, &self->raised_here};
    const char *error_names[] = {"RAISED", "RAISED_HERE"};
    for (int i = 0; i < 2; i++) {
        Py_CLEAR(*errors[i]);  /* from an earlier __init__ that failed after this point */
        if ((*errors[i] = lookup_constant(constants, error_names[i])) == NULL)
            return -1;
    }

    if (summaries != Py_None) {
        PyObject **fields[] = {&self->s_value, &self->s_by_type, &self->s_fast, &self->s_arg_names};
        const char *attrs[] = {"summarise", "_by_type", "_fast_by_type", "cached_argument_names"};
        for (int i = 0; i < 4; i++) {
            Py_CLEAR(*fields[i]);
            if ((*fields[i] = PyObject_GetAttrString(summaries, attrs[i])) == NULL)
                return -1;
        }
        if (!PyDict_Check(self->s_by_type) || !PyDict_Check(self->s_fast) || !PyCallable_Check(self->s_value) ||
                !PyCallable_Check(self->s_arg_names)) {
            PyErr_SetString(PyExc_TypeError, "summaries must be tracer.record.summary: summarise, _by_type, "
                            "_fast_by_type and cached_argument_names");
            return -1;
        }
    }

    if (table_init(&self->table) < 0)
        return -1;
    Py_INCREF(events);
    self->events = events;
    Py_INCREF(codes);
    self->codes = codes;
    Py_INCREF(classify);
    self->classify = classify;
    Py_INCREF(ckey);
    self->ckey = ckey;
    Py_INCREF(summarise);
    self->summarise = summarise;
    Py_INCREF(truncate);
    self->truncate = truncate;
    if (chain != Py_None) {
        Py_INCREF(chain);
        self->chain = chain;
    }
    self->want_c = want_c;
    self->want_args = want_args;
    self->cap = cap;
    return 0;
}

static int
Profiler_traverse(Profiler *self, visitproc visit, void *arg)
{
    Py_VISIT(self->events);
    Py_VISIT(self->codes);
    Py_VISIT(self->classify);
    Py_VISIT(self->ckey);
    Py_VISIT(self->summarise);
    Py_VISIT(self->s_value);
    Py_VISIT(self->s_by_type);
    Py_VISIT(self->s_fast);
    Py_VISIT(self->s_arg_names);
    Py_VISIT(self->truncate);
    Py_VISIT(self->chain);
    return builtin_cache_traverse(&self->builtins, visit, arg);
}

static int
Profiler_clear(Profiler *self)
{
    Py_CLEAR(self->events);
    Py_CLEAR(self->codes);
    Py_CLEAR(self->classify);
    Py_CLEAR(self->ckey);
    Py_CLEAR(self->summarise);
    Py_CLEAR(self->s_value);
    Py_CLEAR(self->s_by_type);
    Py_CLEAR(self->s_fast);
    Py_CLEAR(self->s_arg_names);
    Py_CLEAR(self->truncate);
    Py_CLEAR(self->chain);
    builtin_cache_clear(&self->builtins);
    return 0;
}

static void
Profiler_dealloc(Profiler *self)
{
    PyObject_GC_UnTrack(self);
    Profiler_clear(self);
    Py_CLEAR(self->raised);
    Py_CLEAR(self->raised_here);
    table_free(&self->table);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* profiler(frame, event, arg): the same work, called the way sys.setprofile calls a function. */
static PyObject *
Profiler_call(Profiler *self, PyObject *args, PyObject *kwds)
{
    PyObject *frame, *event, *arg;
    if (!PyArg_ParseTuple(args, "O!UO:Profiler", &PyFrame_Type, &frame, &event, &arg))
        return NULL;
    if (kwds != NULL && PyDict_GET_SIZE(kwds)) {
        PyErr_SetString(PyExc_TypeError, "a Profiler takes no keyword arguments");
        return NULL;
    }
    if (self->events == NULL) {
        PyErr_SetString(PyExc_TypeError, "the Profiler was not set up");
        return NULL;
    }
    for (int what = 0; what < 8; what++) {
        if (event_names[what] != NULL && PyUnicode_Compare(event, event_names[what]) == 0) {
            if (profile((PyObject *)self, (PyFrameObject *)frame, what, arg) < 0)
                return NULL;
            break;
        }
    }
    Py_RETURN_NONE;
}

static PyObject *
Profiler_get_true(PyObject *self, void *closure)
{
    Py_RETURN_TRUE;
}

static PyObject *
Profiler_get_errors(Profiler *self, void *closure)
{
    return PyLong_FromSsize_t(self->errors);
}

static PyObject *
Profiler_get_chain(Profiler *self, void *closure)
{
    return Py_NewRef(self->chain ? self->chain : Py_None);
}

static int
Profiler_set_chain(Profiler *self, PyObject *value, void *closure)
{
    if (value != NULL && value != Py_None && !PyCallable_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "chain must be a profile function or None");
        return -1;
    }
    PyObject *old = self->chain;
    self->chain = (value == NULL || value == Py_None) ? NULL : Py_NewRef(value);
    Py_XDECREF(old);
    return 0;
}

static PyGetSetDef Profiler_getset[] = {
    {"chain", (getter)Profiler_get_chain, (setter)Profiler_set_chain,
     "the profile function fed after this one (None: none); the dispatcher relinks it as blocks start and end", NULL},
    {"_tracer_callback", Profiler_get_true, NULL, "True: a tracer's profile function, which another trace may chain", NULL},
    {"errors", (getter)Profiler_get_errors, NULL, "how many events were dropped because recording them failed", NULL},
    {NULL},
};

PyDoc_STRVAR(Profiler_doc,
"Profiler(events, codes, classify, builtin_key, summarise_frame, truncate, constants, normal_exits,\n"
"         raise_op, want_c, want_args, cap, chain=None, summaries=None)\n"
"--\n\n"
"The setprofile backend's callback in C: install() it, or call it as profiler(frame, event, arg).\n"
"constants: a mapping with CALL, RETURN, C_CALL, C_RETURN, TRUNCATED, RESUME, RAISED and\n"
"RAISED_HERE (tracer.record.events' namespace); normal_exits: the opcodes a return of None may stop\n"
"at without an unwind; raise_op: RAISE_VARARGS; chain: a profile function fed after this one;\n"
"summaries: tracer.record.summary, to summarise arguments here (else summarise_frame is called).");

static PyTypeObject Profiler_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tracer.record._fastprofile.Profiler",
    .tp_basicsize = sizeof(Profiler),
    .tp_dealloc = (destructor)Profiler_dealloc,
    .tp_call = (ternaryfunc)Profiler_call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = Profiler_doc,
    .tp_traverse = (traverseproc)Profiler_traverse,
    .tp_clear = (inquiry)Profiler_clear,
    .tp_getset = Profiler_getset,
    .tp_init = (initproc)Profiler_init,
    .tp_new = PyType_GenericNew,
};

/* -- module functions ------------------------------------------------------------------------------- */

static PyObject *
install(PyObject *module, PyObject *profiler)
{
    if (!Py_IS_TYPE(profiler, &Profiler_Type) || ((Profiler *)profiler)->events == NULL) {
        PyErr_SetString(PyExc_TypeError, "install() takes a Profiler that was set up");
        return NULL;
    }
    /* What sys.setprofile does for a Python function, audit event included; the thread state holds
     * its own reference to the profiler until the next sys.setprofile. */
    if (_PyEval_SetProfile(PyThreadState_Get(), profile, profiler) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
perf_counter_ns(PyObject *module, PyObject *unused)
{
    return PyLong_FromLongLong((long long)now_ns());
}

static PyMethodDef module_methods[] = {
    {"install", install, METH_O,
     "install(profiler): make it this thread's profile function, as sys.setprofile would; "
     "sys.setprofile(previous) takes it out."},
    {"perf_counter_ns", perf_counter_ns, METH_NOARGS, "The clock the events are stamped with: time.perf_counter_ns."},
    BUILD_CALLS_METHOD,
    CALIBRATE_CLOCK_METHOD,
    SUMMARISE_VALUES_METHOD,
    YOUNG_METHODS,
    ARENAS_METHODS,
    SLAB_METHODS,
    {NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tracer.record._fastprofile",
    .m_doc = "The setprofile backend's callback as a C profile function (Python 3.10 and 3.11).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__fastprofile(void)
{
    static const char *names[8] = {
        [PyTrace_CALL] = "call", [PyTrace_RETURN] = "return", [PyTrace_C_CALL] = "c_call",
        [PyTrace_C_RETURN] = "c_return", [PyTrace_C_EXCEPTION] = "c_exception",
    };
    if (str_name == NULL) {
        if ((str_name = PyUnicode_InternFromString("__name__")) == NULL)
            return NULL;
        for (int i = 0; i < 8; i++)
            if (names[i] != NULL && (event_names[i] = PyUnicode_InternFromString(names[i])) == NULL)
                return NULL;
    }
    if (PyType_Ready(&Profiler_Type) < 0)
        return NULL;
    clock_origin();  /* the TSC rate is measured from here */
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    Py_INCREF(&Profiler_Type);
    if (PyModule_AddObject(module, "Profiler", (PyObject *)&Profiler_Type) < 0) {
        Py_DECREF(&Profiler_Type);
        Py_DECREF(module);
        return NULL;
    }
    if (add_exit_guard(module) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
