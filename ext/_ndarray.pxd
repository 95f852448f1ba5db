# cython: language_level=3
#
# Header-only numpy helpers shared by the compiled media modules (no runtime module exists for this file). Each
# module that cimports this calls cnp.import_array() itself.

cimport numpy as cnp


cdef inline bint plain16(object a):
    """A one-dimensional, contiguous array of native int16 (what decoders and concealers give)."""
    if not cnp.PyArray_Check(a):
        return False
    cdef cnp.ndarray x = <cnp.ndarray>a
    return (cnp.PyArray_TYPE(x) == cnp.NPY_INT16 and cnp.PyArray_NDIM(x) == 1 and cnp.PyArray_ISCARRAY_RO(x)
            and cnp.PyArray_ISNOTSWAPPED(x))
