# C types for _scan.py in the compiled build (Cython reads this beside the .py; the .py
# stays the source and runs as it is in pure Python). Offsets are Py_ssize_t, byte
# reads C ints (Cython's bounds-checked bytes indexing: IndexError past the end, as in
# Python), and the functions but `term` C functions: no Python call per container.
# `raw` is the same bytes as a C pointer: a slice of it is one PyBytes_FromStringAndSize
# (a slice of `data` builds a slice object first: ~540 instructions instead of ~150), so
# it is only sliced after its end has been checked against the size.
cimport cython

cdef dict _PIDS
cdef dict _REFS
cdef dict _NODES

@cython.locals(tag=int, end=Py_ssize_t, items=list)
cpdef tuple term(bytes data, Py_ssize_t pos, int budget, dict cache, tuple table)

@cython.locals(value=Py_ssize_t)
cdef Py_ssize_t _u32(bytes data, Py_ssize_t pos) except? -1

@cython.locals(end=Py_ssize_t, items=list)
cdef tuple _list(bytes data, Py_ssize_t pos, int budget, dict cache, tuple table)

@cython.locals(arity=Py_ssize_t, i=Py_ssize_t, end=Py_ssize_t, items=list, result=dict)
cdef tuple _map(bytes data, Py_ssize_t pos, int budget, dict cache, tuple table)

@cython.locals(size=Py_ssize_t, end=Py_ssize_t, i=Py_ssize_t, tag=int, number=Py_ssize_t,
               items=list, raw="const unsigned char*", key=bytes)
cdef tuple _items(bytes data, Py_ssize_t pos, Py_ssize_t count, int budget, dict cache,
                  tuple table, Py_ssize_t tagpos)

@cython.locals(count=Py_ssize_t, start=Py_ssize_t, stop=Py_ssize_t, raw="const unsigned char*")
cdef object _fresh_ref(bytes data, Py_ssize_t pos, bytes key)
