"""How close synthetic rows of a table are to the real ones: SDMetrics' quality measures in NumPy.

Each measure is written from its published definition in the SDMetrics documentation
(https://docs.sdv.dev/sdmetrics, DataCebo) and checked against SDMetrics itself in
``tests/test_report.py`` when it is installed. Every score is in [0, 1], 1 the best:

=========================  ===================================================================
measure                    definition
=========================  ===================================================================
KS complement              ``1 - sup_x |F_real(x) - F_syn(x)|`` (the two-sample
                           Kolmogorov-Smirnov statistic) of a numeric column; missing dropped
TV complement              ``1 - 1/2 sum_k |p_real(k) - p_syn(k)|`` (total variation distance)
                           over the levels of a categorical column; missing dropped
correlation similarity     ``1 - |r_real - r_syn| / 2`` of two numeric columns, Pearson's (or
                           Spearman's) ``r`` over rows where both are present
contingency similarity     ``1 - 1/2 sum_{a,b} |P_real(a, b) - P_syn(a, b)|`` of two columns'
                           normalised contingency tables, missing as one more level, numeric
                           columns cut into 10 bins first
=========================  ===================================================================

:func:`quality_report` aggregates them as SDMetrics' single-table ``QualityReport`` does
("What's included?"): *Column Shapes* is the mean over columns of the KS complement (numeric and
integer columns) or TV complement (categorical); *Column Pair Trends* is the mean over all pairs
of columns of the correlation similarity (two numeric columns) or the contingency similarity
(every other pair); the overall score is the mean of the two (scores that cannot be computed,
e.g. the correlation of a constant column, are left out of the means).

Beside these, :func:`quality_report` gives each column's share of missing cells, real vs
synthetic, and :func:`closest_records` the distance to closest record of synthetic and of
held-out rows to the training rows, a check that a model does not copy its training rows.
"""
import itertools
from dataclasses import dataclass

import numpy as np

from . import _checks
from .tables import Table, TableEncoder

N_BINS = 10  # SDMetrics' num_discrete_bins: numeric columns are cut into 10 bins for contingency
KS_DECIMALS = 14  # SDMetrics rounds values to sys.float_info.dig - 1 = 14 places before the KS test


def ks_complement(real, synthetic):
    """``1 - D``, ``D = sup_x |F_real(x) - F_syn(x)|`` the two-sample Kolmogorov-Smirnov statistic.

    SDMetrics' KSComplement: missing values (NaN) are dropped and values rounded to 14 decimal
    places; NaN when either sample is then empty.

    Parameters
    ----------
    real : (n,) array_like of float
    synthetic : (m,) array_like of float
    """
    x, y = _observed_numbers(real, "real"), _observed_numbers(synthetic, "synthetic")
    if x.size == 0 or y.size == 0:
        return float("nan")
    x, y = np.sort(np.round(x, KS_DECIMALS)), np.sort(np.round(y, KS_DECIMALS))
    grid = np.concatenate([x, y])  # the sup is reached at a sample point
    cdf_x = np.searchsorted(x, grid, side="right") / x.size  # F_real on the grid
    cdf_y = np.searchsorted(y, grid, side="right") / y.size  # F_syn on the grid
    return float(1.0 - np.max(np.abs(cdf_x - cdf_y)))


def tv_complement(real, synthetic):
    """``1 - TVD``, ``TVD = 1/2 sum_k |p_real(k) - p_syn(k)|`` over the levels seen in either.

    SDMetrics' TVComplement: missing values (None, NaN) are dropped; NaN when either column is
    then empty.

    Parameters
    ----------
    real : (n,) array_like of labels
    synthetic : (m,) array_like of labels
    """
    x, y = _observed_labels(real), _observed_labels(synthetic)
    if not x or not y:
        return float("nan")
    return 1.0 - _total_variation([(v,) for v in x], [(v,) for v in y])


def correlation_similarity(real, synthetic, coefficient="pearson"):
    """``1 - |r_real - r_syn| / 2`` for the correlation ``r`` of two numeric columns.

    SDMetrics' CorrelationSimilarity: rows with a missing value in either column are dropped;
    NaN when a correlation is undefined (a constant column, fewer than two rows).

    Parameters
    ----------
    real : (n, 2) array_like of float
    synthetic : (m, 2) array_like of float
    coefficient : {"pearson", "spearman"}
        Pearson's product-moment ``r``, or Spearman's (Pearson's on ranks, ties averaged).
    """
    _checks.choice(coefficient, "coefficient", ("pearson", "spearman"))
    r_real = _correlation(_pairs(real, "real"), coefficient)
    r_syn = _correlation(_pairs(synthetic, "synthetic"), coefficient)
    return float(1.0 - abs(r_real - r_syn) / 2.0)


def correlation_matrix(values, coefficient="pearson"):
    """The ``(p, p)`` matrix of correlations ``r_ab`` of ``p`` numeric columns, each pair over the
    rows where both are present (as :func:`correlation_similarity` computes ``r``); 1 on the
    diagonal of a column that is not constant, NaN where a correlation is undefined.

    Parameters
    ----------
    values : (n, p) array_like of float
        NaN where a cell is missing.
    coefficient : {"pearson", "spearman"}
    """
    _checks.choice(coefficient, "coefficient", ("pearson", "spearman"))
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2:
        raise ValueError(f"values must have shape (n, p), got shape {v.shape}")
    p = v.shape[1]
    r = np.empty((p, p))
    for a, b in itertools.combinations_with_replacement(range(p), 2):
        r[a, b] = r[b, a] = _correlation(_pairs(v[:, [a, b]], "values"), coefficient)
    return r


def contingency_similarity(real, synthetic):
    """``1 - 1/2 sum_{a,b} |P_real(a, b) - P_syn(a, b)|`` over the normalised contingency tables.

    SDMetrics' ContingencySimilarity of two discrete columns: a missing value (None, NaN) is one
    more level. Cut numeric columns into bins first (:func:`bins_from_real`).

    Parameters
    ----------
    real : (n, 2) array_like of labels
    synthetic : (m, 2) array_like of labels
    """
    x, y = _label_pairs(real, "real"), _label_pairs(synthetic, "synthetic")
    return 1.0 - _total_variation(x, y)


def bins_from_real(real, synthetic, bins=N_BINS):
    """Cut a numeric column into ``bins`` equal-width bins of the real values' range, as
    SDMetrics' ``discretize_column`` does for ContingencySimilarity: the outer edges are opened to
    ``-inf`` and ``+inf`` (codes 1..bins), a missing value gets its own code ``bins + 1``.

    Returns
    -------
    (n,) int64 ndarray, (m,) int64 ndarray
        Bin codes of ``real`` and ``synthetic``.
    """
    x, y = np.asarray(real, dtype=np.float64), np.asarray(synthetic, dtype=np.float64)
    edges = np.histogram_bin_edges(x[~np.isnan(x)], bins=bins)  # (bins + 1,)
    edges[0], edges[-1] = -np.inf, np.inf
    return np.digitize(x, edges), np.digitize(y, edges)  # NaN sorts past the last edge


def bins_from_own_range(values, bins=N_BINS):
    """Cut one numeric column into ``bins`` equal-width bins of *its own* range, as SDMetrics'
    ``QualityReport`` does for a numeric-categorical pair (``ColumnPairTrends._discretize_column``
    bins the real and the synthetic table each by its own range): ``np.digitize`` over the edges,
    so codes run 1..bins, the maximum and a missing value both get code ``bins + 1``."""
    v = np.asarray(values, dtype=np.float64)
    observed = v[~np.isnan(v)]
    if observed.size == 0:
        return np.full(v.shape, bins + 1)
    return np.digitize(v, np.histogram_bin_edges(observed, bins=bins))


@dataclass(frozen=True)
class Score:
    """One measure on one column or one pair of columns.

    Attributes
    ----------
    columns : tuple of str
        The column, or the two columns.
    metric : str
        SDMetrics' name of the measure (``"KSComplement"``, ...).
    score : float
        In [0, 1], or NaN when it cannot be computed.
    """

    columns: tuple
    metric: str
    score: float


@dataclass(frozen=True)
class QualityReport:
    """SDMetrics' single-table quality report, plus missing shares (see the module docstring).

    Attributes
    ----------
    column_shapes : tuple of Score
        One per modelled column.
    column_pair_trends : tuple of Score
        One per pair of modelled columns.
    missing : tuple of (str, float, float)
        Per column: name, share of missing cells in the real and in the synthetic table.
    """

    column_shapes: tuple
    column_pair_trends: tuple
    missing: tuple

    @property
    def column_shapes_score(self):
        """Mean of the column-shape scores (NaN ones left out)."""
        return _nanmean([s.score for s in self.column_shapes])

    @property
    def column_pair_trends_score(self):
        """Mean of the pair-trend scores (NaN ones left out)."""
        return _nanmean([s.score for s in self.column_pair_trends])

    @property
    def score(self):
        """Overall score: the mean of the two property scores, as SDMetrics averages them."""
        return _nanmean([self.column_shapes_score, self.column_pair_trends_score])

    def summary(self):
        """A short printable report: the three scores and each column's shape and missing share."""
        lines = [f"Column Shapes       {100 * self.column_shapes_score:6.2f}%",
                 f"Column Pair Trends  {100 * self.column_pair_trends_score:6.2f}%",
                 f"Overall             {100 * self.score:6.2f}%", "",
                 "column  metric  score  missing (real / synthetic)"]
        missing = {name: (a, b) for name, a, b in self.missing}
        for s in self.column_shapes:
            a, b = missing[s.columns[0]]
            lines.append(f"{s.columns[0]}  {s.metric}  {s.score:.4f}  {100 * a:.1f}% / "
                         f"{100 * b:.1f}%")
        return "\n".join(lines)


def quality_report(real, synthetic, encoder, correlation_threshold=0.0,
                   association_threshold=0.0):
    """Score a synthetic table against the real one, as SDMetrics' single-table QualityReport.

    Numeric and integer columns are SDMetrics' "numerical" columns, categorical ones its
    "categorical"; ignored columns are left out. A numeric column paired with a categorical one
    is cut into bins by :func:`bins_from_own_range` in each table, as the report does.

    Parameters
    ----------
    real, synthetic : Table or (n, d) array_like
        The two tables, with the columns ``encoder`` was fitted on.
    encoder : TableEncoder
        Fitted; it says each column's kind and reads the cells.
    correlation_threshold, association_threshold : float in [0, 1)
        Leave out of Column Pair Trends (score NaN) a numeric pair whose real ``|r|`` is not above
        the first, and any other pair whose real Cramer's V (:func:`cramers_v`) is not above the
        second. 0 scores every pair, as the documentation defines the report; SDMetrics 0.32's
        ``QualityReport`` uses 0.5 and 0.3 (``DEFAULT_REAL_CORRELATION_THRESHOLD``,
        ``DEFAULT_REAL_ASSOCIATION_THRESHOLD`` in ``sdmetrics/reports/utils.py``).

    Returns
    -------
    QualityReport
    """
    if not isinstance(encoder, TableEncoder):
        raise TypeError(f"encoder must be a fitted TableEncoder, got {type(encoder).__name__}")
    real_values, syn_values = encoder.values(real), encoder.values(synthetic)
    thresholds = (_checks.finite_float(correlation_threshold, "correlation_threshold", 0, 1),
                  _checks.finite_float(association_threshold, "association_threshold", 0, 1))
    kept = [j for j, c in enumerate(encoder.columns_) if c.kind != "ignore"]
    names = [encoder.columns_[j].name for j in kept]
    numeric = {j: encoder.columns_[j].kind in ("numeric", "integer") for j in kept}
    shapes = tuple(
        Score((encoder.columns_[j].name,), "KSComplement",
              ks_complement(real_values[j], syn_values[j])) if numeric[j] else
        Score((encoder.columns_[j].name,), "TVComplement",
              tv_complement(real_values[j], syn_values[j])) for j in kept)
    trends = tuple(_pair_score(encoder.columns_[a].name, encoder.columns_[b].name,
                               (real_values[a], syn_values[a], numeric[a]),
                               (real_values[b], syn_values[b], numeric[b]), thresholds)
                   for a, b in itertools.combinations(kept, 2))
    real_gone, syn_gone = _missing_shares(encoder, real), _missing_shares(encoder, synthetic)
    missing = tuple((name, float(real_gone[j]), float(syn_gone[j]))
                    for name, j in zip(names, kept))
    return QualityReport(shapes, trends, missing)


def _pair_score(name_a, name_b, a, b, thresholds):
    """The Column Pair Trends score of two columns, each ``(real, synthetic, is_numeric)``;
    ``thresholds`` is (correlation_threshold, association_threshold)."""
    (real_a, syn_a, num_a), (real_b, syn_b, num_b) = a, b
    if num_a and num_b:
        real = np.stack([real_a, real_b], axis=1)
        syn = np.stack([syn_a, syn_b], axis=1)
        if thresholds[0] > 0 and not abs(_correlation(_pairs(real, "real"), "pearson")) > \
                thresholds[0]:
            return Score((name_a, name_b), "CorrelationSimilarity", float("nan"))
        return Score((name_a, name_b), "CorrelationSimilarity",
                     correlation_similarity(real, syn))
    if num_a != num_b:  # the numeric one is binned, each table by its own range
        real_a, syn_a = (bins_from_own_range(real_a), bins_from_own_range(syn_a)) if num_a else (
            real_a, syn_a)
        real_b, syn_b = (bins_from_own_range(real_b), bins_from_own_range(syn_b)) if num_b else (
            real_b, syn_b)
    real = np.stack([np.asarray(real_a, dtype=object), np.asarray(real_b, dtype=object)], axis=1)
    syn = np.stack([np.asarray(syn_a, dtype=object), np.asarray(syn_b, dtype=object)], axis=1)
    if thresholds[1] > 0 and not cramers_v(real) > thresholds[1]:
        return Score((name_a, name_b), "ContingencySimilarity", float("nan"))
    return Score((name_a, name_b), "ContingencySimilarity", contingency_similarity(real, syn))


def cramers_v(pairs):
    """Cramer's V of two discrete columns: ``sqrt(chi2 / (n (min(r, c) - 1)))``, ``chi2`` Pearson's
    statistic of their ``r x c`` contingency table against independence (no continuity
    correction; a missing value is one more level). NaN when a column has a single level.

    Parameters
    ----------
    pairs : (n, 2) array_like of labels
    """
    rows = _label_pairs(pairs, "pairs")
    a_levels = {v: i for i, v in enumerate(sorted({a for a, _ in rows}, key=repr))}
    b_levels = {v: i for i, v in enumerate(sorted({b for _, b in rows}, key=repr))}
    if min(len(a_levels), len(b_levels)) < 2:
        return float("nan")
    counts = np.zeros((len(a_levels), len(b_levels)))  # (r, c) observed
    np.add.at(counts, ([a_levels[a] for a, _ in rows], [b_levels[b] for _, b in rows]), 1.0)
    n = counts.sum()
    expected = counts.sum(axis=1, keepdims=True) * counts.sum(axis=0, keepdims=True) / n
    chi2 = np.sum((counts - expected) ** 2 / expected)
    return float(np.sqrt(chi2 / (n * (min(counts.shape) - 1))))


def _missing_shares(encoder, X):
    """(d,) share of missing cells per column."""
    return 1.0 - encoder.observed(X).mean(axis=0)


@dataclass(frozen=True)
class ClosestRecords:
    """Distance to closest record (DCR) in the training rows, of synthetic and of held-out rows.

    A model that copies its training rows puts synthetic rows much nearer the training rows than
    fresh rows of the same distribution (the held-out ones) are.

    Attributes
    ----------
    synthetic : (m,) float64 ndarray
        Each synthetic row's Euclidean distance to its nearest training row.
    holdout : (h,) float64 ndarray
        The same for each held-out row.
    """

    synthetic: np.ndarray
    holdout: np.ndarray

    @property
    def share_closer(self):
        """Share of synthetic rows nearer the training rows than the 5% nearest held-out rows
        are (their 5th percentile): about 0.05 for rows as new as held-out ones, near 1 for
        copies."""
        return float(np.mean(self.synthetic < np.percentile(self.holdout, 5)))

    def summary(self):
        """One line: median DCR of synthetic and held-out rows, share_closer, exact copies."""
        copies = int(np.sum(self.synthetic == 0))
        return (f"distance to closest training row: median {np.median(self.synthetic):.4g} "
                f"synthetic vs {np.median(self.holdout):.4g} held-out; "
                f"{100 * self.share_closer:.1f}% of synthetic rows nearer than the 5% nearest "
                f"held-out rows; {copies} exact copies")


def distance_to_closest_record(x, train, block=2 ** 22):
    """``min_j ||x_i - train_j||`` for every row ``x_i`` (exact differences, so a copy is at 0).

    Parameters
    ----------
    x : (m, k) array_like
    train : (n, k) array_like
    block : int
        Entries of ``x_i - train_j`` held at once.

    Returns
    -------
    (m,) float64 ndarray
    """
    x = _checks.points(x, "x", dtype=np.float64)
    train = _checks.points(train, "train", dim=x.shape[1], dtype=np.float64)
    rows = max(1, _checks.positive_int(block, "block") // (train.size or 1))
    out = np.empty(len(x))
    for start in range(0, len(x), rows):
        diff = x[start:start + rows, None, :] - train[None, :, :]  # (rows, n, k)
        out[start:start + rows] = np.sqrt(np.min(np.sum(diff * diff, axis=2), axis=1))
    return out


def closest_records(synthetic, holdout, train, encoder=None):
    """Distance to closest record of synthetic and held-out rows in the training rows.

    Parameters
    ----------
    synthetic, holdout, train : Table or (., k) array_like
        Rows; tables are encoded with ``encoder`` (standardised numbers, one-hot levels,
        missing indicators), so every coordinate is on a comparable scale.
    encoder : TableEncoder, optional
        Needed when the rows are tables.

    Returns
    -------
    ClosestRecords
    """
    def rows(x, name):
        if isinstance(x, Table):
            if not isinstance(encoder, TableEncoder):
                raise TypeError(f"{name} is a Table; pass the fitted TableEncoder as encoder")
            return encoder.transform(x)
        return x

    train = rows(train, "train")
    return ClosestRecords(distance_to_closest_record(rows(synthetic, "synthetic"), train),
                          distance_to_closest_record(rows(holdout, "holdout"), train))


def _observed_numbers(values, name):
    """A 1-D float64 array without its NaNs."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"{name} must have shape (n,), got shape {v.shape}")
    return v[~np.isnan(v)]


def _is_missing(value):
    return value is None or (isinstance(value, float) and np.isnan(value))


def _observed_labels(values):
    """The labels of a 1-D array that are not missing, as a list."""
    return [v for v in np.asarray(values, dtype=object).ravel() if not _is_missing(v)]


def _label_pairs(values, name):
    """Rows of an (n, 2) array of labels as tuples, every missing value the same level."""
    v = np.asarray(values, dtype=object)
    if v.ndim != 2 or v.shape[1] != 2:
        raise ValueError(f"{name} must have shape (n, 2), got shape {v.shape}")
    return [tuple(None if _is_missing(c) else c for c in row) for row in v]


def _total_variation(x, y):
    """``1/2 sum_k |p_x(k) - p_y(k)|`` of two lists of hashable outcomes (levels or tuples)."""
    levels = sorted(set(x) | set(y), key=repr)
    index = {level: i for i, level in enumerate(levels)}
    p = np.bincount([index[v] for v in x], minlength=len(levels)) / len(x)
    q = np.bincount([index[v] for v in y], minlength=len(levels)) / len(y)
    return float(0.5 * np.sum(np.abs(p - q)))


def _pairs(values, name):
    """Rows of an (n, 2) float array where both values are present."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 2:
        raise ValueError(f"{name} must have shape (n, 2), got shape {v.shape}")
    return v[~np.isnan(v).any(axis=1)]


def _correlation(v, coefficient):
    """Pearson's ``r`` of the two columns of ``v`` ((n, 2)), on ranks for Spearman's; NaN when a
    column is constant or there are fewer than two rows."""
    if len(v) < 2:
        return float("nan")
    if coefficient == "spearman":
        v = np.stack([_average_ranks(v[:, 0]), _average_ranks(v[:, 1])], axis=1)
    d = v - v.mean(axis=0)  # (n, 2)
    norms = np.sqrt(np.sum(d * d, axis=0))  # (2,)
    if np.any(norms == 0):
        return float("nan")
    return float(np.clip(np.sum(d[:, 0] * d[:, 1]) / (norms[0] * norms[1]), -1.0, 1.0))


def _average_ranks(a):
    """Ranks 1..n of ``a``, ties given the mean of the ranks they span."""
    order = np.argsort(a, kind="mergesort")
    sorted_a = a[order]
    starts = np.flatnonzero(np.r_[True, sorted_a[1:] != sorted_a[:-1]])  # first index of a tie
    ends = np.r_[starts[1:], len(a)]
    ranks = np.empty(len(a))
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)  # mean of start+1 .. end
    return ranks


def _nanmean(scores):
    scores = np.asarray(scores, dtype=np.float64)
    return float(np.mean(scores[~np.isnan(scores)])) if np.any(~np.isnan(scores)) else float("nan")
