// The thin layer between Swift and Open MPI. Open MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_IN_PLACE, ...) are
// macros over global symbols, which Swift cannot import, so each call Finch makes is a small inline function here.
// Everything works on MPI_COMM_WORLD; FinchDistributed is the only Swift code that imports this module.
#include <mpi.h>
#include <stdint.h>

static inline int finch_mpi_initialized(void) { int flag = 0; MPI_Initialized(&flag); return flag; }
static inline int finch_mpi_finalized(void) { int flag = 0; MPI_Finalized(&flag); return flag; }

// One thread calls MPI (the trainer's); the compute threads never do. Errors return codes instead of aborting, so
// Finch can say what failed.
static inline int finch_mpi_init(void) {
    int provided = 0;
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc == MPI_SUCCESS) MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    return rc;
}
static inline int finch_mpi_finalize(void) { return MPI_Finalize(); }
static inline int finch_mpi_rank(void) { int r = 0; MPI_Comm_rank(MPI_COMM_WORLD, &r); return r; }
static inline int finch_mpi_size(void) { int s = 1; MPI_Comm_size(MPI_COMM_WORLD, &s); return s; }
static inline void finch_mpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }
static inline void finch_mpi_error_string(int code, char *out, int capacity) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) len = 0;
    if (len >= capacity) len = capacity - 1;
    for (int i = 0; i < len; i++) out[i] = text[i];
    out[len] = 0;
}

// Element-wise sum registered as NOT commutative: MPI then combines the ranks' buffers in rank order
// (x0 + x1 + ... + x(n-1)), so a float sum rounds the same way in every run of the same rank count.
static inline void finch_ordered_sum(void *in, void *inout, int *len, MPI_Datatype *type) {
    if (*type == MPI_DOUBLE) {
        const double *a = (const double *)in; double *b = (double *)inout;
        for (int i = 0; i < *len; i++) b[i] = a[i] + b[i];
    } else {
        const float *a = (const float *)in; float *b = (float *)inout;
        for (int i = 0; i < *len; i++) b[i] = a[i] + b[i];
    }
}
static inline int finch_mpi_ordered_sum_create(MPI_Op *op) { return MPI_Op_create(&finch_ordered_sum, 0, op); }

// Non-blocking collectives (the caller polls them with finch_mpi_test, so it can give up after a timeout).
static inline int finch_mpi_iallreduce_f32(float *buffer, int count, MPI_Op op, MPI_Request *request) {
    return MPI_Iallreduce(MPI_IN_PLACE, buffer, count, MPI_FLOAT, op, MPI_COMM_WORLD, request);
}
static inline int finch_mpi_iallreduce_f64(double *buffer, int count, MPI_Op op, MPI_Request *request) {
    return MPI_Iallreduce(MPI_IN_PLACE, buffer, count, MPI_DOUBLE, op, MPI_COMM_WORLD, request);
}
static inline int finch_mpi_iallreduce_i64_sum(int64_t *buffer, int count, MPI_Request *request) {
    return MPI_Iallreduce(MPI_IN_PLACE, buffer, count, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD, request);
}
static inline int finch_mpi_iallgather_bytes(const void *mine, void *all, int bytes, MPI_Request *request) {
    return MPI_Iallgather(mine, bytes, MPI_BYTE, all, bytes, MPI_BYTE, MPI_COMM_WORLD, request);
}
static inline int finch_mpi_ibcast_bytes(void *buffer, int bytes, int root, MPI_Request *request) {
    return MPI_Ibcast(buffer, bytes, MPI_BYTE, root, MPI_COMM_WORLD, request);
}
static inline int finch_mpi_ibarrier(MPI_Request *request) { return MPI_Ibarrier(MPI_COMM_WORLD, request); }
static inline int finch_mpi_test(MPI_Request *request, int *done) { return MPI_Test(request, done, MPI_STATUS_IGNORE); }
static inline int finch_mpi_cancel(MPI_Request *request) { return MPI_Cancel(request); }
