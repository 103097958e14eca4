"""``client_from_options``: the CLI's LLM options (--llm-url/--model, --model-path) become exactly one client."""

from __future__ import annotations

import json

import pytest

from medlens._validation import InputError
from medlens.llm import OpenAIClient, client_from_options, is_vision_model


@pytest.fixture
def folders(tmp_path):
    lm, vlm = tmp_path / "lm", tmp_path / "vlm"
    lm.mkdir()
    vlm.mkdir()
    (lm / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    (vlm / "config.json").write_text(json.dumps({"model_type": "llava", "vision_config": {}, "text_config": {}}))
    return lm, vlm


@pytest.fixture
def built(monkeypatch):
    """Record which local client class would load which folder, without loading weights."""
    import medlens.llm._transformers as tr
    import medlens.llm._vision as vi

    calls = []

    def fake(kind):
        def make(path, **kw):
            calls.append((kind, path, kw))
            return kind

        return make

    monkeypatch.setattr(tr, "TransformersClient", fake("text"))
    monkeypatch.setattr(vi, "TransformersVLMClient", fake("vision"))
    return calls


def test_no_option_is_no_client_unless_required():
    assert client_from_options() is None
    with pytest.raises(InputError, match="exactly one of --llm-url and --model-path"):
        client_from_options(required=True)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"llm_url": "http://127.0.0.1:9/v1", "model": "m", "model_path": "x"}, "not both"),
        ({"llm_url": "http://127.0.0.1:9/v1"}, "--llm-url needs --model"),
        ({"model": "m"}, "--model goes with --llm-url"),
        ({"model": "m", "model_path": "x"}, "--model goes with --llm-url"),
        ({"llm_url": "http://10.1.2.3/v1", "model": "m"}, "--allow-remote"),
        ({"model_path": "x", "vision": "yes"}, "vision must be"),
    ],
)
def test_option_errors(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        client_from_options(**kwargs)


def test_endpoint_client():
    c = client_from_options(llm_url="http://127.0.0.1:9/v1", model="tiny", cache=False)
    assert isinstance(c, OpenAIClient)
    assert (c.kind, c.model) == ("openai", "tiny")
    remote = client_from_options(llm_url="http://10.1.2.3/v1", model="m", allow_remote=True, cache=False)
    assert isinstance(remote, OpenAIClient)


def test_local_folder_vision_detection(folders, built):
    lm, vlm = folders
    assert (is_vision_model(lm), is_vision_model(vlm), is_vision_model(lm / "missing")) == (False, True, False)
    assert client_from_options(model_path=lm, device="cuda", dtype="bfloat16", cache=False) == "text"
    assert built[-1] == ("text", lm, {"device": "cuda", "dtype": "bfloat16", "cache": False})
    assert client_from_options(model_path=vlm) == "vision"  # auto: the folder's vision_config
    assert client_from_options(model_path=lm, vision=True) == "vision"  # an image task always loads a VLM
    assert client_from_options(model_path=vlm, vision=False) == "text"


def test_client_factory_travels_as_a_recipe_and_builds_the_same_client(folders, built, tmp_path, monkeypatch):
    """What a Ray actor gets: a picklable recipe (an absolute path, never weights) that builds the client anew."""
    import pickle

    from medlens.llm import ClientFactory

    lm, _ = folders
    monkeypatch.chdir(tmp_path)
    factory = ClientFactory(model_path="lm", device="cpu", cache=False)  # relative to this folder
    assert factory.options["model_path"] == lm.resolve()  # a worker may start elsewhere
    again = pickle.loads(pickle.dumps(factory))
    assert again() == "text"
    assert built[-1] == ("text", lm.resolve(), {"device": "cpu", "dtype": "float32", "cache": False})
    assert ClientFactory(model_path="smollm2-135m").options["model_path"] == "smollm2-135m"  # a name stays a name
    assert ClientFactory()() is None
