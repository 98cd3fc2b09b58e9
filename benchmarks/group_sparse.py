"""Wall time of cohort_connectome.group_sparse against nilearn 0.13.1.

Times whole ``fit`` calls of ``GroupSparseCovariance`` and
``GroupSparseCovarianceCV`` (ours, then nilearn's, alternately), medians of
``--repeats`` runs, on z-scored synthetic signals drawn from sparse
precisions sharing one support (as nilearn's
``generate_group_sparse_gaussian_graphs``), and reports the parity of each
result: max over subjects of max|ours - nilearn| / max|nilearn|, and the
alphas the cross-validations chose.

BLAS runs on one thread (set before numpy is imported): the matrices are
small, and the machine is shared.

Usage::

    .venv/bin/python benchmarks/group_sparse.py            # about a minute
    .venv/bin/python benchmarks/group_sparse.py --repeats 5 --cv-refinements 2
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cohort_connectome import group_sparse  # noqa: E402


def group_signals(n_subjects, n_features, n_samples, density=0.1, seed=0):
    """Signals of subjects whose precisions share one random sparse support.

    Parameters
    ----------
    n_subjects, n_features, n_samples : int
    density : float, default=0.1
        Fraction of the upper triangle in the support.
    seed : int, default=0

    Returns
    -------
    list of numpy.ndarray, shape for each (n_samples, n_features), z-scored.
    """
    rng = np.random.default_rng(seed)
    support = np.triu(rng.random((n_features, n_features)) < density, k=1)
    signals = []
    for _ in range(n_subjects):
        factor = np.eye(n_features)
        factor[support] = rng.uniform(0.1, 0.8, size=support.sum())
        precision = factor.T @ factor
        covariance = np.linalg.inv(precision)
        x = rng.multivariate_normal(np.zeros(n_features), covariance, size=n_samples)
        signals.append((x - x.mean(axis=0)) / x.std(axis=0))
    return signals


def per_subject_error(ours, reference):
    """max over subjects of max|ours - reference| / max|reference|."""
    return max(float(np.abs(ours[..., k] - reference[..., k]).max()
                     / np.abs(reference[..., k]).max())
               for k in range(reference.shape[-1]))


def timed(make, signals, repeats):
    """(median seconds, last fitted estimator) of ``make().fit(signals)``."""
    times = []
    fitted = None
    for _ in range(repeats):
        start = time.perf_counter()
        fitted = make().fit(signals)
        times.append(time.perf_counter() - start)
    return statistics.median(times), fitted


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cv-refinements", type=int, default=1,
                        help="n_refinements of the CV cases (nilearn default: 4)")
    args = parser.parse_args(argv)

    from nilearn import connectome

    warnings.simplefilter("ignore")  # both warn alike (max_iter reached, ...)
    cases = []
    for n_subjects, n_features, n_samples in ((10, 30, 150), (20, 39, 150)):
        signals = group_signals(n_subjects, n_features, n_samples)
        covs, counts = group_sparse.empirical_covariances(signals)
        alpha_max = float(group_sparse.compute_alpha_max(covs, counts)[0])
        size = f"{n_subjects}x{n_features}x{n_samples}"
        for fraction in (0.3, 0.05):
            alpha = fraction * alpha_max
            cases.append((f"GroupSparseCovariance {size} alpha={alpha:.4f}", signals,
                          lambda a=alpha: group_sparse.GroupSparseCovariance(alpha=a),
                          lambda a=alpha: connectome.GroupSparseCovariance(alpha=a)))
    for n_subjects, n_features, n_samples in ((5, 10, 100), (10, 30, 150)):
        signals = group_signals(n_subjects, n_features, n_samples)
        size = f"{n_subjects}x{n_features}x{n_samples}"
        r = args.cv_refinements
        cases.append((f"GroupSparseCovarianceCV {size} n_refinements={r}", signals,
                      lambda r=r: group_sparse.GroupSparseCovarianceCV(n_refinements=r),
                      lambda r=r: connectome.GroupSparseCovarianceCV(n_refinements=r)))

    print(f"{'case':58s} {'ours s':>8s} {'nilearn s':>10s} {'speed-up':>9s} "
          f"{'rel diff':>9s}  alpha (ours / nilearn)")
    for name, signals, ours_make, their_make in cases:
        ours_time, ours = timed(ours_make, signals, args.repeats)
        their_time, theirs = timed(their_make, signals, args.repeats)
        error = per_subject_error(ours.precisions_, theirs.precisions_)
        line = (f"{name:58s} {ours_time:8.3f} {their_time:10.3f} "
                f"{their_time / ours_time:8.2f}x {error:9.1e}")
        if hasattr(ours, "alpha_"):
            same = "same" if ours.alpha_ == theirs.alpha_ else "DIFFERENT"
            line += f"  {ours.alpha_:.6g} / {theirs.alpha_:.6g} ({same})"
        print(line, flush=True)


if __name__ == "__main__":
    main()
