r"""Exact policy evaluation: the linear solves behind :class:`~oracles.tabular.TabularMOMDP`.

Everything here solves ``(I - γ P_π) X = B`` -- dense LU through LAPACK, sparse LU through
SuperLU -- or applies the Bellman backup ``P v``; nothing iterates to a tolerance.
"""

import numpy as np
from scipy.linalg import get_lapack_funcs

__all__ = [
    "METHODS",
    "SPARSE_MIN_STATES",
    "SPARSE_DENSITY",
    "PolicySolver",
    "solve",
    "identity_minus",
    "deterministic_values",
]

#: Solvers accepted by :class:`PolicySolver` (and ``TabularMOMDP(method=...)``).
METHODS = ("auto", "dense", "sparse")
#: ``method="auto"`` uses sparse LU from this many states on, when at most ``SPARSE_DENSITY`` of P is non-zero.
SPARSE_MIN_STATES = 500
SPARSE_DENSITY = 0.05
_gesv = get_lapack_funcs("gesv", dtype=np.float64)


def solve(M, B):
    """``M^{-1} B`` by LU with partial pivoting (LAPACK ``dgesv``, as ``numpy.linalg.solve``).

    ``M`` and ``B`` are overwritten.  Called through SciPy's LAPACK: numpy's threaded OpenBLAS
    ``gesv`` slows down by 10-1000x on small matrices when the cores are busy (e.g. next to
    parallel oracle workers).

    Examples
    --------
    >>> import numpy as np
    >>> solve(np.array([[2.0, 0.0], [0.0, 4.0]]), np.array([[1.0], [1.0]])).ravel().tolist()
    [0.5, 0.25]
    """
    _, _, X, info = _gesv(M, B, overwrite_a=True, overwrite_b=True)
    if info != 0:  # pragma: no cover - I - γP is non-singular for γ < 1
        raise np.linalg.LinAlgError(f"dgesv failed (info={info}): I - gamma P_pi is singular")
    return X


def identity_minus(P_pi, gamma):
    """``I - γ P_π`` in a fresh array (``P_π``, square, is not modified)."""
    M = P_pi * (-gamma)
    M.flat[:: P_pi.shape[0] + 1] += 1.0
    return M


class PolicySolver:
    """Policy evaluation and Bellman backups for one transition tensor, dense or sparse.

    Parameters
    ----------
    P : ndarray, shape (S, A, S)
        Validated transition probabilities (not copied).
    gamma : float
        Discount factor in [0, 1).
    method : {"auto", "dense", "sparse"}
        ``"auto"`` picks sparse from ``S >= SPARSE_MIN_STATES`` states when at most
        ``SPARSE_DENSITY`` of ``P`` is non-zero, dense otherwise.

    Attributes
    ----------
    method : {"dense", "sparse"}
        The solver in use.

    Examples
    --------
    >>> import numpy as np
    >>> P = np.zeros((2, 1, 2)); P[:, 0, 1] = 1.0          # every state moves to state 1
    >>> solver = PolicySolver(P, 0.5, "auto")
    >>> rewards = np.array([[1.0], [0.5]])
    >>> solver.method, solver.solve_deterministic(np.array([0, 0]), rewards).ravel().tolist()
    ('dense', [1.5, 1.0])
    """

    def __init__(self, P, gamma, method):
        S, A, _ = P.shape
        if method == "auto":
            sparse_ok = S >= SPARSE_MIN_STATES and np.count_nonzero(P) <= SPARSE_DENSITY * P.size
            method = "sparse" if sparse_ok else "dense"
        self.method = method
        self.gamma = gamma
        self._P = P
        self._P2 = P.reshape(S * A, S)
        self._shape = (S, A)
        self._states = np.arange(S)
        self._P2s = self._I = None
        if method == "sparse":
            from scipy import sparse

            self._P2s = sparse.csr_matrix(self._P2)
            self._I = sparse.identity(S, format="csr")

    def solve_deterministic(self, pi, rhs):
        """``(I - γ P_π)^{-1} rhs`` for a deterministic ``pi``, shape (S,) (``rhs`` may be overwritten)."""
        if self._P2s is None:
            return solve(identity_minus(self._P[self._states, pi], self.gamma), rhs)
        from scipy.sparse.linalg import splu

        M = (self._I - self.gamma * self._P2s[self._states * self._shape[1] + pi]).tocsc()
        return splu(M, permc_spec="MMD_AT_PLUS_A").solve(rhs)

    def solve_matrix(self, P_pi, rhs):
        """``(I - γ P_π)^{-1} rhs`` for a dense ``P_π`` (a stochastic policy's), dense LU."""
        return solve(identity_minus(P_pi, self.gamma), rhs)

    def backup(self, v):
        """``(P v)[s, a]``, shape (S, A)."""
        P2 = self._P2 if self._P2s is None else self._P2s
        return (P2 @ v).reshape(self._shape)


def deterministic_values(P, R, mu, gamma, batch_elements=1 << 21):
    """Normalised value vectors of all ``A**S`` deterministic stationary policies, shape (A**S, d).

    Row ``k`` is the policy whose action in state ``s`` is digit ``s`` of ``k`` in base ``A``
    (least significant first).  The policies are evaluated in batches of about
    ``batch_elements / S**2`` by batched LU solves of ``(I - γ P_π)^T x = μ`` (the discounted
    occupancies).

    Examples
    --------
    >>> import numpy as np
    >>> P = np.ones((1, 2, 1)); R = np.array([[[1.0, 0.0], [0.0, 1.0]]])
    >>> deterministic_values(P, R, np.ones(1), 0.9).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    S, A, _ = P.shape
    d = R.shape[2]
    n = A**S
    powers = A ** np.arange(S, dtype=np.int64)
    batch = max(1, min(n, batch_elements // (S * S)))
    out = np.empty((n, d))
    st = np.arange(S)
    mu = np.broadcast_to(mu[:, None], (S, 1))
    for start in range(0, n, batch):
        k = np.arange(start, min(n, start + batch), dtype=np.int64)
        pis = (k[:, None] // powers) % A  # (b, S): digit s is the action in state s
        Mt = np.eye(S) - gamma * P[st, pis].transpose(0, 2, 1)  # (I - γ P_π)^T
        occ = np.linalg.solve(Mt, np.broadcast_to(mu, (k.size, S, 1)))[:, :, 0]
        out[start : start + k.size] = (1.0 - gamma) * np.einsum("bs,bsd->bd", occ, R[st, pis])
    return out
