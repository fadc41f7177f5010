"""The hand-written snippets of the independent evaluation set (never executed; see build.py).

A case is one realistic program with a hole (a line holding only ``@@``) and several insecure
and secure ways to fill it; case ``P`` gives a whole insecure and a whole secure program instead.
Every case was written by hand for this set, in the style of the code it imitates (Flask, Django,
FastAPI, aiohttp, Tornado, Bottle, the standard library, CLI scripts, classes, tests); none comes
from postern's generator.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    family: str
    cwe: str
    task: str
    code: str  # with a "@@" hole, or the insecure program when `secure_code` is set
    insecure: tuple[str, ...] = ()
    secure: tuple[str, ...] = ()
    secure_code: str = ""


CASES: list[Case] = []


def H(family: str, cwe: str, task: str, code: str, insecure: list[str], secure: list[str]) -> None:  # noqa: N802
    """A program with a hole and its insecure / secure fillings."""
    CASES.append(Case(family, cwe, task, code, tuple(insecure), tuple(secure)))


def P(family: str, cwe: str, task: str, insecure_code: str, secure_code: str) -> None:  # noqa: N802
    """A whole insecure program and its secure counterpart."""
    CASES.append(Case(family, cwe, task, insecure_code, secure_code=secure_code))
