/* Linear operators as objects: y = A x with its adjoint and normal operator, in the spirit of
 * BART's linops (facts carried over, not code). Algorithms (include/fmrecon/iter.h) and the PETSc
 * data-consistency solve (include/fmrecon/dc.h) see nothing but these objects, so a model is a
 * composition (chain, stack, scale) of the operators below, not a new method file.
 *
 * Spaces: the domain and codomain are vectors of complex single-precision samples. The domain is
 * always whole on every rank of the operator's communicator (images are replicated); the
 * codomain may be split across the ranks (the SENSE operator's coils): then inner products on the
 * codomain are sums over the ranks (fmr_linop_codomain_split). Operators are reference counted:
 * composites take a reference to their parts, so callers may destroy their own handles at once. */
#ifndef FMRECON_LINOP_H
#define FMRECON_LINOP_H

#include <mpi.h>
#include <stddef.h>

#include "fmrecon/array.h"
#include "fmrecon/error.h"
#include "fmrecon/visibility.h"
#include "fmrecon/sense.h"

#ifdef __cplusplus
extern "C" {
#endif
FMR_API_BEGIN

typedef struct fmr_linop fmr_linop;

typedef fmr_err (*fmr_linop_fn)(void *data, const fmr_cfloat *in, fmr_cfloat *out);

/* A new operator from its parts. normal may be NULL (then adjoint(forward(x)) with a scratch
 * vector). free_data (may be NULL) releases data when the last reference goes. in and out of an
 * application never alias. */
typedef struct fmr_linop_def {
    const char *name;
    size_t dom, cod;       /* samples */
    MPI_Comm comm;         /* MPI_COMM_SELF for rank-local operators */
    int cod_split;         /* codomain split across comm (sum inner products over ranks) */
    fmr_linop_fn forward, adjoint, normal;
    void (*free_data)(void *data);
} fmr_linop_def;

fmr_err fmr_linop_create(fmr_linop **op, const fmr_linop_def *def, void *data);
/* Drops this handle's reference; NULL-safe, sets *op = NULL. */
void fmr_linop_destroy(fmr_linop **op);
/* A new reference to op (destroy it like any other handle). */
fmr_linop *fmr_linop_ref(fmr_linop *op);

fmr_err fmr_linop_forward(fmr_linop *op, const fmr_cfloat *x, fmr_cfloat *y);
fmr_err fmr_linop_adjoint(fmr_linop *op, const fmr_cfloat *y, fmr_cfloat *x);
fmr_err fmr_linop_normal(fmr_linop *op, const fmr_cfloat *x, fmr_cfloat *out);

size_t fmr_linop_domain(const fmr_linop *op);
size_t fmr_linop_codomain(const fmr_linop *op);
MPI_Comm fmr_linop_comm(const fmr_linop *op);
int fmr_linop_codomain_split(const fmr_linop *op);
const char *fmr_linop_name(const fmr_linop *op);

/* ---- compositions ---- */
/* B.A (A applied first); A's codomain must be B's domain. */
fmr_err fmr_linop_chain(fmr_linop **out, fmr_linop *A, fmr_linop *B);
/* Vertical stack [A_0; A_1; ...] on a common domain: codomain is the concatenation, normal is
 * sum_k A_k^H A_k (each part's own normal). */
fmr_err fmr_linop_stack(fmr_linop **out, size_t n, fmr_linop *const *ops);
/* s.I on n samples (s real). */
fmr_err fmr_linop_identity(fmr_linop **out, size_t n, double s);
/* s.A */
fmr_err fmr_linop_scaled(fmr_linop **out, fmr_linop *A, double s);

/* ---- the operators of cine MRI; images are frame-major T x h x w ---- */
/* SENSE for a series: frame t is M_t F S x_t with the borrowed operator sense (its coils, its
 * communicator) and masks[t*w ...] (T x w phase-encode weights, borrowed; NULL = whatever mask the fmr_sense has, for callers
 * that set it frame by frame).
 * Codomain T x ncoils x h x w of this rank's coils. */
fmr_err fmr_linop_sense(fmr_linop **out, fmr_sense *sense, size_t T, size_t h, size_t w,
                        size_t ncoils, const float *masks);
/* Points the SENSE series operator at other masks (same layout). */
fmr_err fmr_linop_sense_set_masks(fmr_linop *op, const float *masks);
/* Unitary DFT along time for every pixel of a T x n series (not centred: |coefficients| are
 * what the l1 terms see, and a centring shift only permutes them). */
fmr_err fmr_linop_tfft(fmr_linop **out, size_t T, size_t n);
/* Periodic forward difference along time: (D x)_t = x_{(t+1) mod T} - x_t (a cardiac cycle is
 * periodic). Codomain T x n. */
fmr_err fmr_linop_tdiff(fmr_linop **out, size_t T, size_t n);
/* Spatial gradient of each frame: forward differences along rows (d/dy) and columns (d/dx),
 * zero at the last row/column (Neumann boundary). Codomain 2 x T x h x w: [dx; dy]. */
fmr_err fmr_linop_grad2d(fmr_linop **out, size_t T, size_t h, size_t w);
/* Orthonormal 2-D Daubechies wavelet transform (GSL, non-standard/Mallat form, full depth) of
 * each frame, zero-padded to the smallest P x P with P a power of two >= max(h, w); taps: 4, 6,
 * ..., 20 (GSL's "daubechies k"; 8 is PyWavelets' db4). Codomain T x P x P. The operator is an
 * isometry (W^H W = I); W W^H = I only when h = w = P. */
fmr_err fmr_linop_wavelet(fmr_linop **out, size_t T, size_t h, size_t w, int taps);
/* P of fmr_linop_wavelet for an h x w image. */
size_t fmr_wavelet_padded_size(size_t h, size_t w);

/* ---- checks (BART's lintest, re-done) ---- */
/* On random data from seed: adjoint error |<Ax,y> - <x,A^H y>| / (|<Ax,y>| + tiny) and normal
 * error ||N x - A^H A x|| / ||A^H A x||, in double precision sums over the communicator. */
fmr_err fmr_linop_test(fmr_linop *op, unsigned long long seed, double *adjoint_err,
                       double *normal_err);

FMR_API_END
#ifdef __cplusplus
}
#endif
#endif
