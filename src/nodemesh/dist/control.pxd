# C types for control.py in the compiled build (see term/_scan.pxd): the shape of a
# message's control term is read with C offsets and bounds-checked byte reads, and its
# bytes sliced through a C pointer once within the size.
cimport cython

cdef dict _HEADS  # a C global: .get is PyDict_GetItem, not an attribute and a call

@cython.locals(size=Py_ssize_t, pos=Py_ssize_t, arity=int, op=int, raw="const unsigned char*")
cdef bytes _message_head(bytes frame)

cdef Py_ssize_t _pid_end(bytes frame, Py_ssize_t pos) except -1

cdef bytes _message_frame(bytes head, object message, object codec)
