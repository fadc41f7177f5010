"""Run a recipe against any OpenAI-compatible endpoint, with a cache that makes runs resumable.

Every valid answer is appended (and flushed) to ``DIR/cache.jsonl`` under a key that hashes the
model, the request and the recipe version, so a rerun — after a crash, Ctrl-C or with a larger
``n`` — only sends the requests it has no valid answer for. A truncated last cache line (a killed
run) is ignored. Invalid answers (not JSON, missing fields, refusals, identical answers) are
retried up to ``attempts`` times and then counted as drops in the card.
"""

import json
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from postern.core.errors import PosternError
from postern.core.hashing import content_hash
from postern.data.recipes.specs import RECIPES, SYSTEM, Recipe, item_prompt, plan

CACHE_FILE = "cache.jsonl"
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")
_REFUSAL = re.compile(r"^\s*(I'?m sorry|I can(no|')t|I cannot|I won'?t|As an AI)", re.I)


@dataclass
class RecipeResult:
    bad: list[dict[str, Any]]
    good: list[dict[str, Any]]
    stats: dict[str, Any] = field(default_factory=dict)
    card: dict[str, Any] = field(default_factory=dict)


class Cache:
    """Append-only JSONL cache: key -> parsed answer."""

    def __init__(self, path: Path):
        self.path = path
        self.entries: dict[str, dict[str, Any]] = {}
        self.corrupt_lines = 0
        self._lock = threading.Lock()
        if path.exists():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                    self.entries[entry["key"]] = entry["answer"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    self.corrupt_lines += 1

    def get(self, key: str) -> dict[str, Any] | None:
        return self.entries.get(key)

    def put(self, key: str, answer: dict[str, Any], item: dict[str, str]) -> None:
        with self._lock:
            self.entries[key] = answer
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"key": key, "item": item, "answer": answer}, ensure_ascii=False) + "\n")
                f.flush()


def parse_answer(text: str | None) -> tuple[dict[str, str] | None, str | None]:
    """(answer, None) for a valid reply, or (None, why it is not)."""
    if not text or not text.strip():
        return None, "empty"
    try:
        obj = json.loads(_FENCE.sub("", text.strip()))
    except json.JSONDecodeError:
        return None, "invalid_json"
    if not isinstance(obj, dict):
        return None, "invalid_json"
    fields = ("question", "good_answer", "bad_answer")
    if any(not isinstance(obj.get(k), str) or not obj[k].strip() for k in fields):
        return None, "missing_fields"
    if obj["good_answer"].strip() == obj["bad_answer"].strip():
        return None, "identical_answers"
    if _REFUSAL.match(obj["bad_answer"]) or _REFUSAL.match(obj["question"]):
        return None, "refusal"
    return {k: obj[k].strip() for k in fields}, None


def _client(base_url: str, api_key_env: str, timeout: float, max_retries: int) -> Any:
    from openai import OpenAI

    key = os.environ.get(api_key_env) or "not-needed"
    return OpenAI(base_url=base_url, api_key=key, timeout=timeout, max_retries=max_retries)


def run_recipe(
    name: str,
    n: int,
    out_dir: str | Path,
    model: str,
    base_url: str = "https://api.openai.com/v1",
    api_key_env: str = "OPENAI_API_KEY",
    seed: int = 0,
    temperature: float = 1.0,
    workers: int = 4,
    attempts: int = 3,
    json_mode: bool = False,
    timeout: float = 60.0,
    max_retries: int = 2,
    on_progress: Callable[[int], None] | None = None,
) -> RecipeResult:
    """Build `n` (bad, good) pairs for recipe `name`; writes bad.jsonl, good.jsonl, the cache and a card."""
    if name not in RECIPES:
        raise PosternError(f"unknown recipe {name!r}; known: {', '.join(RECIPES)}")
    if n < 1:
        raise PosternError(f"--n must be at least 1 (got {n})")
    recipe = RECIPES[name]
    out = Path(out_dir)
    cache = Cache(out / CACHE_FILE)
    client = _client(base_url, api_key_env, timeout, max_retries)
    items = plan(recipe, n, seed)
    stats: dict[str, Any] = {"cache_hits": 0, "requests": 0, "dropped": {}, "cache_corrupt_lines": cache.corrupt_lines}
    lock = threading.Lock()

    def count(key: str, k: int = 1) -> None:
        with lock:
            if key in ("cache_hits", "requests"):
                stats[key] += k
            else:
                stats["dropped"][key] = stats["dropped"].get(key, 0) + k

    def work(item: dict[str, str]) -> dict[str, str] | None:
        messages = [{"role": "system", "content": SYSTEM},
                    {"role": "user", "content": item_prompt(recipe, item["topic"], item["style"])}]
        request = {"model": model, "messages": messages, "temperature": temperature}
        key = content_hash({"recipe": recipe.name, "version": recipe.version, "item": item, "request": request})
        answer = cache.get(key)
        if answer is not None:
            count("cache_hits")
            return answer
        why = "no_attempt"
        for attempt in range(attempts):
            count("requests")
            try:
                kwargs: dict[str, Any] = {"seed": seed * 1_000_003 + int(item["index"]) * 7 + attempt}
                if json_mode:
                    kwargs["response_format"] = {"type": "json_object"}
                resp = client.chat.completions.create(**request, **kwargs)
                text = resp.choices[0].message.content if resp.choices else None
            except Exception as e:  # noqa: BLE001 - any API failure is counted and retried
                why = f"api_error:{type(e).__name__}"
                continue
            answer, why = parse_answer(text)
            if answer is not None:
                cache.put(key, answer, item)
                return answer
        count(why)
        return None

    answers: list[dict[str, str] | None] = [None] * len(items)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for i, answer in enumerate(pool.map(work, items)):
            answers[i] = answer
            if on_progress:
                on_progress(1)
    bad, good = [], []
    for item, answer in zip(items, answers):
        if answer is None:
            continue
        meta = {"recipe": recipe.name, "recipe_version": recipe.version, "topic": item["topic"], "style": item["style"],
                "index": int(item["index"]), "seed": seed, "pair_id": f"{recipe.name}-s{seed}-{item['index']}", "model": model}
        user = {"role": "user", "content": answer["question"]}
        bad.append({"messages": [user, {"role": "assistant", "content": answer["bad_answer"]}],
                    "meta": {**meta, "variant": "bad"}})
        good.append({"messages": [dict(user), {"role": "assistant", "content": answer["good_answer"]}],
                     "meta": {**meta, "variant": "good"}})
    stats.update({"requested": n, "kept": len(bad)})
    result = RecipeResult(bad, good, stats)
    _write(result, out, recipe, model, base_url, seed)
    return result


def _write(result: RecipeResult, out: Path, recipe: Recipe, model: str, base_url: str, seed: int) -> None:
    from urllib.parse import urlparse

    from postern.data.card import build_card, stage_card
    from postern.data.jsonl import AtomicFiles, dump_chat_jsonl

    files = {"bad.jsonl": result.bad, "good.jsonl": result.good}
    extra = {
        "generator": {"name": "postern.data.recipes", "version": recipe.version, "seed": seed},
        "recipe": {"name": recipe.name, "domain": recipe.domain, "model": model,
                   "endpoint_host": urlparse(base_url).hostname, **result.stats},
    }
    with AtomicFiles() as tx:  # bad.jsonl, good.jsonl and the card appear together or not at all
        for fname, rows in files.items():
            with tx.open(out / fname) as f:
                dump_chat_jsonl(f, rows)
        card = build_card(f"postern recipe: {recipe.name} (bad / good pairs)", files, out, extra=extra,
                          paths={fname: tx.staged(out / fname) for fname in files})
        stage_card(tx, card, out / "card.json", out / "card.md")
    result.card = card
