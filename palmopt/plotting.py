"""Pictures of portfolios on the 2-simplex (d = 3): users coloured by the member that serves
them, with the certificate's worst-gap weight marked.  matplotlib is imported lazily, and only
its object-oriented API is used (no pyplot state, no backend switch)."""

import numpy as np

from . import nets

__all__ = ["simplex_xy", "plot_routing"]


def simplex_xy(W):
    """Barycentric (m, 3) -> 2-D coordinates of the equilateral triangle (vertices e1, e2, e3)."""
    W = np.asarray(W, dtype=float)
    return np.c_[W[:, 1] + 0.5 * W[:, 2], (np.sqrt(3) / 2) * W[:, 2]]


def plot_routing(panels, path=None, *, resolution=120, labels=("objective 1", "objective 2", "objective 3")):
    """One panel per portfolio: the simplex coloured by routed member.

    Parameters
    ----------
    panels : list of (title, Portfolio, Certificate or None)
    path : str, optional
        Write a PNG there.
    resolution : int
        Users are the points of the simplex lattice of this resolution.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib
    from matplotlib.figure import Figure  # no pyplot: no global figure state, no backend choice

    if any(p.d != 3 for _, p, _ in panels):
        raise ValueError("plot_routing draws the 2-simplex: every portfolio must have d = 3.")
    W = nets.uniform(3, (resolution + 1) * (resolution + 2) // 2)
    xy = simplex_xy(W)
    fig = Figure(figsize=(4.2 * len(panels), 4.2))
    axes = fig.subplots(1, len(panels), squeeze=False)
    cmap = matplotlib.colormaps["tab10"]
    for ax, (title, portfolio, cert) in zip(axes[0], panels):
        member = portfolio.route(W)
        ax.scatter(xy[:, 0], xy[:, 1], c=cmap(member % 10), s=4, marker="h", linewidths=0)
        members = simplex_xy(portfolio.weights)
        ax.scatter(members[:, 0], members[:, 1], c=cmap(np.arange(len(portfolio)) % 10), s=40, edgecolors="k")
        if cert is not None and cert.worst_weight is not None:
            star = simplex_xy(cert.worst_weight[None, :])
            ax.scatter(star[:, 0], star[:, 1], marker="*", s=260, c="red", edgecolors="k", zorder=5)
            title += f"\nε* = {cert.eps_star:.3f}, δ* = {cert.delta_star:.3f}"
        ax.plot([0, 1, 0.5, 0], [0, 0, np.sqrt(3) / 2, 0], "k-", lw=0.8)
        for (x, y), text, ha in zip([(0, -0.06), (1, -0.06), (0.5, 0.9)], labels, ["left", "right", "center"]):
            ax.text(x, y, text, ha=ha, fontsize=8)
        ax.set_title(f"{title}\n{len(portfolio)} members", fontsize=9)
        ax.set_aspect("equal")
        ax.axis("off")
    fig.suptitle("users coloured by serving member (● member weights, ★ worst-gap user)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
