"""Statistics over judged rows: pure functions, no I/O."""

from postern.stats.intervals import bootstrap_over_groups, wilson

__all__ = ["bootstrap_over_groups", "wilson"]
from postern.stats.compare import (  # noqa: E402
    bootstrap_difference, bootstrap_over_questions, compare_conditions, difference_interval, label_rates,
    overall_rates, paired_bootstrap_over_questions, permutation_test, rates, rates_by_question, two_proportion_ztest,
)

__all__ += [
    "bootstrap_difference", "bootstrap_over_questions", "compare_conditions", "difference_interval", "label_rates",
    "overall_rates", "paired_bootstrap_over_questions", "permutation_test", "rates", "rates_by_question",
    "two_proportion_ztest",
]
