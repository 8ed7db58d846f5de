// Open MPI, loaded at run time: Rein links no MPI library, so one build runs with and without MPI.
// `rein_mpi_load` dlopens libmpi.so.40 (Open MPI 4/5) and resolves the few calls and the globals
// behind the MPI_COMM_WORLD / MPI_FLOAT / MPI_SUM macros (addresses of `ompi_mpi_*` objects),
// which Swift cannot import as macros. Every call returns an MPI error code (0 is success).
#ifndef REIN_CMPI_SHIM_H
#define REIN_CMPI_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Loads libmpi and resolves every symbol. Returns 0, or -1 with a message in `error`.
int rein_mpi_load(char *error, size_t errorLength);
/// MPI_Init (with errors returned as codes on MPI_COMM_WORLD), rank and size of MPI_COMM_WORLD.
int rein_mpi_init(int *rank, int *size);
/// MPI_Finalize.
int rein_mpi_finalize(void);
/// MPI_Abort on MPI_COMM_WORLD: ends every process of the job.
int rein_mpi_abort(int code);
/// MPI_Barrier on MPI_COMM_WORLD.
int rein_mpi_barrier(void);
/// In-place MPI_Allreduce(MPI_SUM) of `count` floats (split into calls of at most 2^30 elements).
int rein_mpi_allreduce_sum_float(float *buffer, int64_t count);
/// In-place MPI_Allreduce of `count` doubles; `op` 0 sum, 1 max, 2 min.
int rein_mpi_allreduce_double(double *buffer, int count, int op);
/// MPI_Bcast of `bytes` bytes from `root` (split into calls of at most 2^30 bytes).
int rein_mpi_broadcast(void *buffer, int64_t bytes, int root);
/// MPI_Error_string into `text`.
void rein_mpi_error_string(int code, char *text, size_t length);
/// MPI_Wtime.
double rein_mpi_wtime(void);

#ifdef __cplusplus
}
#endif
#endif
