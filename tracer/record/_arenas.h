/* New arenas made present in one call while build_calls builds a tree. Included by _recording.h.
 *
 * A tree is one new object per call, and a large one fills new arenas of the small-object allocator
 * (obmalloc; 1 MiB each on 64-bit builds, from mmap). The first write to each of an arena's pages is then
 * a page fault: about half of the build's time on the DataLoader workload, where the program had freed
 * the arenas it used before. While build_calls runs, the arena allocator in use is wrapped: each arena it
 * gives is made present at once by madvise(MADV_POPULATE_WRITE) (Linux 5.14 and later), one system call
 * instead of a fault per page. The memory is the same, mapped and freed by the same allocator; only when
 * its pages are made present changes. Where madvise refuses (an older kernel), the pages fault in as
 * before and the wrapper stops asking.
 *
 *   arenas_wrap()     installs the wrapper; 0 where it is installed already (a build inside a build), or
 *                     on a system without madvise: then there is nothing to undo;
 *   arenas_unwrap()   puts back the allocator it wrapped.
 *   arenas_wrapped()  (Python) whether the wrapper is installed: for the tests. */

#ifndef TRACER_ARENAS_H
#define TRACER_ARENAS_H

#if defined(__linux__)
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  /* <linux/mman.h> since 5.14; older C libraries' headers lack it */
#endif
#define TRACER_POPULATE 1
#endif

static int arenas_installed;

#ifdef TRACER_POPULATE
static PyObjectArenaAllocator arenas_before;  /* the allocator the wrapper calls, and puts back */
static int arenas_refused;                    /* madvise said EINVAL: this kernel cannot */
#endif

/* Make the whole pages of [start, start + size) present, where they are not (an arena, or memory from
 * malloc, which may be new from the system): one call instead of a fault per page. errno is left as it was. */
static void
arenas_populate(void *start, size_t size)
{
#ifdef TRACER_POPULATE
    static uintptr_t page;
    if (page == 0) {
        long found = sysconf(_SC_PAGESIZE);
        page = found > 0 ? (uintptr_t)found : 4096;
    }
    uintptr_t first = ((uintptr_t)start + page - 1) & ~(page - 1), end = ((uintptr_t)start + size) & ~(page - 1);
    if (arenas_refused || end <= first)
        return;
    int saved_errno = errno;
    if (madvise((void *)first, end - first, MADV_POPULATE_WRITE) != 0 && errno == EINVAL)
        arenas_refused = 1;  /* otherwise (no memory now): its pages fault in when written, as without us */
    errno = saved_errno;
#endif
}

#ifdef TRACER_POPULATE
static void *
arenas_alloc(void *ctx, size_t size)
{
    void *arena = arenas_before.alloc(arenas_before.ctx, size);
    if (arena != NULL)
        arenas_populate(arena, size);
    return arena;
}

static void
arenas_free(void *ctx, void *arena, size_t size)
{
    arenas_before.free(arenas_before.ctx, arena, size);
}
#endif

static int
arenas_wrap(void)
{
#ifdef TRACER_POPULATE
    if (arenas_installed || arenas_refused)
        return 0;
    PyObject_GetArenaAllocator(&arenas_before);
    PyObjectArenaAllocator wrapper = {NULL, arenas_alloc, arenas_free};
    PyObject_SetArenaAllocator(&wrapper);
    arenas_installed = 1;
    return 1;
#else
    return 0;
#endif
}

static void
arenas_unwrap(void)
{
#ifdef TRACER_POPULATE
    if (arenas_installed) {
        PyObject_SetArenaAllocator(&arenas_before);
        arenas_installed = 0;
    }
#endif
}

static PyObject *
arenas_wrapped(PyObject *module, PyObject *unused)
{
    return PyBool_FromLong(arenas_installed);
}

#define ARENAS_METHODS \
    {"arenas_wrapped", arenas_wrapped, METH_NOARGS, \
     "arenas_wrapped() -> bool: whether build_calls' arena wrapper is installed (only while it builds)."}

#endif
