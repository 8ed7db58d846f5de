#ifndef REIN_COPENBLAS_SHIM_H
#define REIN_COPENBLAS_SHIM_H
#include <cblas.h>
// OpenBLAS extensions declared by its cblas.h; repeated here for the reader:
//   void openblas_set_num_threads(int), int openblas_get_num_threads(void),
//   char *openblas_get_corename(void), char *openblas_get_config(void).

// A software prefetch (read, keep in all cache levels) for the streaming kernels: Swift has no
// prefetch intrinsic, and a plain load that misses would stall the kernel. Inlined by the compiler.
static inline void rein_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }
#endif
