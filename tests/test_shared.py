"""Shared pieces: the lazy registry, optional-dependency gating, input validation, provenance."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

import medlens
from medlens._optional import is_available, require
from medlens._provenance import SCHEMA_VERSION, config_hash, provenance, stamp
from medlens._registry import Registry
from medlens._validation import (
    InputError,
    check_finite,
    check_interval,
    check_option,
    check_probabilities,
    check_same_length,
    did_you_mean,
)

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "medlens"


# --------------------------------------------------------------------------------------------------- registry
def test_registry_lazy_placeholder_imports_on_first_get(monkeypatch):
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    r: Registry = Registry("converter")
    r.register("hsv", "colorsys:rgb_to_hsv", description="RGB to HSV")
    assert "colorsys" not in sys.modules  # registering a placeholder imports nothing
    fn = r.get("hsv")
    assert "colorsys" in sys.modules
    assert fn(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)
    assert r.get("hsv") is fn  # resolved once, then cached


def test_registry_placeholder_of_missing_module_fails_only_on_get():
    r: Registry = Registry("backend")
    r.register("ghost", "medlens_no_such_module_xyz:thing")
    assert "ghost" in r
    with pytest.raises(ModuleNotFoundError):
        r.get("ghost")


def test_registry_objects_aliases_meta_and_names():
    r: Registry = Registry("metric")
    r.register("sqrt", "math:sqrt", aliases=("square_root",), extra=None)
    r.register("const", 42, description="answer")

    @r.decorator("double", extra="viz")
    def double(x):
        return 2 * x

    assert r.get("square_root")(16.0) == 4.0
    assert r.resolve_name("square_root") == "sqrt"
    assert r.get("const") == 42
    assert r.get("double") is double
    assert r.meta("double") == {"extra": "viz"}
    assert r.meta("square_root") == {"extra": None}
    assert r.names() == ["const", "double", "sqrt"]
    assert r.names("d*") == ["double"]
    assert list(r) == ["const", "double", "sqrt"]
    assert len(r) == 3
    assert "square_root" in r
    assert "cube" not in r
    with pytest.raises(ValueError, match="metric 'sqrt' is already registered"):
        r.register("sqrt", "math:sqrt")
    with pytest.raises(ValueError, match="already registered"):
        r.register("square_root", 1)  # an alias name is taken too


def test_registry_did_you_mean():
    r: Registry = Registry("taxonomy")
    r.register("cxr_anatomic_v1", 1)
    r.register("chexpert_pham", 2)
    with pytest.raises(KeyError) as e:
        r.get("chexpert_phm")
    msg = e.value.args[0]
    assert (
        msg
        == "Unknown taxonomy 'chexpert_phm'. Did you mean: 'chexpert_pham'? Available: chexpert_pham, cxr_anatomic_v1"
    )
    with pytest.raises(KeyError, match="Unknown taxonomy 'zzz'. Available:"):
        r.get("zzz")


def test_registry_freeze():
    r: Registry = Registry("encoder")
    r.register("a", 1)
    r.freeze()
    with pytest.raises(RuntimeError, match="The encoder registry is frozen; cannot register 'b'"):
        r.register("b", 2)
    assert r.get("a") == 1


# --------------------------------------------------------------------------------------------------- require
def test_require_returns_the_module():
    import json

    assert require("json", extra="llm") is json
    assert is_available("json")
    assert not is_available("medlens_no_such_module_xyz")


def test_require_names_the_extra_and_pip_line():
    with pytest.raises(ImportError) as e:
        require("medlens_no_such_module_xyz.sub", extra="retrieval", purpose="the FAISS index")
    msg = str(e.value)
    assert msg.startswith("the FAISS index requires 'medlens_no_such_module_xyz', which is not installed")
    assert msg.endswith('Install it with: pip install "medlens[retrieval]"')
    assert isinstance(e.value.__cause__, ImportError)
    with pytest.raises(ImportError, match=r"^this feature requires 'medlens_no_such_module_xyz'"):
        require("medlens_no_such_module_xyz", extra="io")


def _extras() -> set[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return set(data["project"]["optional-dependencies"])


def _sources() -> list[Path]:
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 10
    return files


_REQUIRE_CALL = re.compile(r"\brequire\(\s*[^()]*?\bextra\s*=\s*[\"']([^\"']+)[\"']", re.DOTALL)
_PIP_LINE = re.compile(r"medlens\[([A-Za-z0-9_,-]+)\]")


def test_every_required_extra_exists_in_pyproject():
    """The fairlearn lesson: an ImportError that names an extra pyproject.toml does not define sends users nowhere."""
    extras = _extras()
    used: dict[str, set[str]] = {}
    for path in _sources():
        # doctest lines (">>> ...") are examples, not calls the library makes
        code = "\n".join(line for line in path.read_text(encoding="utf-8").splitlines() if ">>>" not in line)
        for extra in _REQUIRE_CALL.findall(code):
            used.setdefault(extra, set()).add(str(path.relative_to(ROOT)))
    assert used, "no require(..., extra=...) call found; the regex is out of date"
    missing = {e: sorted(files) for e, files in used.items() if e not in extras}
    assert not missing, f"require() names extras missing from [project.optional-dependencies]: {missing}"


def test_every_require_call_is_seen_by_the_ast():
    """Cross-check the regex with the AST (catches calls formatted in ways the regex could miss)."""
    extras = _extras()
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "require":
                kw = {k.arg: k.value for k in node.keywords}
                assert "extra" in kw, f"{path}:{node.lineno}: require() without extra="
                assert isinstance(kw["extra"], ast.Constant), f"{path}:{node.lineno}: extra must be a literal"
                assert kw["extra"].value in extras, f"{path}:{node.lineno}: unknown extra {kw['extra'].value!r}"


def test_every_pip_install_hint_names_a_real_extra():
    extras = _extras() | {"all", "dev"}
    for path in _sources():
        for m in _PIP_LINE.finditer(path.read_text(encoding="utf-8")):
            for extra in m.group(1).split(","):
                assert extra in extras, f"{path}: 'medlens[{extra}]' is not an extra in pyproject.toml"


def test_registered_taxonomy_extras_exist():
    from medlens.taxonomy import list_taxonomies

    extras = _extras()
    for item in list_taxonomies():
        assert item.get("extra") is None or item["extra"] in extras, item


# ------------------------------------------------------------------------------------------------ validation
def test_check_option():
    assert check_option("micro", ("micro", "macro"), name="average") == "micro"
    with pytest.raises(InputError) as e:
        check_option("mikro", ("micro", "macro"), name="average", where="evaluate()")
    assert str(e.value) == (
        "The 'average' parameter of evaluate() must be one of {'micro', 'macro'}; got 'mikro'. "
        "Did you mean: 'micro', 'macro'?"
    )
    with pytest.raises(InputError, match=r"got 3\.$"):
        check_option(3, (1, 2), name="k")
    assert issubclass(InputError, ValueError)


def test_check_interval():
    assert check_interval(0.5, name="alpha", low=0, high=1) == 0.5
    assert check_interval(0, name="alpha", low=0, high=1) == 0
    with pytest.raises(InputError, match=r"^The 'alpha' parameter must be in the range \(0, 1\); got 0\.$"):
        check_interval(0, name="alpha", low=0, high=1, closed="neither")
    with pytest.raises(InputError, match=r"range \[1, inf\]; got 0"):
        check_interval(0, name="n", low=1)
    with pytest.raises(InputError, match="must be finite; got nan"):
        check_interval(float("nan"), name="x")
    with pytest.raises(TypeError, match="must be a number; got str '0.5'"):
        check_interval("0.5", name="x")
    with pytest.raises(TypeError, match="got bool"):
        check_interval(True, name="x")


def test_check_same_length():
    assert check_same_length([1, 2], [3, 4]) == 2
    with pytest.raises(InputError, match="^y_true and y_pred must have the same number of samples; got 2 and 1.$"):
        check_same_length([1, 2], [3])


def test_check_finite_and_probabilities_name_the_entry():
    x = np.array([[0.1, 0.2], [0.3, np.inf]])
    with pytest.raises(InputError) as e:
        check_finite(x, name="scores", columns=["A", "B"], ids=["s1", "s2"])
    assert str(e.value) == (
        "scores must contain finite numbers; found inf at id 's2', column 'B' (1 non-finite value(s) in all). "
        "Remove or impute them."
    )
    with pytest.raises(InputError, match="found nan at row 1"):
        check_finite(np.array([0.0, np.nan]), name="v")
    with pytest.raises(InputError, match=r"^p must be probabilities in \[0, 1\]; found -0\.5 at row 0, column 'A'\."):
        check_probabilities(np.array([[-0.5, 0.2]]), name="p", columns=["A", "B"])
    ok = np.array([[0.0, 1.0]])
    assert check_probabilities(ok, name="p") is ok


def test_did_you_mean():
    assert did_you_mean("Pneumonai", ["Pneumonia", "Edema"]) == " Did you mean: 'Pneumonia'?"
    assert did_you_mean("zzz", ["Pneumonia"]) == ""


# ------------------------------------------------------------------------------------------------ provenance
def test_config_hash_is_key_order_independent():
    a = {"taxonomy": "cxr", "alpha": 0.02, "nested": {"x": 1, "y": [1, 2]}}
    b = {"nested": {"y": [1, 2], "x": 1}, "alpha": 0.02, "taxonomy": "cxr"}
    assert config_hash(a) == config_hash(b)
    assert re.fullmatch(r"[0-9a-f]{64}", config_hash(a))
    assert config_hash(a) != config_hash(a | {"alpha": 0.05})
    assert config_hash({"y": [1, 2]}) != config_hash({"y": [2, 1]})  # list order does matter
    # numpy values, sets and paths hash like their plain equivalents
    assert config_hash({"a": np.array([1, 2]), "s": {"b", "a"}, "p": Path("x")}) == config_hash(
        {"a": [1, 2], "s": ["a", "b"], "p": "x"}
    )


def test_provenance_block(tmp_path):
    from medlens.taxonomy import load_taxonomy

    f = tmp_path / "truth.csv"
    f.write_text("id,label\na,Edema\n", encoding="utf-8")
    tax = load_taxonomy("chexpert_pham")
    prov = provenance(
        command="hier evaluate",
        config={"k": 1},
        seed=7,
        inputs={"truth": f, "missing": tmp_path / "nope.csv"},
        models={"encoder": "minilm"},
        taxonomy=tax,
    )
    assert list(prov) == [
        "medlens_version",
        "command",
        "config_hash",
        "seed",
        "input_hashes",
        "model_ids",
        "taxonomy",
    ]
    assert prov["medlens_version"] == medlens.__version__
    assert prov["config_hash"] == config_hash({"k": 1})
    assert prov["seed"] == 7
    import hashlib

    assert prov["input_hashes"]["truth"] == {"path": str(f), "sha256": hashlib.sha256(f.read_bytes()).hexdigest()}
    assert prov["input_hashes"]["missing"]["sha256"] is None
    assert prov["model_ids"] == {"encoder": "minilm"}
    assert prov["taxonomy"] == {"name": "chexpert_pham", "version": "1.0", "sha256": tax.content_hash()}
    doc = stamp({"hF": 0.5}, prov)
    assert list(doc) == ["schema_version", "hF", "provenance"]
    assert doc["schema_version"] == SCHEMA_VERSION


def test_text_readers_name_the_line_and_byte_of_undecodable_text(tmp_path):
    from medlens._validation import iter_text_lines, read_text_file

    f = tmp_path / "big.txt"
    f.write_bytes(b"\xef\xbb\xbf" + b"ok line\n" * 3000 + b"caf\xe9\n" + b"more\n")  # the bad byte is far past 8 KiB
    with pytest.raises(InputError, match=r"big.txt, line 3001: not UTF-8 text \(byte 0xe9\)"):
        list(iter_text_lines(f, what="texts file"))
    ok = tmp_path / "ok.txt"
    ok.write_bytes(b"\xef\xbb\xbfa\r\nb\n")
    assert list(iter_text_lines(ok)) == [(1, "a\n"), (2, "b\n")]  # BOM dropped, CRLF read as a newline
    bad = tmp_path / "bom.json"
    bad.write_bytes(b"\xef\xbb\xbf{}\xff")
    with pytest.raises(InputError, match=r"byte 0xff at offset 5"):
        read_text_file(bad)
    assert read_text_file(ok) == "a\nb\n"
    with pytest.raises(InputError, match="is a folder; give a file"):
        read_text_file(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        list(iter_text_lines(tmp_path / "missing.txt"))
