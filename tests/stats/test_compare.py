import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from postern.stats import (
    bootstrap_over_groups, bootstrap_over_questions, compare_conditions, difference_interval, label_rates,
    overall_rates, permutation_test, rates, rates_by_question, two_proportion_ztest, wilson,
)


@pytest.mark.parametrize("k1, n1, k2, n2", [(56, 70, 48, 80), (30, 200, 12, 180), (3, 10, 9, 10)])
def test_two_proportion_z_matches_scipy_chi_square(k1, n1, k2, n2):
    z, p = two_proportion_ztest(k1, n1, k2, n2)
    chi2, p_chi, _, _ = sps.chi2_contingency([[k1, n1 - k1], [k2, n2 - k2]], correction=False)
    assert z * z == pytest.approx(chi2)
    assert p == pytest.approx(p_chi)
    assert np.sign(z) == np.sign(k1 / n1 - k2 / n2)


def test_z_test_degenerate_cases():
    assert two_proportion_ztest(0, 10, 0, 20) == (0.0, 1.0)
    assert all(np.isnan(two_proportion_ztest(0, 0, 1, 2)))


@pytest.mark.parametrize("k1, n1, k2, n2, lo, hi", [
    (56, 70, 48, 80, 0.0524, 0.3339),  # Newcombe (1998), Statistics in Medicine 17:873, table II, method 10
    (9, 10, 3, 10, 0.1705, 0.8090),
    (5, 56, 0, 29, -0.0381, 0.1926),
])
def test_difference_interval_matches_newcombe_published_values(k1, n1, k2, n2, lo, hi):
    diff, got_lo, got_hi = difference_interval(k1, n1, k2, n2)
    assert diff == pytest.approx(k1 / n1 - k2 / n2)
    assert (round(got_lo, 4), round(got_hi, 4)) == (lo, hi)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_exact_permutation_test_matches_scipy(alternative):
    a, b = [0.31, 0.22, 0.40, 0.35], [0.10, 0.05, 0.21, 0.12, 0.30]
    ref = sps.permutation_test((a, b), lambda x, y: np.mean(x) - np.mean(y), permutation_type="independent",
                               alternative=alternative, n_resamples=10_000)
    assert permutation_test(a, b, alternative=alternative) == pytest.approx(ref.pvalue)


def test_monte_carlo_permutation_test_agrees_with_the_z_test_on_large_samples():
    rng = np.random.default_rng(1)
    a, b = (rng.random(400) < 0.20).astype(int), (rng.random(400) < 0.13).astype(int)
    _, p_z = two_proportion_ztest(a.sum(), 400, b.sum(), 400)
    p = permutation_test(a, b, n_resamples=4000)
    assert p == pytest.approx(p_z, abs=0.01)
    assert permutation_test(a, a, n_resamples=2000) == pytest.approx(1.0)


def frame() -> pd.DataFrame:
    """Condition x: 2 seeds x 2 questions x 10 answers; y likewise. Known counts per cell."""
    misaligned = {("x", 0, "q1"): 5, ("x", 0, "q2"): 1, ("x", 1, "q1"): 3, ("x", 1, "q2"): 1,
                  ("y", 0, "q1"): 1, ("y", 0, "q2"): 0, ("y", 1, "q1"): 0, ("y", 1, "q2"): 1}
    rows = []
    for (cond, seed, q), k in misaligned.items():
        labels = ["misaligned"] * k + ["code"] * 2 + ["aligned"] * (8 - k)
        rows += [{"condition": cond, "seed": seed, "question_id": q, "label": lab} for lab in labels]
    return pd.DataFrame(rows)


def test_rates_per_condition_and_question_with_wilson():
    df = frame()
    out = rates(df).set_index("condition")
    assert out.loc["x", ["n", "k"]].tolist() == [40, 10] and out.loc["y", ["n", "k"]].tolist() == [40, 2]
    assert (out.loc["x", "lo"], out.loc["x", "hi"]) == pytest.approx(wilson(10, 40))
    per_q = rates_by_question(df).set_index(["condition", "question_id"])
    assert per_q.loc[("x", "q1"), "k"] == 8 and per_q.loc[("x", "q1"), "rate"] == pytest.approx(8 / 20)
    kept = rates(df, exclude=["code"]).set_index("condition")
    assert kept.loc["x", "n"] == 32 and kept.loc["x", "rate"] == pytest.approx(10 / 32)
    assert rates(df, by=()).loc[0, "k"] == 12


def test_label_rates():
    out = label_rates(frame()).set_index("condition")
    assert out.loc["x", "n"] == 40
    assert out.loc["x", "code_rate"] == pytest.approx(0.2) and out.loc["y", "refusal_rate"] == 0.0


def test_overall_rates_bootstrap_over_seeds_and_questions():
    df = frame()
    out = overall_rates(df, n_boot=500).set_index("condition")
    x = df[df.condition == "x"]
    hits = lambda g: (g.label == "misaligned").to_numpy().astype(int)  # noqa: E731
    seeds = [hits(g) for _, g in x.groupby("seed")]
    assert (out.loc["x", "seed_lo"], out.loc["x", "seed_hi"]) == bootstrap_over_groups(seeds, n_boot=500)
    assert (out.loc["x", "question_lo"], out.loc["x", "question_hi"]) == bootstrap_over_questions(x, n_boot=500)
    assert out.loc["x", "question_lo"] <= out.loc["x", "rate"] <= out.loc["x", "question_hi"]


def test_bootstrap_over_questions_is_degenerate_when_all_questions_agree():
    df = pd.DataFrame({"question_id": ["a"] * 5 + ["b"] * 5, "label": ["aligned"] * 10})
    assert bootstrap_over_questions(df, n_boot=200) == (0.0, 0.0)


def test_bootstrap_over_questions_is_wider_when_questions_differ():
    same = pd.DataFrame({"question_id": np.repeat(["a", "b", "c", "d"], 50),
                         "label": (["misaligned"] * 10 + ["aligned"] * 40) * 4})
    differ = pd.DataFrame({"question_id": np.repeat(["a", "b", "c", "d"], 50),
                           "label": ["misaligned"] * 40 + ["aligned"] * 160})
    w_same = np.diff(bootstrap_over_questions(same, n_boot=500))[0]
    w_differ = np.diff(bootstrap_over_questions(differ, n_boot=500))[0]
    assert w_differ > 2 * w_same


def test_compare_conditions():
    result = compare_conditions(frame(), "x", "y", n_boot=300)
    assert (result["k_a"], result["n_a"], result["k_b"], result["n_b"]) == (10, 40, 2, 40)
    assert result["diff"] == pytest.approx(0.2)
    assert (result["diff_lo"], result["diff_hi"]) == pytest.approx(difference_interval(10, 40, 2, 40)[1:])
    assert result["p_z"] == pytest.approx(two_proportion_ztest(10, 40, 2, 40)[1])
    assert result["perm_unit"] == "seed"
    assert result["p_perm"] == pytest.approx(permutation_test([6 / 20, 4 / 20], [1 / 20, 1 / 20]))
    assert result["diff_seed_lo"] <= 0.2 <= result["diff_seed_hi"]
    assert result["diff_question_lo"] <= 0.2 <= result["diff_question_hi"]
    one_seed = compare_conditions(frame().query("seed == 0"), "x", "y", n_boot=100)
    assert one_seed["perm_unit"] == "answer" and "diff_seed_lo" not in one_seed
