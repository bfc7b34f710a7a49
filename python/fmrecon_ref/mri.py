"""MRI operators on torch complex tensors, as the unrolled network uses them (docs/model.md).

Conventions (the same as fmrecon's C code and tests/integration/common.py):

  fft2c(x)  = fftshift(fft2(ifftshift(x), norm="ortho")) over the last two axes (centred, orthonormal)
  ifft2c(k) = fftshift(ifft2(ifftshift(k), norm="ortho"))

One item is one 2-D image (one frame of one slice). Shapes, with B items and C coils:

  x      (B, h, w)      complex image
  maps   (B, C, h, w)   coil sensitivities S (ESPIRiT maps: sum_c |S_c|^2 = 1 inside the support)
  mask   (B, w), (w,), (B, 1, 1, w) or anything broadcastable to (B, C, h, w): phase-encode mask M
  y      (B, C, h, w)   k-space (already masked)

  A x    = M . F (S x)                          sense_forward
  A^H y  = sum_c conj(S_c) . F^H (M y_c)        sense_adjoint
  A^H A  = normal

Everything is differentiable by autograd (torch >= 1.13), in complex64 or complex128.
"""
import torch
import torch.nn.functional as F

__all__ = ["fft2c", "ifft2c", "mask_for", "sense_forward", "sense_adjoint", "normal", "cg", "resize",
           "complex_to_channels", "channels_to_complex", "item_dot"]


_CHECKER = {}


def _checker(h, w, dtype, device):
    """For even h and w, fftshift(fft2(ifftshift(x))) = (-1)^(h/2 + w/2) c * fft2(c * x) with
    c = (-1)^(i + j) (a shift by half the length is a modulation by (-1)^k), and likewise for ifft2;
    multiplying is cheaper than rolling twice. Returns (c, sign * c)."""
    key = (h, w, dtype, str(device))
    c = _CHECKER.get(key)
    if c is None:
        i = torch.arange(h, device=device).view(-1, 1)
        j = torch.arange(w, device=device).view(1, -1)
        c = (1 - 2 * ((i + j) % 2)).to(dtype)
        c = (c, -c if (h // 2 + w // 2) % 2 else c)  # (applied to the input, applied to the output)
        _CHECKER[key] = c
    return c


def _centred(x, transform):
    h, w = x.shape[-2:]
    if h % 2 == 0 and w % 2 == 0:
        c_in, c_out = _checker(h, w, x.dtype, x.device)
        return c_out * transform(c_in * x, norm="ortho")
    dims = (-2, -1)
    return torch.fft.fftshift(transform(torch.fft.ifftshift(x, dim=dims), norm="ortho"), dim=dims)


def fft2c(x):
    """Centred orthonormal 2-D FFT over the last two axes."""
    return _centred(x, torch.fft.fft2)


def ifft2c(k):
    """Centred orthonormal inverse 2-D FFT over the last two axes."""
    return _centred(k, torch.fft.ifft2)


def mask_for(mask, like):
    """The phase-encode mask as a real tensor broadcastable to the coil k-space `like` (B, C, h, w):
    (w,) -> (1, 1, 1, w); (B, w) -> (B, 1, 1, w); 4-D masks are used as they are."""
    m = torch.as_tensor(mask)
    rdt = torch.float64 if like.dtype == torch.complex128 else torch.float32
    m = m.to(device=like.device, dtype=rdt)
    if m.dim() == 1:
        m = m.view(1, 1, 1, -1)
    elif m.dim() == 2:
        m = m.view(m.shape[0], 1, 1, m.shape[1])
    elif m.dim() != 4:
        raise ValueError(f"mask of shape {list(m.shape)}: expected (w,), (B, w) or 4-D")
    return m


def sense_forward(x, maps, mask):
    """A x = M F (S x): (B, h, w) -> (B, C, h, w)."""
    k = fft2c(maps * x.unsqueeze(1))
    return k * mask_for(mask, k)


def sense_adjoint(y, maps, mask):
    """A^H y = sum_c conj(S_c) F^H (M y_c): (B, C, h, w) -> (B, h, w)."""
    return torch.sum(torch.conj(maps) * ifft2c(y * mask_for(mask, y)), dim=1)


def normal(x, maps, mask):
    """A^H A x (the mask is applied once: M^2 = M for 0/1 masks)."""
    k = fft2c(maps * x.unsqueeze(1))
    return torch.sum(torch.conj(maps) * ifft2c(k * mask_for(mask, k)), dim=1)


def item_dot(a, b):
    """Per-item real part of <a, b> = sum conj(a) b over all but the first axis: (B,) real."""
    return torch.sum((torch.conj(a) * b).real.reshape(a.shape[0], -1), dim=1)


def _bcast(v, like):
    return v.view((-1,) + (1,) * (like.dim() - 1))


def _safe_div(num, den):
    """num / den where den > 0, else 0; gradients stay finite."""
    ok = den > 0
    return torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)), torch.zeros_like(num))


def cg(op, b, x0, iters):
    """Conjugate gradients for the Hermitian positive definite op: exactly `iters` iterations from x0,
    no tolerance test (as PETSc KSPCG with rtol = atol = 0 and max_it = iters, initial guess nonzero).
    Items (first axis) are independent systems with their own step sizes. An item whose residual is
    exactly zero stops moving (no division by zero). Differentiable by autograd through every
    iteration."""
    x = x0
    r = b - op(x)
    p = r
    rr = item_dot(r, r)
    for _ in range(int(iters)):
        ap = op(p)
        alpha = _safe_div(rr, item_dot(p, ap))
        x = x + _bcast(alpha, x).to(x.dtype) * p
        r = r - _bcast(alpha, r).to(r.dtype) * ap
        rr_new = item_dot(r, r)
        beta = _safe_div(rr_new, rr)
        p = r + _bcast(beta, p).to(p.dtype) * p
        rr = rr_new
    return x


def complex_to_channels(x):
    """(B, h, w) complex -> (B, 2, h, w) real [Re, Im]."""
    return torch.stack((x.real, x.imag), dim=1)


def channels_to_complex(c):
    """(B, 2, h, w) real [Re, Im] -> (B, h, w) complex."""
    return torch.complex(c[:, 0], c[:, 1])


def resize(x, size):
    """Bilinear resize (F.interpolate, align_corners=False, no antialiasing) of a real (B, ch, h, w)
    tensor or a complex (B, h, w) tensor (real and imaginary parts resized separately) to size (H, W).
    A tensor already of that size is returned unchanged (interpolation to the same size is the
    identity)."""
    size = (int(size[0]), int(size[1]))
    if torch.is_complex(x):
        if tuple(x.shape[-2:]) == size:
            return x
        return channels_to_complex(resize(complex_to_channels(x), size))
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
