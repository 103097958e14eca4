"""Text files, image folders and feature arrays as ARCHITECTURE.md defines them."""

import json

import numpy as np
import pytest

from medlens._validation import InputError
from medlens.io import list_images, load_image, read_features, read_texts, write_features


def test_read_texts_txt_csv_jsonl(tmp_path):
    (tmp_path / "a.txt").write_text("first report\nsecond report\n\n")
    assert read_texts(tmp_path / "a.txt") == (["1", "2"], ["first report", "second report"])
    (tmp_path / "b.csv").write_text('id,text,extra\nr1,"Heart, normal.",x\nr2,Effusion.,y\n')
    assert read_texts(tmp_path / "b.csv") == (["r1", "r2"], ["Heart, normal.", "Effusion."])
    (tmp_path / "c.jsonl").write_text(
        json.dumps({"id": 7, "text": "a"}) + "\n\n" + json.dumps({"id": "x", "text": "b"})
    )
    assert read_texts(tmp_path / "c.jsonl") == (["7", "x"], ["a", "b"])


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("a.txt", "one\n\nthree\n", "line 2 is blank"),
        ("b.csv", "id,txt\n1,a\n", r"row 2 lacks \['text'\]"),
        ("c.csv", "id,text\n1,a\n1,b\n", "id '1' appears more than once"),
        ("d.jsonl", '{"id": 1, "text": "a"}\n{oops\n', "line 2 is not valid JSON"),
        ("e.jsonl", '{"id": 1, "text": ""}\n', "empty or non-string text"),
        ("f.md", "x", "unsupported text file type"),
    ],
)
def test_read_texts_errors_name_the_row(tmp_path, name, content, match):
    (tmp_path / name).write_text(content)
    with pytest.raises(InputError, match=match):
        read_texts(tmp_path / name)


def test_read_texts_allow_empty_for_model_answers(tmp_path):
    (tmp_path / "a.txt").write_text("yes\n\nno\n\n")
    assert read_texts(tmp_path / "a.txt", allow_empty=True) == (["1", "2", "3"], ["yes", "", "no"])
    (tmp_path / "b.jsonl").write_text('{"id": 1, "text": ""}\n')
    assert read_texts(tmp_path / "b.jsonl", allow_empty=True) == (["1"], [""])
    (tmp_path / "c.jsonl").write_text('{"id": 1, "text": null}\n')
    with pytest.raises(InputError, match="empty or non-string text"):
        read_texts(tmp_path / "c.jsonl", allow_empty=True)


def test_image_folder_ids_are_sorted_relative_paths(tmp_path):
    pil = pytest.importorskip("PIL.Image")
    (tmp_path / "sub").mkdir()
    pil.fromarray(np.zeros((4, 5), np.uint8)).save(tmp_path / "sub" / "b.png")
    pil.fromarray(np.zeros((4, 5, 3), np.uint8)).save(tmp_path / "a.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    ids, paths = list_images(tmp_path)
    assert ids == ["a.jpg", "sub/b.png"]
    assert [load_image(p).mode for p in paths] == ["RGB", "RGB"]
    with pytest.raises(InputError, match="no images found"):
        list_images(_empty(tmp_path))


def _empty(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    return d


def test_sixteen_bit_grayscale_is_rescaled(tmp_path):
    pil = pytest.importorskip("PIL.Image")
    a = np.array([[0, 1000], [2000, 4000]], dtype=np.uint16)
    pil.fromarray(a).save(tmp_path / "x.png")
    img = np.asarray(load_image(tmp_path / "x.png"))
    assert img.shape == (2, 2, 3)
    np.testing.assert_array_equal(img[..., 0], [[0, 64], [128, 255]])
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="cannot read as an image"):
        load_image(tmp_path / "bad.png")


def test_features_round_trip(tmp_path):
    x = np.arange(6, dtype=np.float64).reshape(3, 2)
    write_features(tmp_path / "X.npy", ["a", "b", "c"], x)
    ids, y = read_features(tmp_path / "X.npy")
    assert ids == ["a", "b", "c"]
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, x)
    with pytest.raises(InputError, match=r"use --out NAME.npy"):
        write_features(tmp_path / "X.csv", ["a"], x[:1])
    (tmp_path / "X.ids.txt").write_text("a\nb\n")
    with pytest.raises(InputError, match="must match row for row"):
        read_features(tmp_path / "X.npy")
