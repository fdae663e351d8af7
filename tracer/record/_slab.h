/* The build's calls, allocated from chunks of this module's own. Included by _fastprofile.c and
 * _fastmonitor.c after the interpreter's internal headers (PyGC_Head), each function static; _recording.h
 * declares what build_calls and CallBase use.
 *
 * A tree is one Call a call, all alike in size, made together and freed together. From obmalloc each is
 * an allocation on its own, and a large tree fills arenas that obmalloc gives back to the system once the
 * tree is dropped, so that the next tree's pages come new from the kernel, zeroed (about half of a build
 * on the DataLoader workload, where the program had freed its arenas). Here the build cuts its calls from
 * chunks of 511 slots of 128 bytes (64 KiB, from PyMem_RawMalloc: the C library reuses freed chunks for
 * the next ones where it has not given them back, and tracemalloc counts them), one after the other. A
 * slot is the chunk's address, the collector's header and the object, which is made as
 * PyType_GenericAlloc makes one (zeroed, its type referenced, tracked, counted in the young generation's
 * allocations) and freed as PyObject_GC_Del frees one; CALL_SLAB in its flags sends its memory back here.
 * A chunk is done with when the last of its calls is freed, once the build is done with it: it goes to
 * the spares (up to SLAB_SPARES), for the next build, or is freed. A call the program keeps keeps its
 * parent, and so its whole tree: chunks in use hold no more than the trees alive.
 *
 * Only a large tree's calls take slots (POPULATE_MIN_EVENTS events or more: a chunk is 64 KiB), and only
 * where the type the build makes (model.Call) is the plain heap type PyType_GenericAlloc would allocate
 * (no dict, no weak references, no finaliser, fits a slot); a subclass with slots of its own, a small
 * tree's calls and every call made from Python are allocated as before.
 *
 *   slab_start(type) whether the build may cut `type`'s calls from chunks (its collector's state is
 *                    read there, once a build);
 *   slab_alloc(type) a new call from the current chunk (a new chunk where it is full), or NULL;
 *   slab_free(op)    its memory back: the chunk goes with its last call, once retired;
 *   slab_retire()    the build is done: its last chunk takes no more calls.
 *   slab_chunks()    (Python) how many chunks are in use: for the tests;
 *   spare_memory()   (Python) the bytes of the spare chunks and the event log's spare (_recording.h);
 *   release_memory() (Python) frees them, returns how many bytes. */

#ifndef TRACER_SLAB_H
#define TRACER_SLAB_H

enum { SLAB_SLOT = 128, SLAB_SLOTS = 511 };
_Static_assert(SLAB_SLOT == 8 * 16, "slab_zero writes a slot as eight 16-byte stores");

typedef struct SlabChunk {
    Py_ssize_t live;         /* its calls not freed yet */
    int used;                /* slots given out */
    int retired;             /* the build is done with it: freed when `live` comes to 0 */
    struct SlabChunk *next;  /* in the spares */
} SlabChunk;

static SlabChunk *slab_current;  /* the chunk the build cuts calls from, NULL between builds */
static Py_ssize_t slab_alive;    /* chunks allocated and not freed */

/* Chunks whose calls were all freed are kept, up to SLAB_SPARES (16 MiB), for the next build to cut its
 * calls from: their pages are present, where a chunk new from the system faults each of its 16 in (or has
 * them populated), 1.5-2 us a page where measured, and a torch-free build of 80,640 calls took some 2,000
 * such faults. As the event log's spare (_recording.h), it is what the last trace used, kept for the next
 * one; release_memory() frees it. */
enum { SLAB_SPARES = 256 };
static SlabChunk *slab_spares;
static int slab_n_spares;

#define SLAB_PREFIX (sizeof(SlabChunk *) + sizeof(PyGC_Head))
#define SLAB_CHUNK_BYTES (sizeof(SlabChunk) + (size_t)SLAB_SLOTS * SLAB_SLOT)  /* a chunk, its header included */

/* The collector's state of the interpreter that builds, read once a build (slab_start): slab_alloc links
 * each call into its young generation as _PyObject_GC_TRACK does (the same four lines on 3.10 to 3.13),
 * where PyObject_GC_Track and _PyInterpreterState_GET each looked the thread state up again, a call to
 * __tls_get_addr on 3.12 and 3.13 (54 of the build's 664 instructions a call, 3.12, torch-free workload). */
static struct _gc_runtime_state *slab_gc;

static int
slab_start(PyTypeObject *type)
{
#ifdef Py_GIL_DISABLED
    return 0;
#else
    slab_gc = &_PyInterpreterState_GET()->gc;
    unsigned long preheader = 0;
#ifdef Py_TPFLAGS_MANAGED_DICT
    preheader |= Py_TPFLAGS_MANAGED_DICT;
#endif
#ifdef Py_TPFLAGS_MANAGED_WEAKREF
    preheader |= Py_TPFLAGS_MANAGED_WEAKREF;
#endif
    return type->tp_itemsize == 0 && type->tp_dictoffset == 0 && type->tp_weaklistoffset == 0 &&
           !(type->tp_flags & preheader) && PyType_IS_GC(type) && (type->tp_flags & Py_TPFLAGS_HEAPTYPE) &&
           type->tp_alloc == PyType_GenericAlloc &&
           type->tp_free == PyObject_GC_Del && type->tp_finalize == NULL && type->tp_del == NULL &&
           SLAB_PREFIX + (size_t)type->tp_basicsize <= SLAB_SLOT;
#endif
}

static void
slab_release(SlabChunk *chunk)
{
    slab_alive--;
    if (slab_n_spares < SLAB_SPARES) {
        chunk->next = slab_spares;
        slab_spares = chunk;
        slab_n_spares++;
    }
    else
        PyMem_RawFree(chunk);
}

static void
slab_retire(void)
{
    SlabChunk *chunk = slab_current;
    slab_current = NULL;
    if (chunk == NULL)
        return;
    if (chunk->live == 0)
        slab_release(chunk);
    else
        chunk->retired = 1;
}

/* A slot zeroed with eight sixteen-byte stores, where memset of its 128 bytes compiled to a `rep stos`,
 * slow to start: the torch-free build of 80,640 calls went from 3.0 ms to 2.4-2.6 ms with this alone (3.12 on
 * an Intel Xeon, fastest of 25 builds each). */
static inline void
slab_zero(char *slot)
{
#if defined(__GNUC__) || defined(__clang__)
    typedef long long zero16 __attribute__((vector_size(16), aligned(8), may_alias));
    zero16 z = {0, 0};
    zero16 *p = (zero16 *)slot;
    p[0] = z; p[1] = z; p[2] = z; p[3] = z; p[4] = z; p[5] = z; p[6] = z; p[7] = z;
#else
    memset(slot, 0, SLAB_SLOT);
#endif
}

static PyObject *
slab_alloc(PyTypeObject *type)
{
    if (slab_current == NULL || slab_current->used == SLAB_SLOTS) {
        slab_retire();
        SlabChunk *chunk = slab_spares;
        if (chunk != NULL) {  /* present already */
            slab_spares = chunk->next;
            slab_n_spares--;
        }
        else {
            chunk = PyMem_RawMalloc(SLAB_CHUNK_BYTES);
            if (chunk == NULL)
                return PyErr_NoMemory();
            arenas_populate(chunk, SLAB_CHUNK_BYTES);
        }
        chunk->live = 0;
        chunk->used = 0;
        chunk->retired = 0;
        chunk->next = NULL;
        slab_current = chunk;
        slab_alive++;
    }
    char *slot = (char *)(slab_current + 1) + (size_t)slab_current->used++ * SLAB_SLOT;
    slab_zero(slot);
    *(SlabChunk **)slot = slab_current;
    slab_current->live++;
    PyObject *op = (PyObject *)(slot + SLAB_PREFIX);
    Py_SET_TYPE(op, type);  /* as PyObject_Init: its type referenced (a heap type), one reference */
    Py_INCREF(type);
    _Py_NewReference(op);
    ((CallBase *)op)->flags = CALL_SLAB;
    /* tracked as _PyObject_GC_TRACK tracks it (its header zeroed: no flags), then counted as
     * PyType_GenericAlloc counts it */
    PyGC_Head *gc = _Py_AS_GC(op), *generation0 = slab_gc->generation0;
    PyGC_Head *last = (PyGC_Head *)(generation0->_gc_prev);
    _PyGCHead_SET_NEXT(last, gc);
    _PyGCHead_SET_PREV(gc, last);
    _PyGCHead_SET_NEXT(gc, generation0);
    generation0->_gc_prev = (uintptr_t)gc;
    slab_gc->generations[0].count++;
    return op;
}

static void
slab_free(PyObject *op)
{
    struct _gc_runtime_state *gcstate = &_PyInterpreterState_GET()->gc;
    if (gcstate->generations[0].count > 0)  /* as PyObject_GC_Del does */
        gcstate->generations[0].count--;
    SlabChunk *chunk = *(SlabChunk **)((char *)op - SLAB_PREFIX);
    if (--chunk->live == 0 && chunk->retired)
        slab_release(chunk);
}

static PyObject *
slab_chunks(PyObject *module, PyObject *unused)
{
    return PyLong_FromSsize_t(slab_alive);
}

/* What the tracer keeps for its next trace: the event log's spare and the spare chunks, in bytes. */
static size_t
spares_bytes(void)
{
    return (size_t)log_spare_cap * sizeof(Event) +
           (size_t)slab_n_spares * SLAB_CHUNK_BYTES;
}

static PyObject *
spare_memory(PyObject *module, PyObject *unused)
{
    return PyLong_FromSize_t(spares_bytes());
}

static PyObject *
release_memory(PyObject *module, PyObject *unused)
{
    size_t bytes = spares_bytes();
    log_spare_release();
    while (slab_spares != NULL) {
        SlabChunk *chunk = slab_spares;
        slab_spares = chunk->next;
        PyMem_RawFree(chunk);
    }
    slab_n_spares = 0;
    return PyLong_FromSize_t(bytes);
}

#define SLAB_METHODS \
    {"slab_chunks", slab_chunks, METH_NOARGS, "slab_chunks() -> int: the build's chunks of calls still alive."}, \
    {"spare_memory", spare_memory, METH_NOARGS, \
     "spare_memory() -> int: bytes kept for the next trace (the largest emptied event log's array, emptied chunks)."}, \
    {"release_memory", release_memory, METH_NOARGS, \
     "release_memory() -> int: free what spare_memory() counts; returns those bytes."}

#endif
