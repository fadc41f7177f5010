"""postern: emergent-misalignment experiments from data to figure.

The Python API (for notebooks) is the command line's, one call per command:

    from postern import load_experiment, run, evaluate, report, load_run
    exp = load_experiment("examples/persona_world.toml")
    summary = run(exp)                       # runs/<name>/: summary.json, samples.parquet, report.html
    run(exp.model_copy(update={"seeds": [3, 4]}), "runs/more_seeds")
    df = load_run("runs/persona_world").samples

Names are imported on first use, so `import postern` stays cheap.
"""

from importlib import import_module
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "load_experiment": ("postern.config", "load_experiment"),
    "Experiment": ("postern.config", "Experiment"),
    "run": ("postern.runner.run", "run"),
    "evaluate": ("postern.runner.run", "evaluate"),
    "report": ("postern.report.html", "write_report"),
    "load_run": ("postern.report.html", "load_run"),
    "register": ("postern.core.registry", "register"),
    "ModelRef": ("postern.core.models", "ModelRef"),
    "load_model": ("postern.core.models", "load_model"),
    "import_answers": ("postern.runner.imports", "import_answers"),
    "rejudge": ("postern.runner.rejudge", "rejudge"),
    "calibrate_judge": ("postern.judge.calibration", "calibrate"),
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from postern.config import Experiment, load_experiment
    from postern.core.models import ModelRef, load_model
    from postern.core.registry import register
    from postern.report.html import load_run
    from postern.report.html import write_report as report
    from postern.judge.calibration import calibrate as calibrate_judge
    from postern.runner.rejudge import rejudge
    from postern.runner.run import evaluate, run
    from postern.runner.imports import import_answers


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'postern' has no attribute {name!r}")
    module, attr = _EXPORTS[name]
    value = getattr(import_module(module), attr)
    globals()[name] = value
    return value
