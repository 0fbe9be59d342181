"""The interface of entity encoders, and what they share: device placement, autocast and checkpoint loading."""

from __future__ import annotations

import contextlib
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch

__all__ = [
    "EncodedBatch",
    "EntityInput",
    "EncoderLoadError",
    "EntityEncoder",
    "autocast_context",
    "precision_name",
    "load_pretrained",
    "resolve_device",
    "text_max_length",
    "tokenize",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class EncoderLoadError(OSError):
    """Raised when a pretrained checkpoint (model, tokenizer, image processor) cannot be loaded."""


@dataclass(frozen=True)
class EntityInput:
    """What an encoder sees of one entity."""

    #: the entity label
    label: str
    #: the entity text (description), non-empty
    text: str
    #: the entity's image files, possibly none
    images: tuple[Path, ...] = ()


@dataclass(frozen=True)
class EncodedBatch:
    """The features of a batch of entities."""

    #: shape: (batch_size, dim), float32 on the CPU
    vectors: torch.Tensor
    #: shape: (batch_size,); True where the entity's text was cut to the model's maximum length
    truncated: torch.Tensor
    #: shape: (batch_size,); the number of images that went into each entity's feature
    num_images: torch.Tensor


class EntityEncoder(ABC):
    """Turns entity texts, and optionally images, into one frozen feature vector per entity."""

    #: whether :meth:`encode` uses images (text-only encoders ignore them)
    uses_images: bool = False

    @property
    @abstractmethod
    def dim(self) -> int:
        """Return the feature dimension."""

    @abstractmethod
    def metadata(self) -> dict[str, str]:
        """Return string metadata that identifies the encoder configuration.

        Two runs with equal metadata must produce the same features for the same inputs; resuming and merging
        compare it. Run-specific details (the device, timing) do not belong here.
        """

    @abstractmethod
    def encode(self, batch: Sequence[EntityInput]) -> EncodedBatch:
        """Encode a batch of entities.

        The result for an entity must not depend on the other entities in the batch (up to floating point noise),
        so that resuming and sharding give the same features.

        :param batch: the entities
        :return: the features, in the order of the batch
        """


def resolve_device(device: str | torch.device | None) -> torch.device:
    """Return the given device, or CUDA when available, else the CPU.

    :param device: a device, or None for automatic choice
    :return: the device
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def autocast_context(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """Return an autocast context for CUDA (bfloat16 where supported, else float16); a no-op elsewhere.

    Autocast is not used on the CPU: CPU bfloat16 matmuls are slower than float32 on most machines and lose
    precision for no gain.

    :param device: the device the model runs on
    :param enabled: whether mixed precision is wanted
    :return: the context manager
    """
    if enabled and device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast(device_type="cuda", dtype=dtype)
    return contextlib.nullcontext()


def precision_name(device: torch.device, enabled: bool) -> str:
    """Return the name of the precision that :func:`autocast_context` gives.

    :param device: the device the model runs on
    :param enabled: whether mixed precision is wanted
    :return: ``"float32"``, ``"bfloat16"`` or ``"float16"``
    """
    if enabled and device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "float32"


def _offline_mode() -> bool:
    # huggingface_hub reads the variable once at import; also look at it now
    if os.environ.get("HF_HUB_OFFLINE", "0").upper() in {"1", "ON", "YES", "TRUE"}:
        return True
    try:
        from huggingface_hub import is_offline_mode
    except ImportError:  # older huggingface_hub
        return False
    return bool(is_offline_mode())


def load_pretrained(loader: Callable[[str], T], name_or_path: str | os.PathLike, *, what: str) -> T:
    """Call a ``from_pretrained`` loader and turn its failure into one clear message.

    :param loader: e.g. ``VisualBertModel.from_pretrained``
    :param name_or_path: a local directory or a Hugging Face hub name
    :param what: what is loaded, for the message, e.g. ``"VisualBERT checkpoint"``
    :return: the loaded object
    :raises EncoderLoadError: if loading fails
    """
    name = str(name_or_path)
    try:
        return loader(name)
    except (OSError, ValueError) as error:
        if Path(name).exists():
            hint = f"The local path {name} exists but does not hold a usable {what}."
        elif _offline_mode():
            hint = (
                "Hugging Face offline mode is on (HF_HUB_OFFLINE=1), so only local directories and checkpoints "
                "already in the Hugging Face cache can be loaded. Download it where there is internet "
                f"(e.g. `huggingface-cli download {name}`) and copy the cache, or pass a local directory."
            )
        else:
            hint = (
                "It is neither a local directory nor downloadable from the Hugging Face hub (check the name and the "
                "network; set HF_HUB_OFFLINE=1 to use only the local cache)."
            )
        # one line: the libraries' messages may span several
        detail = " ".join(str(error).split())
        raise EncoderLoadError(f"Cannot load the {what} {name!r}. {hint} ({type(error).__name__}: {detail})") from error


def text_max_length(tokenizer: Any, config: Any, max_length: int | None = None) -> int:
    """Return the number of text tokens (special tokens included) that the model can take.

    :param tokenizer: the tokenizer; its ``model_max_length`` is a huge sentinel when unknown
    :param config: the model config; ``max_position_embeddings`` bounds the text length
    :param max_length: an explicit, smaller limit
    :return: the limit
    :raises ValueError: if the explicit limit exceeds what the model takes
    """
    limits = [getattr(config, "max_position_embeddings", None), tokenizer.model_max_length]
    limit = min(int(value) for value in limits if value is not None and value < 1_000_000)
    if max_length is None:
        return limit
    if not 2 < max_length <= limit:
        raise ValueError(f"max_length must be between 3 and {limit} (the model's limit), got {max_length}.")
    return max_length


def tokenize(tokenizer: Any, texts: Sequence[str], max_length: int) -> tuple[Any, torch.Tensor]:
    """Tokenize with padding and truncation, and report which texts were truncated.

    :param tokenizer: a Hugging Face tokenizer
    :param texts: the texts
    :param max_length: the maximum number of tokens, special tokens included
    :return: the padded encoding (PyTorch tensors) and a boolean tensor, True for truncated texts
    """
    texts = list(texts)
    full = tokenizer(texts, truncation=False, verbose=False)["input_ids"]
    truncated = torch.as_tensor([len(ids) > max_length for ids in full], dtype=torch.bool)
    encoding = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return encoding, truncated
