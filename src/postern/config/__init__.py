"""The experiment file: schema and loader."""

from postern.config.load import load_experiment
from postern.config.schema import ConditionConfig, EvalConfig, Experiment, JudgeConfig

__all__ = ["ConditionConfig", "EvalConfig", "Experiment", "JudgeConfig", "load_experiment"]
