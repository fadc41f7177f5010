"""What inspect_ai's `inspect_ai` entry point imports: registers postern's tasks, scorers and metrics."""

from postern.inspect.task import emergent_misalignment, logprob_judge, misaligned_high, misaligned_low, misaligned_rate

__all__ = ["emergent_misalignment", "logprob_judge", "misaligned_high", "misaligned_low", "misaligned_rate"]
