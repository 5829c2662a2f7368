/* OpenBLAS's CBLAS interface: the fp32 baseline of `bitnet bench kernels`.
 * Debian's libopenblas-dev puts cblas.h under an alternatives directory that
 * pkg-config (openblas.pc) adds to the include path. */
#include <cblas.h>
