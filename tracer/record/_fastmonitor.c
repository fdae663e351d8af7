/* The sys.monitoring backend's callbacks in C, for Python 3.12 and 3.13.
 *
 * monitoring.py's `_make_callbacks` builds Python functions that sys.monitoring calls on every start,
 * resume, return, yield, unwind and throw of the traced block (and, for the builtin layer, every call
 * made by kept code); the Python frame each such call runs costs more than a whole C tracer. A
 * Monitor does the same work in C and appends exactly the same events (kind, what, time_ns, extra)
 * to the same EventLog (_recording.h), where the Python callbacks append them as 4-tuples. Its bound
 * methods are the callbacks to register with sys.monitoring.register_callback; `monitor.callbacks()`
 * gives them keyed by event name, as `_make_callbacks` does:
 *
 *   PY_START   (CALL, code, t, summaries or None)      a function starts
 *              (TRUNCATED, code, t, None), then truncate()   at the cap
 *   PY_RESUME  (RESUME, code, t, None)                 a generator goes on (TRUNCATED at the cap)
 *   PY_RETURN, PY_YIELD   (RETURN, code, t, None)
 *   PY_UNWIND  (RETURN, code, t, type(exception).__name__)
 *   PY_THROW   (RESUME, code, t, None)
 *   CALL       (C_CALL, key, t, None)                  key = builtin_key(func), when not None
 *   C_RETURN   (C_RETURN, key, t, None)    and C_RAISE (C_RETURN, key, t, RAISED)
 *
 * Only code objects in the include set are recorded; `classify(code, module_name)` decides, once per
 * code object, and fills the `codes` dict (id(code) -> bool) that is the one record of its decisions.
 * Code that is not kept gets DISABLE where the event allows it (not PY_UNWIND, PY_THROW, C_RETURN,
 * C_RAISE), so after warm-up it costs nothing. As in _fastprofile.c, a CodeTable (_recording.h) in front of
 * that dict makes the common case cost no allocation; it holds a reference to each code object it
 * names, so no id is reused meanwhile, and it also keeps each kept code object's argument names.
 *
 * Events of other threads are not recorded; PY_START and PY_RESUME of kept code count them in
 * `other_thread_events`, which the Python side adds to the Recording's after stop.
 *
 * The arguments (want_args) are summarise_frame(code, frame.f_locals) computed without building
 * f_locals: for each name of arg_names(code) (cached per code object), the value is read from the
 * interpreter frame's fast locals (or, where the current frame is not the one starting, with
 * PyFrame_GetVar; unbound: None, as `name in f_locals` is false), and summarised as summary.summarise
 * does (summarise_value in _recording.h: the common types without calling Python, then the function
 * `by_type[type(value)]`, else summarise(value), which fills by_type).
 *
 * Times come from the clock of time.perf_counter_ns (_PyTime_GetPerfCounter on 3.12,
 * PyTime_PerfCounterRaw on 3.13), so they compare with the Recording's start and stop stamps.
 *
 * An error inside a callback (in classify, builtin_key, summarise, arg_names, truncate, or memory)
 * must never break the traced program: sys.monitoring would raise it in the traced frame. An
 * Exception is therefore cleared, counted in the Monitor's `errors`, and the event is not recorded
 * (and nothing is disabled). A BaseException that is not an Exception (KeyboardInterrupt while a
 * Python helper ran, SystemExit) is let through to the program, as the Python callbacks would.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "_recording.h"
#include <frameobject.h>
#include <pythread.h>
/* The interpreter frame's layout, to read a starting frame's arguments without making it a frame object
 * (PyEval_GetFrame would) nor looking each up by name: see current_arguments. */
#define Py_BUILD_CORE 1
#include <internal/pycore_frame.h>
#include <internal/pycore_code.h>
/* The collector's generations, for _young.h. 3.12's cpython/objimpl.h defines _PyGC_FINALIZED as a macro
 * that pycore_gc.h then declares as a function. */
#undef _PyGC_FINALIZED
#include <internal/pycore_interp.h>
#include <internal/pycore_pystate.h>
#undef Py_BUILD_CORE
#include "_young.h"
#include "_slab.h"

#if PY_VERSION_HEX < 0x030C0000 || PY_VERSION_HEX >= 0x030E0000
#error "_fastmonitor is for Python 3.12 and 3.13: 3.10 and 3.11 record with setprofile"
#endif
#ifdef Py_GIL_DISABLED
#error "_fastmonitor needs the GIL: its code table is not safe on a free-threaded build"
#endif

/* -- the recorder's state ----------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *events;       /* the Recording's EventLog */
    PyObject *codes;        /* id(code) -> bool, filled by classify */
    PyObject *classify;     /* classify(code, module_name) -> bool */
    PyObject *ckey;         /* builtin_key(func) -> (module, name) or None */
    PyObject *summarise;    /* summarise(value) -> str */
    PyObject *by_type;      /* type -> its summariser (summary._by_type), or NULL */
    PyObject *fast;         /* summary._fast_by_type, or NULL: see summarise_value */
    PyObject *arg_names;    /* arg_names(code) -> tuple of the parameter names */
    PyObject *truncate;     /* called once the cap is reached */
    PyObject *disable;      /* sys.monitoring.DISABLE */
    PyObject *c_types;      /* a tuple of the C function types the builtin layer keeps */
    long k_call, k_return, k_c_call, k_c_return, k_truncated, k_resume;  /* event kinds */
    PyObject *raised;
    unsigned long thread;   /* the recording thread's ident */
    int want_c;             /* the builtin layer: record C calls */
    int want_args;          /* summarise the arguments of each call */
    Py_ssize_t cap;         /* max_events */
    Py_ssize_t errors;      /* events dropped because the callback failed */
    Py_ssize_t other_thread_events;
    CodeTable table;        /* code object -> keep, in front of `codes` */
    BuiltinCache builtins;  /* builtin_key's answers, in front of `ckey` */
} Monitor;

static PyTypeObject Monitor_Type;
static PyObject *missing;   /* sys.monitoring.MISSING: a CALL with no arguments */

/* Whether to keep `code`, classifying it on first sight with the current frame's module (the frame
 * the event is about: a C callback runs no frame of its own): 1, 0, or -1 on an error. */
static int
code_keep(Monitor *self, PyObject *code)
{
    int keep = table_known(&self->table, self->codes, code);
    if (keep != -2)
        return keep;
    /* sys._getframe(1).f_globals.get("__name__") in the Python callback */
    PyObject *globals = PyEval_GetGlobals();  /* borrowed */
    PyObject *module = NULL;
    if (globals != NULL && PyDict_Check(globals)) {
        module = PyDict_GetItemWithError(globals, str_name);  /* borrowed */
        if (module == NULL && PyErr_Occurred())
            return -1;
    }
    Py_XINCREF(module);
    PyObject *result = PyObject_CallFunctionObjArgs(self->classify, code, module ? module : Py_None, NULL);
    Py_XDECREF(module);
    if (result == NULL)
        return -1;
    keep = PyObject_IsTrue(result);
    Py_DECREF(result);
    if (keep < 0 || table_remember(&self->table, code, keep) < 0)
        return -1;
    return keep;
}

/* -- argument summaries ----------------------------------------------------------------------------- */

/* The fast locals of the frame that starts running `code`, NULL if the current frame is another's. A C
 * callback runs no frame of its own, so the current one is the frame the event is about; its first
 * fast locals are its arguments, in the order of co_varnames. */
static PyObject **
current_arguments(PyObject *code)
{
    PyThreadState *tstate = PyThreadState_Get();
#if PY_VERSION_HEX >= 0x030D0000
    _PyInterpreterFrame *frame = tstate->current_frame;
    if (frame == NULL || frame->f_executable != code)
        return NULL;
#else
    _PyInterpreterFrame *frame = tstate->cframe == NULL ? NULL : tstate->cframe->current_frame;
    if (frame == NULL || (PyObject *)frame->f_code != code)
        return NULL;
#endif
    return frame->localsplus;
}

/* summarise_frame(code, frame.f_locals): the summaries in the order of the argument names, None for an
 * unbound one, as an array (*array, *count: see log_push_args). 0, or -1 with an error set. */
static int
summarise_frame(Monitor *self, PyObject *code, PyObject ***array, Py_ssize_t *count)
{
    PyObject *names = table_arg_names(&self->table, code, self->arg_names);
    if (names == NULL)
        return -1;
    Py_INCREF(names);
    Py_ssize_t n = PyTuple_GET_SIZE(names), filled = 0;
    PyObject **out = args_new(n);
    if (out == NULL)
        goto error;
    PyObject **locals = current_arguments(code);
    PyCodeObject *co = (PyCodeObject *)code;
    PyFrameObject *frame = NULL;
    if (n > 0 && (locals == NULL || n > co->co_nlocalsplus)) {
        frame = PyEval_GetFrame();  /* borrowed: the frame that starts */
        if (frame == NULL) {
            PyErr_SetString(PyExc_RuntimeError, "no current frame");
            goto error;
        }
    }
    for (; filled < n; filled++) {
        PyObject *value, *text;
        if (frame == NULL) {
            /* MAKE_CELL runs before RESUME, where PY_START is: a cell argument's value is in its cell */
            value = locals[filled];
            if (value != NULL && (_PyLocals_GetKind(co->co_localspluskinds, (int)filled) & CO_FAST_CELL) &&
                    PyCell_Check(value))
                value = PyCell_GET(value);
            Py_XINCREF(value);  /* a summariser may run Python code */
        }
        else if ((value = PyFrame_GetVar(frame, PyTuple_GET_ITEM(names, filled))) == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_NameError))
                goto error;
            PyErr_Clear();
        }
        if (value == NULL)
            text = Py_NewRef(Py_None);  /* unbound: not in f_locals */
        else {
            text = summarise_value(self->summarise, self->by_type, self->fast, value);
            Py_DECREF(value);
            if (text == NULL)
                goto error;
        }
        out[filled] = text;
    }
    Py_DECREF(names);
    *array = out;
    *count = n;
    return 0;
error:
    if (out != NULL)
        args_free(out, filled);
    Py_DECREF(names);
    return -1;
}

/* -- the events ------------------------------------------------------------------------------------- */

#define DISABLE_EVENT 1  /* a callback's result: return sys.monitoring.DISABLE */

/* PY_START (resumed = 0) and PY_RESUME (resumed = 1). */
static int
on_open(Monitor *self, PyObject *code, int resumed)
{
    int keep = code_keep(self, code);
    if (keep <= 0)
        return keep < 0 ? -1 : DISABLE_EVENT;
    if (PyThread_get_thread_ident() != self->thread) {
        self->other_thread_events++;
        return 0;
    }
    if (LOG_SIZE(self->events) >= self->cap) {
        if (record_event(self->events, self->k_truncated, code, now_ns(), Py_None) < 0)
            return -1;
        Py_INCREF(self);  /* truncate() may drop the last reference to these callbacks */
        PyObject *done = PyObject_CallNoArgs(self->truncate);
        Py_DECREF(self);
        Py_XDECREF(done);
        return done == NULL ? -1 : 0;
    }
    long long t = now_ns();
    if (resumed || !self->want_args)
        return record_event(self->events, resumed ? self->k_resume : self->k_call, code, t, Py_None);
    PyObject **args = NULL;
    Py_ssize_t count = 0;
    if (summarise_frame(self, code, &args, &count) < 0)
        return -1;
    return log_push_args((EventLog *)self->events, self->k_call, code, t, args, count);
}

/* PY_RETURN and PY_YIELD. */
static int
on_finish(Monitor *self, PyObject *code)
{
    int keep = code_keep(self, code);
    if (keep <= 0)
        return keep < 0 ? -1 : DISABLE_EVENT;
    if (PyThread_get_thread_ident() != self->thread)
        return 0;
    return record_event(self->events, self->k_return, code, now_ns(), Py_None);
}

/* PY_UNWIND (unwind = 1) and PY_THROW (0): not local events, so never DISABLE. */
static int
on_unwind_or_throw(Monitor *self, PyObject *code, PyObject *exception, int unwind)
{
    int keep = table_known(&self->table, self->codes, code);
    if (keep == -1)
        return -1;
    if (keep != 1 || PyThread_get_thread_ident() != self->thread)
        return 0;
    if (!unwind)
        return record_event(self->events, self->k_resume, code, now_ns(), Py_None);
    long long t = now_ns();
    PyObject *name = PyObject_GetAttr((PyObject *)Py_TYPE(exception), str_name);
    if (name == NULL)
        return -1;
    int rc = record_event(self->events, self->k_return, code, t, name);
    Py_DECREF(name);
    return rc;
}

static int
is_c_function(Monitor *self, PyObject *func)
{
    PyObject *kind = (PyObject *)Py_TYPE(func);
    Py_ssize_t n = PyTuple_GET_SIZE(self->c_types);
    for (Py_ssize_t i = 0; i < n; i++)
        if (PyTuple_GET_ITEM(self->c_types, i) == kind)
            return 1;
    return 0;
}

/* builtin_key of the C function called. CALL hands a C method's descriptor (dict.get) and its instance
 * (arg0) apart: bound, they are what setprofile sees, and the method is filed under the instance's
 * class (monitoring.bound_method in the Python callbacks). */
static PyObject *
c_function_key(Monitor *self, PyObject *func, PyObject *arg0)
{
    if (Py_IS_TYPE(func, &PyMethodDescr_Type) && arg0 != missing) {
        PyMethodDescrObject *descr = (PyMethodDescrObject *)func;
        if (PyObject_TypeCheck(arg0, descr->d_common.d_type)) {  /* it binds: the answer may be known */
            PyObject *known = builtin_key_known(&self->builtins, descr->d_method, arg0);
            if (known != NULL)
                return Py_NewRef(known);
        }
        PyObject *bound = Py_TYPE(func)->tp_descr_get(func, arg0, (PyObject *)Py_TYPE(arg0));
        if (bound != NULL) {
            PyObject *key = PyCFunction_Check(bound) ?
                builtin_key_cached(&self->builtins, self->ckey, descr->d_method, arg0, bound) :
                PyObject_CallOneArg(self->ckey, bound);
            Py_DECREF(bound);
            return key;
        }
        if (!PyErr_ExceptionMatches(PyExc_Exception))
            return NULL;
        PyErr_Clear();  /* not an instance of the descriptor's class: the call itself will raise */
    }
    if (PyCFunction_Check(func))
        return builtin_key_cached(&self->builtins, self->ckey, ((PyCFunctionObject *)func)->m_ml,
                                  ((PyCFunctionObject *)func)->m_self, func);
    return PyObject_CallOneArg(self->ckey, func);
}

/* CALL (what = 0), C_RETURN (1) and C_RAISE (2). */
static int
on_c_event(Monitor *self, PyObject *code, PyObject *func, PyObject *arg0, int what)
{
    int keep;
    if (what == 0) {
        keep = table_known(&self->table, self->codes, code);
        if (keep == -1)
            return -1;
        if (keep != 1)
            return DISABLE_EVENT;
        if (!is_c_function(self, func) || PyThread_get_thread_ident() != self->thread)
            return 0;
    }
    else {
        if (!is_c_function(self, func))
            return 0;
        keep = table_known(&self->table, self->codes, code);
        if (keep == -1)
            return -1;
        if (keep != 1 || PyThread_get_thread_ident() != self->thread)
            return 0;
    }
    PyObject *key = c_function_key(self, func, arg0);
    if (key == NULL)
        return -1;
    int rc = 0;
    if (key != Py_None) {
        if (what == 0)
            rc = record_event(self->events, self->k_c_call, key, now_ns(), Py_None);
        else
            rc = record_event(self->events, self->k_c_return, key, now_ns(), what == 2 ? self->raised : Py_None);
    }
    Py_DECREF(key);
    return rc;
}

/* -- the callbacks ---------------------------------------------------------------------------------- */

/* What a callback returns for `rc`: DISABLE, None, or None after swallowing an Exception (see the top). */
static PyObject *
result(Monitor *self, int rc)
{
    if (rc == DISABLE_EVENT)
        return Py_NewRef(self->disable);
    if (rc < 0) {
        if (!PyErr_ExceptionMatches(PyExc_Exception))
            return NULL;
        PyErr_Clear();
        self->errors++;
    }
    Py_RETURN_NONE;
}

static int
check_args(Monitor *self, const char *name, PyObject *const *args, Py_ssize_t nargs, Py_ssize_t expected)
{
    if (nargs != expected) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)", name, expected, nargs);
        return -1;
    }
    if (!PyCode_Check(args[0])) {
        PyErr_Format(PyExc_TypeError, "%s(): the first argument must be a code object, not %.100s", name,
                     Py_TYPE(args[0])->tp_name);
        return -1;
    }
    if (self->events == NULL) {  /* never set up, or emptied by the garbage collector's tp_clear */
        PyErr_Format(PyExc_TypeError, "%s(): the Monitor is not set up", name);
        return -1;
    }
    return 0;
}

static PyObject *
Monitor_py_start(Monitor *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_args(self, "py_start", args, nargs, 2) < 0)
        return NULL;
    return result(self, on_open(self, args[0], 0));
}

static PyObject *
Monitor_py_resume(Monitor *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_args(self, "py_resume", args, nargs, 2) < 0)
        return NULL;
    return result(self, on_open(self, args[0], 1));
}

static PyObject *
Monitor_py_return(Monitor *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_args(self, "py_return", args, nargs, 3) < 0)
        return NULL;
    return result(self, on_finish(self, args[0]));
}

static PyObject *
Monitor_py_unwind(Monitor *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_args(self, "py_unwind", args, nargs, 3) < 0)
        return NULL;
    return result(self, on_unwind_or_throw(self, args[0], args[2], 1));
}

static PyObject *
Monitor_py_throw(Monitor *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_args(self, "py_throw", args, nargs, 3) < 0)
        return NULL;
    return result(self, on_unwind_or_throw(self, args[0], args[2], 0));
}

static PyObject *
Monitor_call(Monitor *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_args(self, "call", args, nargs, 4) < 0)
        return NULL;
    return result(self, on_c_event(self, args[0], args[2], args[3], 0));
}

static PyObject *
Monitor_c_return(Monitor *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_args(self, "c_return", args, nargs, 4) < 0)
        return NULL;
    return result(self, on_c_event(self, args[0], args[2], args[3], 1));
}

static PyObject *
Monitor_c_raise(Monitor *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_args(self, "c_raise", args, nargs, 4) < 0)
        return NULL;
    return result(self, on_c_event(self, args[0], args[2], args[3], 2));
}

/* monitor.callbacks(): {event name: bound method}, what _make_callbacks returns. */
static PyObject *
Monitor_callbacks(Monitor *self, PyObject *unused)
{
    static const char *pairs[][2] = {
        {"PY_START", "py_start"}, {"PY_RESUME", "py_resume"}, {"PY_RETURN", "py_return"},
        {"PY_YIELD", "py_return"}, {"PY_UNWIND", "py_unwind"}, {"PY_THROW", "py_throw"},
        {"CALL", "call"}, {"C_RETURN", "c_return"}, {"C_RAISE", "c_raise"},
    };
    if (self->events == NULL) {
        PyErr_SetString(PyExc_TypeError, "the Monitor is not set up");
        return NULL;
    }
    PyObject *out = PyDict_New();
    if (out == NULL)
        return NULL;
    int n = self->want_c ? 9 : 6;
    for (int i = 0; i < n; i++) {
        PyObject *fn = PyObject_GetAttrString((PyObject *)self, pairs[i][1]);
        if (fn == NULL || PyDict_SetItemString(out, pairs[i][0], fn) < 0) {
            Py_XDECREF(fn);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(fn);
    }
    return out;
}

/* -- the Monitor type ------------------------------------------------------------------------------- */

static int
Monitor_init(Monitor *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"events", "codes", "classify", "builtin_key", "summarise", "by_type",
                             "arg_names", "truncate", "constants", "disable", "c_types", "thread",
                             "want_c", "want_args", "cap", "fast", NULL};
    PyObject *events, *codes, *classify, *ckey, *summarise, *by_type, *arg_names, *truncate, *constants;
    PyObject *disable, *c_types, *fast = Py_None;
    unsigned long long thread;
    int want_c, want_args;
    Py_ssize_t cap;
    if (self->events != NULL) {
        PyErr_SetString(PyExc_TypeError, "a Monitor is set up once");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!OOOOOOOOO!Kppn|O:Monitor", kwlist,
                                     &EventLog_Type, &events, &PyDict_Type, &codes, &classify, &ckey,
                                     &summarise, &by_type, &arg_names, &truncate, &constants, &disable,
                                     &PyTuple_Type, &c_types, &thread, &want_c, &want_args, &cap, &fast))
        return -1;
    if (!PyCallable_Check(classify) || !PyCallable_Check(ckey) || !PyCallable_Check(summarise) ||
            !PyCallable_Check(arg_names) || !PyCallable_Check(truncate)) {
        PyErr_SetString(PyExc_TypeError, "classify, builtin_key, summarise, arg_names and truncate must be callable");
        return -1;
    }
    if (by_type != Py_None && !PyDict_Check(by_type)) {
        PyErr_SetString(PyExc_TypeError, "by_type must be a dict (summary._by_type) or None");
        return -1;
    }
    if (fast != Py_None && !PyDict_Check(fast)) {
        PyErr_SetString(PyExc_TypeError, "fast must be a dict (summary._fast_by_type) or None");
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(c_types); i++) {
        if (!PyType_Check(PyTuple_GET_ITEM(c_types, i))) {
            PyErr_SetString(PyExc_TypeError, "c_types must be a tuple of types");
            return -1;
        }
    }

    long *kinds[6] = {&self->k_call, &self->k_return, &self->k_c_call, &self->k_c_return, &self->k_truncated,
                      &self->k_resume};
    if (event_kinds(constants, kinds) < 0)
        return -1;
    Py_CLEAR(self->raised);  /* from an earlier __init__ that failed after this point */
    if ((self->raised = lookup_constant(constants, "RAISED")) == NULL)
        return -1;

    if (table_init(&self->table) < 0)
        return -1;
    self->events = Py_NewRef(events);
    self->codes = Py_NewRef(codes);
    self->classify = Py_NewRef(classify);
    self->ckey = Py_NewRef(ckey);
    self->summarise = Py_NewRef(summarise);
    self->by_type = by_type == Py_None ? NULL : Py_NewRef(by_type);
    self->fast = fast == Py_None ? NULL : Py_NewRef(fast);
    self->arg_names = Py_NewRef(arg_names);
    self->truncate = Py_NewRef(truncate);
    self->disable = Py_NewRef(disable);
    self->c_types = Py_NewRef(c_types);
    self->thread = (unsigned long)thread;
    self->want_c = want_c;
    self->want_args = want_args;
    self->cap = cap;
    return 0;
}

static int
Monitor_traverse(Monitor *self, visitproc visit, void *arg)
{
    Py_VISIT(self->events);
    Py_VISIT(self->codes);
    Py_VISIT(self->classify);
    Py_VISIT(self->ckey);
    Py_VISIT(self->summarise);
    Py_VISIT(self->by_type);
    Py_VISIT(self->fast);
    Py_VISIT(self->arg_names);
    Py_VISIT(self->truncate);
    Py_VISIT(self->disable);
    Py_VISIT(self->c_types);
    return builtin_cache_traverse(&self->builtins, visit, arg);
}

static int
Monitor_clear(Monitor *self)
{
    Py_CLEAR(self->events);
    Py_CLEAR(self->codes);
    Py_CLEAR(self->classify);
    Py_CLEAR(self->ckey);
    Py_CLEAR(self->summarise);
    Py_CLEAR(self->by_type);
    Py_CLEAR(self->fast);
    Py_CLEAR(self->arg_names);
    Py_CLEAR(self->truncate);
    Py_CLEAR(self->disable);
    Py_CLEAR(self->c_types);
    builtin_cache_clear(&self->builtins);
    return 0;
}

static void
Monitor_dealloc(Monitor *self)
{
    PyObject_GC_UnTrack(self);
    Monitor_clear(self);
    Py_CLEAR(self->raised);
    table_free(&self->table);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Monitor_get_errors(Monitor *self, void *closure)
{
    return PyLong_FromSsize_t(self->errors);
}

static PyObject *
Monitor_get_other_thread_events(Monitor *self, void *closure)
{
    return PyLong_FromSsize_t(self->other_thread_events);
}

static PyGetSetDef Monitor_getset[] = {
    {"errors", (getter)Monitor_get_errors, NULL, "how many events were dropped because recording them failed", NULL},
    {"other_thread_events", (getter)Monitor_get_other_thread_events, NULL,
     "how many starts and resumes of kept code ran on other threads (not recorded)", NULL},
    {NULL},
};

static PyMethodDef Monitor_methods[] = {
    {"py_start", (PyCFunction)(void (*)(void))Monitor_py_start, METH_FASTCALL, "PY_START(code, offset)"},
    {"py_resume", (PyCFunction)(void (*)(void))Monitor_py_resume, METH_FASTCALL, "PY_RESUME(code, offset)"},
    {"py_return", (PyCFunction)(void (*)(void))Monitor_py_return, METH_FASTCALL,
     "PY_RETURN and PY_YIELD(code, offset, value)"},
    {"py_unwind", (PyCFunction)(void (*)(void))Monitor_py_unwind, METH_FASTCALL, "PY_UNWIND(code, offset, exception)"},
    {"py_throw", (PyCFunction)(void (*)(void))Monitor_py_throw, METH_FASTCALL, "PY_THROW(code, offset, exception)"},
    {"call", (PyCFunction)(void (*)(void))Monitor_call, METH_FASTCALL, "CALL(code, offset, callable, arg0)"},
    {"c_return", (PyCFunction)(void (*)(void))Monitor_c_return, METH_FASTCALL, "C_RETURN(code, offset, callable, arg0)"},
    {"c_raise", (PyCFunction)(void (*)(void))Monitor_c_raise, METH_FASTCALL, "C_RAISE(code, offset, callable, arg0)"},
    {"callbacks", (PyCFunction)Monitor_callbacks, METH_NOARGS,
     "callbacks() -> {event name: callback}: the events to register, CALL, C_RETURN and C_RAISE only with want_c"},
    {NULL},
};

PyDoc_STRVAR(Monitor_doc,
"Monitor(events, codes, classify, builtin_key, summarise, by_type, arg_names, truncate, constants,\n"
"        disable, c_types, thread, want_c, want_args, cap, fast=None)\n"
"--\n\n"
"The sys.monitoring backend's callbacks in C: register each of callbacks() for its event.\n"
"summarise: summary.summarise; by_type: summary._by_type (or None); arg_names(code): the parameter\n"
"names, as summary.argument_names; fast: summary._fast_by_type (or None); constants: a mapping with CALL, RETURN, C_CALL, C_RETURN,\n"
"TRUNCATED, RESUME and RAISED (tracer.record.events' namespace); disable: sys.monitoring.DISABLE;\n"
"c_types: the C function types the builtin layer keeps; thread: threading.get_ident() of the\n"
"recording thread. After the recording, add other_thread_events to the Recording's, and report errors.");

static PyTypeObject Monitor_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tracer.record._fastmonitor.Monitor",
    .tp_basicsize = sizeof(Monitor),
    .tp_dealloc = (destructor)Monitor_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = Monitor_doc,
    .tp_traverse = (traverseproc)Monitor_traverse,
    .tp_clear = (inquiry)Monitor_clear,
    .tp_methods = Monitor_methods,
    .tp_getset = Monitor_getset,
    .tp_init = (initproc)Monitor_init,
    .tp_new = PyType_GenericNew,
};

/* -- the module ------------------------------------------------------------------------------------- */

static PyObject *
perf_counter_ns(PyObject *module, PyObject *unused)
{
    return PyLong_FromLongLong(now_ns());
}

static PyMethodDef module_methods[] = {
    {"perf_counter_ns", perf_counter_ns, METH_NOARGS, "The clock the events are stamped with: time.perf_counter_ns."},
    BUILD_CALLS_METHOD,
    CALIBRATE_CLOCK_METHOD,
    YOUNG_METHODS,
    ARENAS_METHODS,
    SLAB_METHODS,
    SUMMARISE_VALUES_METHOD,
    {NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tracer.record._fastmonitor",
    .m_doc = "The sys.monitoring backend's callbacks in C (Python 3.12 and 3.13).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__fastmonitor(void)
{
    if (str_name == NULL && (str_name = PyUnicode_InternFromString("__name__")) == NULL)
        return NULL;
    if (missing == NULL) {
        PyObject *monitoring = PySys_GetObject("monitoring");  /* borrowed */
        if (monitoring == NULL) {
            PyErr_SetString(PyExc_ImportError, "sys.monitoring is missing");
            return NULL;
        }
        if ((missing = PyObject_GetAttrString(monitoring, "MISSING")) == NULL)
            return NULL;
    }
    if (PyType_Ready(&Monitor_Type) < 0)
        return NULL;
    clock_origin();  /* the TSC rate is measured from here */
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    Py_INCREF(&Monitor_Type);
    if (PyModule_AddObject(module, "Monitor", (PyObject *)&Monitor_Type) < 0) {
        Py_DECREF(&Monitor_Type);
        Py_DECREF(module);
        return NULL;
    }
    if (add_exit_guard(module) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
