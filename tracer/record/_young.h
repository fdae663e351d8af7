/* Moving a just-built tree into the collector's oldest generation, for model.build. Included by
 * _fastprofile.c and _fastmonitor.c after the interpreter's internal headers (pycore_interp.h: the
 * generations' lists), each function static.
 *
 *   set_young_aside()    the young generation's objects are taken out of it onto a list of this module's,
 *                        so that the generation then holds only what is made afterwards: the tree;
 *   restore_young(keep)  with keep true, that is spliced into the oldest generation, as gc.freeze() then
 *                        gc.unfreeze() would move it, touching no object, and counted as survivors of a
 *                        collection (long_lived_pending) so that full collections come as they would;
 *                        with keep false it stays young. Either way the objects set aside go back, young.
 *
 * The program's young objects are left as they were (no collection is forced to make room), and the
 * frozen generation is not touched: Python 3.12 keeps immortal objects there, and the program its own.
 * While the objects are aside a collection (a finaliser's gc.collect()) does not see them: it collects
 * less, never wrongly. An object set aside that is freed meanwhile unlinks itself from the list. */

#ifndef TRACER_YOUNG_H
#define TRACER_YOUNG_H

static PyGC_Head young_aside;  /* the young generation's objects while a tree is built */
static int young_aside_count, young_is_aside;

static void
young_list_init(PyGC_Head *list)
{
    list->_gc_next = list->_gc_prev = (uintptr_t)list;
}

/* Splice the objects of list `from` onto the end of list `to` (gcmodule.c's gc_list_merge); `from` is left empty. */
static void
young_merge(PyGC_Head *from, PyGC_Head *to)
{
    PyGC_Head *first = _PyGCHead_NEXT(from);
    if (first != from) {
        PyGC_Head *last = _PyGCHead_PREV(from), *to_tail = _PyGCHead_PREV(to);
        _PyGCHead_SET_NEXT(to_tail, first);
        _PyGCHead_SET_PREV(first, to_tail);
        _PyGCHead_SET_NEXT(last, to);
        _PyGCHead_SET_PREV(to, last);
    }
    young_list_init(from);
}

static PyObject *
set_young_aside(PyObject *module, PyObject *unused)
{
    struct _gc_runtime_state *gcstate = &_PyInterpreterState_GET()->gc;
    if (young_is_aside || gcstate->collecting)
        Py_RETURN_FALSE;  /* a build inside a build (a finaliser's), or during a collection: left young */
    young_list_init(&young_aside);
    young_merge(&gcstate->generations[0].head, &young_aside);
    young_aside_count = gcstate->generations[0].count;
    gcstate->generations[0].count = 0;
    young_is_aside = 1;
    Py_RETURN_TRUE;
}

static PyObject *
restore_young(PyObject *module, PyObject *keep_obj)
{
    int keep = PyObject_IsTrue(keep_obj);
    if (keep < 0)
        return NULL;
    if (!young_is_aside) {
        PyErr_SetString(PyExc_RuntimeError, "restore_young: nothing was set aside (call set_young_aside first)");
        return NULL;
    }
    struct _gc_runtime_state *gcstate = &_PyInterpreterState_GET()->gc;
    PyGC_Head *young = &gcstate->generations[0].head;
    if (keep && !gcstate->collecting) {
        int made = gcstate->generations[0].count;
        young_merge(young, &gcstate->generations[NUM_GENERATIONS - 1].head);
        gcstate->generations[0].count = 0;
        if (made > 0)
            gcstate->long_lived_pending += made;
    }
    /* the program's young objects go back in front of whatever is young now (nothing, where spliced) */
    PyGC_Head rest;
    young_list_init(&rest);
    young_merge(young, &rest);
    young_merge(&young_aside, young);
    young_merge(&rest, young);
    gcstate->generations[0].count += young_aside_count;
    young_is_aside = 0;
    Py_RETURN_NONE;
}

#define YOUNG_METHODS \
    {"set_young_aside", set_young_aside, METH_NOARGS, \
     "set_young_aside() -> bool: the young generation's objects set aside, so that it holds only what is made next."}, \
    {"restore_young", restore_young, METH_O, \
     "restore_young(keep): what was made since set_young_aside joins the oldest generation (keep) or stays young; " \
     "the objects set aside are young again."}

#endif
