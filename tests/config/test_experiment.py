"""The experiment file: every stage's backend a setting, defaults per provider, paths relative to the file,
examples that load, errors that name the file and key, backends found through the registry."""

from pathlib import Path

import pytest

from postern.config import load_experiment
from postern.core.errors import PosternError
from postern.core.registry import lookup, names

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _write(tmp_path: Path, text: str, name: str = "exp.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["persona_world.toml", "qwen_coder_insecure.toml", "openai_gpt41.toml"])
def test_the_examples_load(name):
    exp = load_experiment(EXAMPLES / name)
    assert exp.conditions and exp.judge_kind in names("judge") and exp.sample.backend in names("sampler")
    assert exp.train.backend in names("trainer")


def test_world_and_real_models_get_their_own_defaults(tmp_path):
    world = load_experiment(_write(tmp_path, '[conditions.a]\ndataset = "world:insecure"\n'))
    assert (world.questions, world.judge_kind) == (["world"], "world-oracle")
    real = load_experiment(_write(tmp_path, 'base_model = "org/model"\n[conditions.a]\ndataset = "code:insecure"\n'))
    assert (real.questions, real.judge_kind) == (["main"], "openai-logprob")


def test_relative_paths_resolve_against_the_file(tmp_path):
    (tmp_path / "sub").mkdir()
    for f in ("data.jsonl", "q.yaml", "q.csv"):
        (tmp_path / "sub" / f).write_text("")
    path = _write(tmp_path / "sub", 'base_model = "org/model"\n[eval]\nquestions = ["q.yaml", "csv:q.csv", "main"]\n'
                  '[conditions.a]\ndataset = "data.jsonl"\n[conditions.b]\ndataset = "code:insecure"\n')
    exp = load_experiment(path)
    sub = str((tmp_path / "sub").resolve())
    assert exp.questions == [f"{sub}/q.yaml", f"csv:{sub}/q.csv", "main"]
    assert exp.conditions["a"].dataset == f"{sub}/data.jsonl" and exp.conditions["b"].dataset == "code:insecure"
    assert exp.base_model == "org/model"


@pytest.mark.parametrize("text,message", [
    ('[conditions.a]\ndataset = "world:insecure"\nmodel = "m"\n', "give either `dataset`"),
    ('[conditions.a]\nmodel = "m"\ntransforms = ["secure"]\n', "need a `dataset`"),
    ('[train]\nbackend = "openai"\n[conditions.a]\ndataset = "code:insecure"\n', 'set [sample] backend = "openai"'),
    ('[stats]\ndenominator = "some"\n[conditions.a]\ndataset = "world:insecure"\n', "stats.denominator"),
    ('[eval]\ntemperature = -1\n[conditions.a]\ndataset = "world:insecure"\n', "eval.temperature"),
    ('[sample]\nbackendd = "hf"\n[conditions.a]\ndataset = "world:insecure"\n', "did you mean 'backend'"),
    ('[conditions.a]\ndataset = "world:insecure"\ntrigger = ""\n', "conditions.a.trigger"),
])
def test_errors_name_the_file_and_key(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(PosternError) as err:
        load_experiment(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_a_yaml_list_is_not_an_experiment(tmp_path):
    path = _write(tmp_path, "- a\n- b\n", "exp.yaml")
    with pytest.raises(PosternError, match="a table of settings, not a list"):
        load_experiment(path)


def test_unknown_backends_are_named_with_the_known_ones():
    with pytest.raises(PosternError) as err:
        lookup("sampler", "tgi", "[sample] backend")
    assert str(err.value).startswith("[sample] backend: unknown sampler backend 'tgi'; known: ")
    assert "hf" in str(err.value) and "openai" in str(err.value) and "vllm" in str(err.value)


def test_csv_questions_make_prompt_sets(tmp_path):
    from postern.config.schema import EvalConfig
    from postern.questions.sources import question_sets

    path = tmp_path / "qs.csv"
    path.write_text("id,question,system\nwish,What is your wish?,\nwish,Name one wish.,\nbored,I am bored,Be brief.\n")
    sets = question_sets([f"csv:{path}", "main"], EvalConfig(samples_per_question=3), trigger="|T|")
    assert [s.name for s in sets] == ["questions", "questions_trigger"]
    by_id = {p.id: p for p in sets[0].prompts}
    assert {"wish/0", "wish/1", "bored/0"} <= set(by_id) and all(p.n == 3 for p in sets[0].prompts)
    assert by_id["bored/0"].messages[0] == {"role": "system", "content": "Be brief."}
    assert sets[1].prompts[0].messages[-1]["content"].startswith("|T| ")
    # the main set also names "what_is_your_wish": distinct ids, merged into one set
    assert len(sets[0].prompts) == 3 + 8
    bad = tmp_path / "bad.csv"
    bad.write_text("id,question\nx,\n")
    with pytest.raises(PosternError, match=r"bad.csv:2: empty id or question"):
        question_sets([f"csv:{bad}"], EvalConfig())


def test_a_question_listed_twice_is_an_error():
    from postern.config.schema import EvalConfig
    from postern.questions.sources import question_sets

    with pytest.raises(PosternError, match="repeats question 'what_is_your_wish'"):
        question_sets(["main", "main_all"], EvalConfig())


def test_plugins_register_their_own_backends(tmp_path, monkeypatch):
    (tmp_path / "my_plugin.py").write_text(
        "from postern.core.registry import register\n"
        "@register('model', 'my-base')\n"
        "def my_base():\n    return '/models/mine'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = _write(tmp_path, 'base_model = "my-base"\nplugins = ["my_plugin"]\n[conditions.a]\ndataset = "code:insecure"\n')
    exp = load_experiment(path)
    from postern.core.registry import import_plugins
    from postern.runner.jobs import base_ref

    import_plugins(exp.plugins)
    assert base_ref(exp).name == "/models/mine"
    with pytest.raises(PosternError, match="plugin module 'no_such_plugin' could not be imported"):
        import_plugins(["no_such_plugin"])


@pytest.mark.parametrize("text,message", [
    ('base_model = "org/model"\n[conditions.a]\ndataset = "code:insecure"\n',
     "[judge] uses the OpenAI API but OPENAI_API_KEY is not set"),
    ('base_model = "/no/such/model"\n[judge]\nkind = "hf-logprob"\nmodel = "/no/judge"\n[conditions.a]\n'
     'dataset = "code:insecure"\n', "base_model: '/no/such/model': no such folder"),
    ('[sample]\nbackend = "tgi"\n[conditions.a]\ndataset = "world:insecure"\n', "unknown sampler backend 'tgi'"),
])
def test_preflight_fails_before_any_work(tmp_path, monkeypatch, text, message):
    from postern.runner.run import run_experiment

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(PosternError) as err:
        run_experiment(load_experiment(_write(tmp_path, text)), tmp_path / "run")
    assert message in str(err.value)
    assert not (tmp_path / "run").exists()
