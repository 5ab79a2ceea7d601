"""Deterministic random models saved to disk, loadable like real ones.

Build machines cannot download weights; tests, benchmarks and the demo build
an architecture from its config with seeded random weights and save it with
``save_pretrained`` (or ``torch.save`` for VGGish), then load it by path
through the same code a real model takes.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError

__all__ = ["make_random_model", "RANDOM_MODEL_KINDS"]

_TINY = dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64,
             conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)

RANDOM_MODEL_KINDS = ("wav2vec2", "hubert", "wavlm", "data2vec-audio", "whisper", "vggish")


def make_random_model(kind: str, path: str | Path, *, seed: int = 0, size: str = "tiny") -> Path:
    """Build a model with seeded random weights and save it under ``path``.

    Parameters
    ----------
    kind : {"wav2vec2", "hubert", "wavlm", "data2vec-audio", "whisper", "vggish"}
    path : str or Path
        Folder to create (for ``vggish``: the folder gets ``vggish.pt``).
    seed : int
        Seed of the weights; the same seed gives the same weights.
    size : {"tiny", "base"}
        ``base`` is the published base architecture (e.g. wav2vec2-base:
        12 blocks of 768 units, group-norm feature encoder); ``tiny`` three
        blocks of 32 units with a layer-norm feature encoder, for tests.

    Returns
    -------
    Path
        The folder (HF kinds) or the checkpoint file (``vggish``).
    """
    import torch
    import transformers as tf

    if kind not in RANDOM_MODEL_KINDS:
        raise InputError(f"kind: {kind!r} is not one of {', '.join(RANDOM_MODEL_KINDS)}")
    if size not in ("tiny", "base"):
        raise InputError(f"size: must be 'tiny' or 'base', got {size!r}")
    path = Path(path).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(int(seed))
    if kind == "vggish":
        from .vggish import VGGish

        out = path / "vggish.pt"
        torch.save(VGGish().state_dict(), out)
        return out
    tiny = size == "tiny"
    if kind == "whisper":
        cfg = tf.WhisperConfig(**(dict(d_model=32, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
                                       decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                                       num_mel_bins=80) if tiny else {}))
        model = tf.WhisperModel(cfg)
        fe = tf.WhisperFeatureExtractor(feature_size=cfg.num_mel_bins)
    else:
        cls = {"wav2vec2": (tf.Wav2Vec2Config, tf.Wav2Vec2Model), "hubert": (tf.HubertConfig, tf.HubertModel),
               "wavlm": (tf.WavLMConfig, tf.WavLMModel),
               "data2vec-audio": (tf.Data2VecAudioConfig, tf.Data2VecAudioModel)}[kind]
        extra = dict(_TINY) if tiny else {}
        if tiny and kind == "data2vec-audio":
            extra.update(num_conv_pos_embeddings=5, conv_pos_kernel_size=5)
        elif tiny:
            extra.update(feat_extract_norm="layer")  # local feature encoder: exact chunking
        cfg = cls[0](**extra)
        model = cls[1](cfg)
        fe = tf.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,
                                         do_normalize=getattr(cfg, "feat_extract_norm", "layer") == "layer",
                                         return_attention_mask=False)
    model.eval()
    model.save_pretrained(path)
    fe.save_pretrained(path)
    return path
