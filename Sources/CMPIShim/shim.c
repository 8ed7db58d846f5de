#include "cmpi_shim.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

// Handles are pointers in Open MPI's ABI: the predefined communicator, datatypes, operations and
// error handlers are the addresses of exported globals.
typedef void *Handle;

static int (*p_init)(int *, char ***);
static int (*p_initialized)(int *);
static int (*p_finalize)(void);
static int (*p_abort)(Handle, int);
static int (*p_comm_rank)(Handle, int *);
static int (*p_comm_size)(Handle, int *);
static int (*p_comm_set_errhandler)(Handle, Handle);
static int (*p_barrier)(Handle);
static int (*p_allreduce)(const void *, void *, int, Handle, Handle, Handle);
static int (*p_bcast)(void *, int, Handle, int, Handle);
static int (*p_error_string)(int, char *, int *);
static double (*p_wtime)(void);

static Handle comm_world, type_float, type_double, type_byte, op_sum, op_max, op_min, errors_return;

#define IN_PLACE ((void *)1)   // Open MPI's MPI_IN_PLACE
#define CHUNK ((int64_t)1 << 30)

static void *library;

int rein_mpi_load(char *error, size_t errorLength) {
    if (library) return 0;
    const char *names[] = {"libmpi.so.40", "libmpi.so"};
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !library; i++) {
        // RTLD_GLOBAL: Open MPI's own plugins resolve libmpi's symbols from the global scope.
        library = dlopen(names[i], RTLD_NOW | RTLD_GLOBAL);
    }
    if (!library) {
        snprintf(error, errorLength, "cannot load Open MPI's libmpi.so.40 (%s); install openmpi-bin (Debian: apt-get install openmpi-bin libopenmpi-dev)", dlerror());
        return -1;
    }
    struct { void **slot; const char *name; } symbols[] = {
        {(void **)&p_init, "MPI_Init"}, {(void **)&p_initialized, "MPI_Initialized"},
        {(void **)&p_finalize, "MPI_Finalize"}, {(void **)&p_abort, "MPI_Abort"},
        {(void **)&p_comm_rank, "MPI_Comm_rank"}, {(void **)&p_comm_size, "MPI_Comm_size"},
        {(void **)&p_comm_set_errhandler, "MPI_Comm_set_errhandler"}, {(void **)&p_barrier, "MPI_Barrier"},
        {(void **)&p_allreduce, "MPI_Allreduce"}, {(void **)&p_bcast, "MPI_Bcast"},
        {(void **)&p_error_string, "MPI_Error_string"}, {(void **)&p_wtime, "MPI_Wtime"},
        {&comm_world, "ompi_mpi_comm_world"}, {&type_float, "ompi_mpi_float"}, {&type_double, "ompi_mpi_double"},
        {&type_byte, "ompi_mpi_byte"}, {&op_sum, "ompi_mpi_op_sum"}, {&op_max, "ompi_mpi_op_max"},
        {&op_min, "ompi_mpi_op_min"}, {&errors_return, "ompi_mpi_errors_return"},
    };
    for (size_t i = 0; i < sizeof symbols / sizeof symbols[0]; i++) {
        *symbols[i].slot = dlsym(library, symbols[i].name);
        if (!*symbols[i].slot) {
            snprintf(error, errorLength, "the loaded libmpi has no symbol %s: Rein needs Open MPI 4 or later", symbols[i].name);
            dlclose(library);
            library = NULL;
            return -1;
        }
    }
    return 0;
}

int rein_mpi_init(int *rank, int *size) {
    int initialized = 0, rc = p_initialized(&initialized);
    if (rc) return rc;
    if (!initialized && (rc = p_init(NULL, NULL))) return rc;
    if ((rc = p_comm_set_errhandler(comm_world, errors_return))) return rc;
    if ((rc = p_comm_rank(comm_world, rank))) return rc;
    return p_comm_size(comm_world, size);
}

int rein_mpi_finalize(void) { return p_finalize(); }
int rein_mpi_abort(int code) { return p_abort(comm_world, code); }
int rein_mpi_barrier(void) { return p_barrier(comm_world); }

int rein_mpi_allreduce_sum_float(float *buffer, int64_t count) {
    for (int64_t done = 0; done < count; done += CHUNK) {
        int64_t n = count - done < CHUNK ? count - done : CHUNK;
        int rc = p_allreduce(IN_PLACE, buffer + done, (int)n, type_float, op_sum, comm_world);
        if (rc) return rc;
    }
    return 0;
}

int rein_mpi_allreduce_double(double *buffer, int count, int op) {
    Handle o = op == 1 ? op_max : (op == 2 ? op_min : op_sum);
    return p_allreduce(IN_PLACE, buffer, count, type_double, o, comm_world);
}

int rein_mpi_broadcast(void *buffer, int64_t bytes, int root) {
    for (int64_t done = 0; done < bytes; done += CHUNK) {
        int64_t n = bytes - done < CHUNK ? bytes - done : CHUNK;
        int rc = p_bcast((char *)buffer + done, (int)n, type_byte, root, comm_world);
        if (rc) return rc;
    }
    return 0;
}

void rein_mpi_error_string(int code, char *text, size_t length) {
    int n = 0;
    if (length == 0) return;
    text[0] = 0;
    if (!p_error_string) return;
    char message[512];   // MPI_MAX_ERROR_STRING is 256 in Open MPI
    if (p_error_string(code, message, &n) == 0) snprintf(text, length, "%.*s", n, message);
}

double rein_mpi_wtime(void) { return p_wtime ? p_wtime() : 0; }
