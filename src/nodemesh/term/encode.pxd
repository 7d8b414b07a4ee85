# C types for encode.py in the compiled build (see _scan.pxd; the .py stays the source and
# runs as it is in pure Python): the tables of kept encodings are C globals of their
# Python types (a lookup is PyDict_GetItem / a tuple index, not a global name and an
# attribute), `out` is a list (append is PyList_Append) and sizes and depths C integers.
cimport cython

cdef dict _ATOMS
cdef tuple _SMALL_INTS
cdef tuple _SMALL_TUPLES
cdef tuple _BINARY_HEADS
cdef dict _LEAVES
cdef dict _NESTED

@cython.locals(size=Py_ssize_t)
cpdef _write_all(object terms, list out, int depth, bytes none)
