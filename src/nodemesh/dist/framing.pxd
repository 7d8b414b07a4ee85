# C types for framing.py in the compiled build (see term/_scan.pxd): the split loop runs
# once per frame received. `raw` is `data` as a C pointer, sliced only within bounds.
cimport cython

@cython.locals(raw="const unsigned char*", end=Py_ssize_t, pos=Py_ssize_t, size=Py_ssize_t)
cdef Py_ssize_t _split(bytes data, list frames, Py_ssize_t limit) except -1
