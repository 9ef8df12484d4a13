"""Ordered orthogonalisation of candidate basis fields (Gram–Schmidt via the Gram matrix).

Candidates are ``(N, 3)`` displacement or colour fields, flattened to ``3N`` vectors.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

__all__ = ["MIN_RESIDUAL", "cholesky_qr2", "orthogonalise"]

#: Candidate fields whose residual after orthogonalisation is below this fraction of
#: their own norm are skipped (they are nearly spanned by earlier modes).
MIN_RESIDUAL = 0.15


def cholesky_qr2(a: np.ndarray, gram: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Thin QR of a tall ``(M, K)`` matrix by CholeskyQR2 (BLAS-3; R with positive diagonal).

    Args:
        a: the matrix.
        gram: ``aᵀ a`` if already known.

    Falls back to Householder QR when ``a`` is too ill-conditioned for the Cholesky route
    (the second pass must find ``Q₁`` orthonormal to ~1e-6, so ``Q₂`` is to ~1e-12).
    """
    eye = np.eye(a.shape[1])
    try:
        g = a.T @ a if gram is None else gram
        r1 = scipy.linalg.cholesky(g, lower=False)
        q1 = a @ scipy.linalg.solve_triangular(r1, eye, lower=False)
        r2 = scipy.linalg.cholesky(q1.T @ q1, lower=False)
        if np.abs(r2 - eye).max() < 1e-6:
            return q1 @ scipy.linalg.solve_triangular(r2, eye, lower=False), r2 @ r1
    except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
        pass
    q, r = np.linalg.qr(a)
    signs = np.where(np.diag(r) < 0.0, -1.0, 1.0)
    return q * signs[None, :], r * signs[:, None]


def orthogonalise(candidates: list[np.ndarray], count: int, name: str,
                  min_residual: float = MIN_RESIDUAL) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Gram–Schmidt in order over flattened ``(N, 3)`` fields, skipping near-dependent ones.

    A candidate is kept when the part of it orthogonal to the earlier kept ones is at
    least ``min_residual`` of its length, until ``count`` are kept. The selection runs on
    the Gram matrix of the candidates (cheap); the kept fields are then orthogonalised by
    a QR decomposition, which equals Gram–Schmidt in order up to rounding.

    Returns:
        ``(Q, r, kept)``: ``Q`` is ``(3N, count)`` with orthonormal columns, ``r`` the
        residual lengths ``(count,)`` (``Q[:, k] · r[k]`` is the part of candidate
        ``kept[k]`` orthogonal to the earlier kept ones), ``kept`` the candidate positions.
    """
    kept: list[int] = []
    for width in (count + 16, len(candidates)):
        pool = candidates[:width]
        d = np.empty((pool[0].size, len(pool)), order="F")  # column-major: fast Gram products
        for j, field in enumerate(pool):
            d[:, j] = field.reshape(-1)
        norms = np.sqrt(np.einsum("ij,ij->j", d, d))
        gram = d.T @ d
        kept = []
        chol = np.zeros((count, count))
        for j in range(d.shape[1]):
            if norms[j] == 0.0:
                continue
            m = len(kept)
            w = scipy.linalg.solve_triangular(chol[:m, :m], gram[kept, j], lower=True) if m else np.zeros(0)
            res2 = gram[j, j] - float(w @ w)
            if res2 < (min_residual * norms[j]) ** 2:
                continue
            chol[m, :m] = w
            chol[m, m] = np.sqrt(res2)
            kept.append(j)
            if len(kept) == count:
                break
        if len(kept) == count:
            break
    if len(kept) < count:
        raise RuntimeError(f"default model: only {len(kept)} independent {name} fields, need {count}")
    scale = norms[kept]
    q, r = cholesky_qr2(d[:, kept] / scale[None, :], gram[np.ix_(kept, kept)] / np.outer(scale, scale))
    return q, np.diag(r) * scale, kept

