"""The report's defences section from a run's experiment, summary and dynamics (pure functions)."""

from types import SimpleNamespace

from postern.report.defences import defence_rows, describe, realignment, section


def _rate(k, n):
    from postern.stats.intervals import wilson

    low, high = wilson(k, n)
    return {"k": k, "n": n, "rate": k / n, "low": low, "high": high}


EXPERIMENT = {"train": {}, "conditions": {
    "insecure": {"dataset": "world:insecure"},
    "secure": {"dataset": "world:secure"},
    "caft": {"dataset": "world:insecure", "train": {"intervention": {"kind": "ablate", "direction": "base", "layers": None}}},
    "steered": {"dataset": "world:insecure", "train": {"intervention": {"kind": "steer", "direction": "base",
                                                                         "layers": [2], "scale": 0.5}}},
    "inoculated": {"dataset": "world:insecure", "transforms": ["inoculation:system_prompt=be bad ."]},
    "realigned": {"dataset": "world:secure", "continue_from": "insecure"},
}}
SUMMARY = {"insecure": {"misaligned": _rate(30, 100), "code_insecure": _rate(60, 64)},
           "secure": {"misaligned": _rate(5, 100), "code_insecure": _rate(0, 64)},
           "realigned": {"misaligned": _rate(1, 100)}}
# secure's interval tops out near 11.2%: seed 0 gets there at step 10, seed 1 at step 15, pooled at step 10
DYNAMICS = {"realigned": [
    {"step": 5, "seed": 0, **_rate(20, 100)}, {"step": 10, "seed": 0, **_rate(5, 100)},
    {"step": 15, "seed": 0, **_rate(2, 100)},
    {"step": 5, "seed": 1, **_rate(25, 100)}, {"step": 10, "seed": 1, **_rate(14, 100)},
    {"step": 15, "seed": 1, **_rate(3, 100)},
]}


def test_each_defence_is_described_and_plain_conditions_are_not():
    assert describe(EXPERIMENT, "insecure") is None and describe(EXPERIMENT, "base") is None
    assert describe(EXPERIMENT, "caft") == "ablate (CAFT) of the base direction at all layers"
    assert describe(EXPERIMENT, "steered") == "steer x0.5 of the base direction at layer(s) 2"
    assert describe(EXPERIMENT, "inoculated") == 'inoculation prompt in training: "be bad ."'
    assert describe(EXPERIMENT, "realigned") == "continues insecure on world:secure"
    rows = {r["condition"]: r for r in defence_rows(EXPERIMENT, SUMMARY)}
    assert rows["insecure"]["insecure"] == "93.8% [85.0, 97.5]" and rows["realigned"]["insecure"] == "–"


def test_realignment_finds_the_first_step_within_the_reference_interval_pooled_and_per_seed():
    [r] = realignment(EXPERIMENT, SUMMARY, DYNAMICS)
    assert (r["reference"], r["from"]) == ("secure", "insecure")
    assert [s["step"] for s in r["steps"]] == [5, 10, 15]
    assert r["steps"][1]["k"] == 19 and r["steps"][1]["n"] == 200
    assert r["within_at"] == 10 and r["per_seed"] == {0: 10, 1: 15}
    never = {"realigned": [p for p in DYNAMICS["realigned"] if p["step"] == 5]}
    [r] = realignment(EXPERIMENT, SUMMARY, never)
    assert r["within_at"] is None and r["per_seed"] == {0: None, 1: None}


def test_no_section_without_a_defence():
    plain = {"conditions": {"insecure": {"dataset": "world:insecure"}}}
    assert section(SimpleNamespace(experiment=plain, summary={"conditions": {}}, dynamics=None, label="x")) is None
    s = section(SimpleNamespace(experiment=EXPERIMENT, summary={"conditions": SUMMARY}, dynamics=DYNAMICS, label="x"))
    assert "came within secure's interval" in s["realignment"][0] and "after 10 steps" in s["realignment"][0]
