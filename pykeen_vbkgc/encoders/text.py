"""A text-only encoder for any Hugging Face text model or sentence-transformers model.

It gives real pre-trained entity features where VisualBERT weights are unavailable (e.g. offline), from the entity
descriptions alone. It needs neither the ``sentence-transformers`` package nor images: the transformer is loaded
with ``AutoModel.from_pretrained`` and, for a sentence-transformers checkpoint, its pooling (``1_Pooling``),
normalisation (``Normalize`` module) and ``max_seq_length`` are read from the checkpoint's files, so that the
features equal ``SentenceTransformer(checkpoint).encode(texts)``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from typing import Literal

import torch

from .base import (
    EncodedBatch,
    EntityEncoder,
    EntityInput,
    autocast_context,
    load_pretrained,
    precision_name,
    resolve_device,
    text_max_length,
    tokenize,
)

__all__ = [
    "TextEncoder",
]

logger = logging.getLogger(__name__)

Pooling = Literal["auto", "mean", "cls"]


def _read_json(checkpoint: str, filename: str) -> dict | list | None:
    """Read a JSON file of a checkpoint (local directory or hub cache); None if it has none."""
    from transformers.utils import cached_file

    try:
        path = cached_file(checkpoint, filename, _raise_exceptions_for_missing_entries=False)
    except (OSError, ValueError):
        return None
    if path is None:
        return None
    with open(path, encoding="utf-8") as file:
        return json.load(file)


class TextEncoder(EntityEncoder):
    """Encode entity texts with a pre-trained text transformer, by mean pooling or the [CLS] hidden state."""

    uses_images = False

    def __init__(
        self,
        checkpoint: str | os.PathLike,
        *,
        pooling: Pooling = "auto",
        normalize: bool | None = None,
        max_length: int | None = None,
        device: str | torch.device | None = None,
        autocast: bool = True,
    ):
        """Load the model and its tokenizer.

        :param checkpoint: a hub name or local directory (e.g. a sentence-transformers model directory)
        :param pooling: ``"mean"`` (mean of the token states over the attention mask), ``"cls"`` (first token), or
            ``"auto"``: the sentence-transformers pooling config if the checkpoint has one, else mean
        :param normalize: L2-normalise the features; None: as the sentence-transformers config says (else no)
        :param max_length: the maximum number of tokens; defaults to the sentence-transformers ``max_seq_length``,
            else the model's limit
        :param device: the device; defaults to CUDA when available
        :param autocast: use mixed precision on CUDA
        """
        from transformers import AutoModel, AutoTokenizer

        if pooling not in ("auto", "mean", "cls"):
            raise ValueError(f"pooling must be 'auto', 'mean' or 'cls', got {pooling!r}.")
        self.checkpoint = str(checkpoint)
        self.device = resolve_device(device)
        self.autocast = autocast
        self.model = load_pretrained(AutoModel.from_pretrained, self.checkpoint, what="text encoder checkpoint")
        self.model.to(self.device).eval()
        self.tokenizer = load_pretrained(AutoTokenizer.from_pretrained, self.checkpoint, what="tokenizer")
        modules = _read_json(self.checkpoint, "modules.json") or []
        module_types = [module.get("type", "") for module in modules if isinstance(module, dict)]
        if pooling == "auto":
            pooling = "mean"
            pooling_dir = next(
                (module["path"] for module in modules if module.get("type", "").endswith(".Pooling")), None
            )
            config = _read_json(self.checkpoint, f"{pooling_dir}/config.json") if pooling_dir else None
            if config:
                if config.get("pooling_mode_cls_token"):
                    pooling = "cls"
                elif not config.get("pooling_mode_mean_tokens"):
                    raise ValueError(f"{self.checkpoint} uses a sentence-transformers pooling we do not support.")
        self.pooling = pooling
        self.normalize = any(t.endswith(".Normalize") for t in module_types) if normalize is None else normalize
        if max_length is None:
            st_config = _read_json(self.checkpoint, "sentence_bert_config.json") or {}
            max_length = st_config.get("max_seq_length")
        self.max_length = text_max_length(self.tokenizer, self.model.config, max_length)

    @property
    def dim(self) -> int:  # noqa: D102
        return int(self.model.config.hidden_size)

    def metadata(self) -> dict[str, str]:  # noqa: D102
        return {
            "encoder": "text",
            "checkpoint": self.checkpoint,
            "tokenizer": self.checkpoint,
            "pooling": self.pooling,
            "normalize": str(self.normalize).lower(),
            "max_length": str(self.max_length),
            "backbone": "none",
            "precision": precision_name(self.device, self.autocast),
        }

    @torch.no_grad()
    def encode(self, batch: Sequence[EntityInput]) -> EncodedBatch:  # noqa: D102
        encoding, truncated = tokenize(self.tokenizer, [entity.text for entity in batch], self.max_length)
        inputs = {key: value.to(self.device) for key, value in encoding.items()}
        with autocast_context(self.device, self.autocast):
            hidden = self.model(**inputs).last_hidden_state
        hidden = hidden.float()
        if self.pooling == "cls":
            vectors = hidden[:, 0]
        else:
            mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            vectors = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1e-9)
        if self.normalize:
            vectors = torch.nn.functional.normalize(vectors, dim=-1)
        return EncodedBatch(
            vectors=vectors.cpu(), truncated=truncated, num_images=torch.zeros(len(batch), dtype=torch.long)
        )
