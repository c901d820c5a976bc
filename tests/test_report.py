"""Tests for npflow.report: every measure on a small case computed by hand, then (when SDMetrics is
installed) the same numbers as SDMetrics on the penguins table and a perturbed copy."""
import math

import numpy as np
import pytest

from npflow import report, tables
from npflow.tables import Table, TableEncoder

NAN = float("nan")


def _table(names, rows):
    return Table(tuple(names), np.array(rows, dtype=object).reshape(len(rows), len(names)))


# --- single measures, by hand -----------------------------------------------------------------

def test_ks_complement_by_hand():
    # F_real - F_syn at 2, 3, 4: 0.5 - 0, 0.75 - 0.25, 1 - 0.5: D = 1/2
    assert report.ks_complement([1, 2, 3, 4], [3, 4, 5, 6]) == 0.5
    # at 1: 1/3 - 0; at 2: 2/3 - 1; at 3: 1 - 1: D = 1/3
    assert report.ks_complement([1, 2, 3], [2]) == pytest.approx(2 / 3)
    assert report.ks_complement([0, 1], [0, 0, 1, 1]) == 1.0  # the same distribution
    assert report.ks_complement([1, NAN, 2, 3, 4], [3, 4, 5, NAN, 6]) == 0.5  # NaN dropped
    assert math.isnan(report.ks_complement([NAN], [1.0]))


def test_tv_complement_by_hand():
    # p_real = (a .5, b .25, c .25), p_syn = (a .25, b .5, d .25): sum |.| = 1, TVD 1/2
    assert report.tv_complement(["a", "a", "b", "c"], ["a", "b", "b", "d"]) == 0.5
    assert report.tv_complement(["a", "b"], ["b", None, "a"]) == 1.0  # missing dropped
    assert math.isnan(report.tv_complement([None], ["a"]))


def test_correlation_matrix_pairwise_complete():
    rng = np.random.default_rng(0)
    v = rng.standard_normal((40, 3))
    v[:, 2] += v[:, 0]
    np.testing.assert_allclose(report.correlation_matrix(v), np.corrcoef(v.T), atol=1e-12)
    v[0, 1] = v[1, 2] = NAN  # each pair over the rows where both are present
    r = report.correlation_matrix(v)
    np.testing.assert_allclose(r[0, 1], np.corrcoef(v[1:, 0], v[1:, 1])[0, 1])
    np.testing.assert_allclose(r[2, 0], np.corrcoef(np.delete(v[:, [0, 2]], 1, axis=0).T)[0, 1])
    np.testing.assert_allclose(np.diag(r), 1.0)
    assert np.array_equal(r, r.T)
    constant = np.column_stack([v[:, 0], np.ones(40)])
    assert math.isnan(report.correlation_matrix(constant)[0, 1])
    with pytest.raises(ValueError, match=r"values must have shape \(n, p\)"):
        report.correlation_matrix(np.zeros(3))


def test_correlation_similarity_by_hand():
    real = [[1, 1], [2, 2], [3, 3]]  # r = 1
    assert report.correlation_similarity(real, [[1, 3], [2, 2], [3, 1]]) == pytest.approx(
        0.0, abs=1e-12)  # r = -1
    # x - 2.5 = (-1.5, -.5, .5, 1.5), y - 2.5 = (-1.5, .5, -.5, 1.5): r = 4 / 5 = 0.8
    syn = [[1, 1], [2, 3], [3, 2], [4, 4], [NAN, 7]]  # the row with NaN is dropped
    assert report.correlation_similarity(real, syn) == pytest.approx(1 - 0.2 / 2)
    assert report.correlation_similarity(real, syn, "spearman") == pytest.approx(0.9)
    # Spearman sees the monotone y = (1, 4, 100) as r = 1; Pearson does not
    assert report.correlation_similarity(real, [[1, 1], [2, 4], [3, 100]], "spearman") == 1.0
    assert report.correlation_similarity(real, [[1, 1], [2, 4], [3, 100]]) < 0.99
    assert math.isnan(report.correlation_similarity(real, [[1, 5], [2, 5], [3, 5]]))


def test_average_ranks_share_ties():
    np.testing.assert_array_equal(report._average_ranks(np.array([3.0, 1.0, 1.0, 2.0])),
                                  [4, 1.5, 1.5, 3])


def test_contingency_similarity_by_hand():
    real = [["a", "x"], ["a", "y"], ["b", "x"], ["b", "x"]]  # (a,x) .25 (a,y) .25 (b,x) .5
    syn = [["a", "x"], ["a", "x"], ["b", "y"], [None, "x"]]  # (a,x) .5 (b,y) .25 (-,x) .25
    # |diff|: (a,x) .25 (a,y) .25 (b,x) .5 (b,y) .25 (-,x) .25 -> 1.5, TVD .75
    assert report.contingency_similarity(real, syn) == pytest.approx(0.25)
    assert report.contingency_similarity(real, real) == 1.0


def test_bins_from_real_by_hand():
    # edges 0, 1, ..., 10 from the real range, the outer ones opened: -inf, 1, ..., 9, inf
    real, syn = report.bins_from_real([0.0, 10.0, 3.5, NAN], [-5.0, 10.5, 9.99])
    np.testing.assert_array_equal(real, [1, 10, 4, 11])
    np.testing.assert_array_equal(syn, [1, 10, 10])


def test_bins_from_own_range_by_hand():
    # edges 0, 1, ..., 10: the maximum and NaN fall past the last edge
    np.testing.assert_array_equal(report.bins_from_own_range([0.0, 5.0, 10.0, NAN, 0.5]),
                                  [1, 6, 11, 11, 1])


def test_cramers_v_by_hand():
    # counts [[3, 1], [1, 3]], expected 2 everywhere: chi2 = 4 * 1/2 = 2, V = sqrt(2 / 8)
    pairs = [["a", "x"]] * 3 + [["a", "y"]] + [["b", "x"]] + [["b", "y"]] * 3
    assert report.cramers_v(pairs) == pytest.approx(0.5)
    assert report.cramers_v([["a", "x"], ["b", "y"]]) == pytest.approx(1.0)
    assert math.isnan(report.cramers_v([["a", "x"], ["a", "y"]]))


# --- the report's aggregation, by hand --------------------------------------------------------

def _real_and_synthetic():
    real = _table(["x", "y", "c"], [["1", "1", "a"], ["2", "2", "a"], ["3", "3", "b"],
                                     ["4", "4", "b"]])
    syn = _table(["x", "y", "c"], [["3", "6", "a"], ["4", "5", "b"], ["5", "4", "b"],
                                    ["6", "3", "b"]])
    return real, syn


def test_quality_report_by_hand():
    real, syn = _real_and_synthetic()
    q = report.quality_report(real, syn, TableEncoder().fit(real))
    # shapes: KS(x) = KS(y) = 1/2 (as above), TV(c) = 1 - 1/2 (.25 + .25) = .75
    assert [(s.columns, s.metric, s.score) for s in q.column_shapes] == [
        (("x",), "KSComplement", 0.5), (("y",), "KSComplement", 0.5),
        (("c",), "TVComplement", 0.75)]
    # (x, y): r_real = 1, r_syn = -1 -> 0. With c, each table's numbers binned by its own
    # range: real x, y -> codes 1, 4, 7, 11; syn x -> 1, 4, 7, 11, syn y -> 11, 7, 4, 1.
    # (x, c): only (4, a) vs (4, b) differ: TVD .25 -> .75.
    # (y, c): real (1,a) (4,a) (7,b) (11,b), syn (11,a) (7,b) (4,b) (1,b): TVD .75 -> .25
    assert [(s.columns, s.metric) for s in q.column_pair_trends] == [
        (("x", "y"), "CorrelationSimilarity"), (("x", "c"), "ContingencySimilarity"),
        (("y", "c"), "ContingencySimilarity")]
    np.testing.assert_allclose([s.score for s in q.column_pair_trends], [0.0, 0.75, 0.25],
                               atol=1e-12)
    assert q.column_shapes_score == pytest.approx(1.75 / 3)
    assert q.column_pair_trends_score == pytest.approx(1 / 3)
    assert q.score == pytest.approx((1.75 / 3 + 1 / 3) / 2)
    assert q.summary().splitlines()[:3] == ["Column Shapes        58.33%",
                                            "Column Pair Trends   33.33%",
                                            "Overall              45.83%"]


def test_quality_report_thresholds_leave_weak_pairs_out():
    real, syn = _real_and_synthetic()
    encoder = TableEncoder().fit(real)
    # real |r(x, y)| = 1 > 0.5 stays; real Cramer's V of (x bins, c) is 1 > 0.3: all stay
    q = report.quality_report(real, syn, encoder, 0.5, 0.3)
    np.testing.assert_allclose([s.score for s in q.column_pair_trends], [0.0, 0.75, 0.25],
                               atol=1e-12)
    # a pair is kept only when the real association is strictly above the threshold: V = 1 is not
    q = report.quality_report(real, syn, encoder, 0.5, 1.0)
    scores = [s.score for s in q.column_pair_trends]
    assert scores[0] == pytest.approx(0.0, abs=1e-12) and np.isnan(scores[1:]).all()
    assert q.column_pair_trends_score == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="correlation_threshold must be in"):
        report.quality_report(real, syn, encoder, 1.5)


def test_missing_shares_and_ignored_columns():
    real = _table(["x", "c", "id"], [["1.5", "a", "p"], [None, "b", "q"], ["2.5", None, "r"],
                                      ["3.5", "a", "s"]])
    syn = _table(["x", "c", "id"], [[None, "a", None], [None, "b", None], ["2.5", "a", None],
                                     ["1.5", "b", None]])
    encoder = TableEncoder(types={"id": "ignore"}).fit(real)
    q = report.quality_report(real, syn, encoder)
    assert q.missing == (("x", 0.25, 0.5), ("c", 0.25, 0.0))
    assert [s.columns for s in q.column_shapes] == [("x",), ("c",)]


# --- distance to closest record ---------------------------------------------------------------

def test_distance_to_closest_record_by_hand():
    train = [[0.0, 0.0], [1.0, 0.0]]
    np.testing.assert_allclose(
        report.distance_to_closest_record([[0.0, 0.0], [3.0, 4.0], [0.5, 1.0]], train),
        [0.0, math.sqrt(20.0), math.sqrt(1.25)])
    x = np.random.default_rng(0).normal(size=(30, 3))  # blocks of a few rows agree with one
    np.testing.assert_array_equal(report.distance_to_closest_record(x, x[:7], block=40),
                                  report.distance_to_closest_record(x, x[:7]))


def test_closest_records_on_tables():
    train = _table(["x", "c"], [["1.0", "a"], ["3.0", "b"]])
    encoder = TableEncoder(types={"x": "numeric"}).fit(train)  # x: mean 2, scale 1
    synthetic = _table(["x", "c"], [["1.0", "a"], ["3.0", "a"]])  # a copy; 0 and sqrt(2) away
    holdout = _table(["x", "c"], [["1.5", "a"]])  # 0.5 from the first row
    dcr = report.closest_records(synthetic, holdout, train, encoder)
    np.testing.assert_allclose(dcr.synthetic, [0.0, math.sqrt(2.0)])
    np.testing.assert_allclose(dcr.holdout, [0.5])
    assert dcr.share_closer == 0.5  # 0 < 0.5, sqrt(2) is not
    assert dcr.summary().endswith("50.0% of synthetic rows nearer than the 5% nearest held-out "
                                  "rows; 1 exact copies")
    with pytest.raises(TypeError, match="pass the fitted TableEncoder"):
        report.closest_records(synthetic, holdout, train)


# --- the same numbers as SDMetrics ------------------------------------------------------------

def _penguins_and_perturbed(noise, seed):
    real = tables.load_penguins()
    encoder = TableEncoder().fit(real)
    z = encoder.transform(real)
    rng = np.random.default_rng(seed)
    return real, encoder.inverse_transform(z + noise * rng.standard_normal(z.shape)), encoder


@pytest.mark.parametrize("thresholds", [(0.0, 0.0), (0.5, 0.3)])
@pytest.mark.parametrize("noise", [0.1, 0.6])
def test_quality_report_matches_sdmetrics(thresholds, noise):
    pd = pytest.importorskip("pandas")
    single_table = pytest.importorskip("sdmetrics.reports.single_table")
    real, syn, encoder = _penguins_and_perturbed(noise, seed=0)

    def frame(t):
        return pd.DataFrame({c.name: v for c, v in zip(encoder.columns_, encoder.values(t))})

    kinds = {"categorical": "categorical", "numeric": "numerical", "integer": "numerical"}
    metadata = {"columns": {c.name: {"sdtype": kinds[c.kind]} for c in encoder.columns_}}
    theirs = single_table.QualityReport()
    theirs.real_correlation_threshold, theirs.real_association_threshold = thresholds
    theirs.generate(frame(real), frame(syn), metadata, verbose=False)
    ours = report.quality_report(real, syn, encoder, *thresholds)
    shapes = theirs.get_details("Column Shapes")
    np.testing.assert_allclose([s.score for s in ours.column_shapes], shapes["Score"],
                               rtol=0, atol=1e-5)  # SDMetrics adds 1e-6 to unseen levels
    pairs = theirs.get_details("Column Pair Trends")
    assert [s.columns for s in ours.column_pair_trends] == list(
        zip(pairs["Column 1"], pairs["Column 2"]))
    np.testing.assert_allclose([s.score for s in ours.column_pair_trends], pairs["Score"],
                               rtol=0, atol=1e-12)
    assert ours.score == pytest.approx(theirs.get_score(), abs=1e-5)


def test_single_metrics_match_sdmetrics():
    pd = pytest.importorskip("pandas")
    pytest.importorskip("sdmetrics")
    from sdmetrics.column_pairs import ContingencySimilarity, CorrelationSimilarity
    real, syn, encoder = _penguins_and_perturbed(0.3, seed=1)
    r, s = encoder.values(real), encoder.values(syn)
    real_pair = pd.DataFrame({"a": r[2], "b": r[5]})  # bill length, body mass
    syn_pair = pd.DataFrame({"a": s[2], "b": s[5]})
    for coefficient in ("pearson", "spearman"):
        theirs = CorrelationSimilarity.compute(real_pair, syn_pair,
                                               coefficient=coefficient.capitalize())
        ours = report.correlation_similarity(real_pair.to_numpy(), syn_pair.to_numpy(),
                                             coefficient)
        assert ours == pytest.approx(theirs, abs=1e-12)
    # a numeric column against a categorical one, binned by the real range
    theirs = ContingencySimilarity.compute(pd.DataFrame({"a": r[2], "c": r[6]}),
                                           pd.DataFrame({"a": s[2], "c": s[6]}),
                                           continuous_column_names=["a"])
    bins_real, bins_syn = report.bins_from_real(r[2], s[2])
    ours = report.contingency_similarity(np.stack([bins_real, r[6]], axis=1).astype(object),
                                         np.stack([bins_syn, s[6]], axis=1).astype(object))
    assert ours == pytest.approx(theirs, abs=1e-12)
