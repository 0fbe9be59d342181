"""The paper's encoder (section 4.1): entity description and image tokens through a frozen VisualBERT.

For an entity with description tokens ``w_1..w_n`` and images ``I`` the input is (Eq. 1)
``[CLS] w_1 .. w_n [SEP] v_1 .. v_m``, where each image gives one visual token (``pooled``) or several (``grid``)
from the image backbone, and the entity's feature is the last hidden state of ``[CLS]`` (Eq. 2). The trailing
``[SEP]`` of Eq. 1 is not added: Hugging Face's VisualBERT, like the original implementation the checkpoints were
pre-trained with, appends the visual embeddings directly after the text.

Entities without images (policy ``no_image``):

- ``"text-only"`` (default): VisualBERT gets the text alone. The features file then holds text-conditioned
  features, and its ``num_images`` vector marks these entities (0), so a model can treat them differently.
- ``"xavier"``: the paper's rule, "for those entities which have no image, we employ Xavier initialization for their
  visual features": one visual token drawn with Xavier-uniform initialisation from a generator seeded by
  ``seed`` and the entity label, so it is the same whatever the batch, shard or resume.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from class_resolver import HintOrType

from ..validation import check_positive_int, check_seed
from .backbones import ImageBackbone, backbone_resolver
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
from .inputs import load_image
from .projection import ProjectionPolicy, make_projection

__all__ = [
    "DEFAULT_CHECKPOINT",
    "FALLBACK_TOKENIZER",
    "VisualBertEncoder",
]

logger = logging.getLogger(__name__)

#: the paper's checkpoint: VisualBERT pre-trained on COCO captions (task-agnostic), 2048-d visual features
DEFAULT_CHECKPOINT = "uclanlp/visualbert-vqa-coco-pre"
#: VisualBERT was pre-trained with BERT's uncased vocabulary; the uclanlp checkpoints ship no tokenizer
FALLBACK_TOKENIZER = "google-bert/bert-base-uncased"

NoImagePolicy = Literal["text-only", "xavier"]


class VisualBertEncoder(EntityEncoder):
    """Encode entities with a frozen, pre-trained VisualBERT; the feature is the [CLS] hidden state."""

    def __init__(
        self,
        checkpoint: str | os.PathLike = DEFAULT_CHECKPOINT,
        *,
        tokenizer: str | os.PathLike | None = None,
        backbone: HintOrType[ImageBackbone] = None,
        backbone_kwargs: Mapping[str, Any] | None = None,
        use_images: bool = True,
        projection: ProjectionPolicy = "error",
        seed: int = 0,
        max_images: int = 5,
        no_image: NoImagePolicy = "text-only",
        max_length: int | None = None,
        image_batch_size: int = 64,
        device: str | torch.device | None = None,
        autocast: bool = True,
    ):
        """Load VisualBERT, its tokenizer and the image backbone.

        :param checkpoint: a VisualBERT checkpoint: hub name or local directory, loaded with
            ``VisualBertModel.from_pretrained`` (honours ``HF_HUB_OFFLINE``)
        :param tokenizer: a tokenizer name or directory; by default the checkpoint's own, else
            :data:`FALLBACK_TOKENIZER` (BERT uncased, VisualBERT's vocabulary)
        :param backbone: the image backbone: an instance, a class or a name for :data:`backbone_resolver`
            (default ``vgg16``, the paper's, which needs torchvision)
        :param backbone_kwargs: keyword arguments for the backbone, e.g. ``{"checkpoint": "microsoft/resnet-50"}``
        :param use_images: False gives a text-only VisualBERT encoder (no backbone is loaded; with
            ``no_image="xavier"`` every entity gets one Xavier token)
        :param projection: what to do when the backbone's token dimension differs from the checkpoint's
            ``visual_embedding_dim``: ``"error"`` or ``"random"`` (see :mod:`pykeen_vbkgc.encoders.projection`)
        :param seed: the seed of the random projection and of the Xavier tokens
        :param max_images: at most this many images per entity are used (the first ones, in input order)
        :param no_image: the policy for entities without images, see the module docstring
        :param max_length: the maximum number of text tokens; defaults to the model's limit. Longer texts are
            truncated and counted.
        :param image_batch_size: how many images go through the backbone at once
        :param device: the device; defaults to CUDA when available
        :param autocast: use mixed precision on CUDA
        """
        from transformers import AutoTokenizer, VisualBertModel

        max_images = check_positive_int("max_images", max_images)
        image_batch_size = check_positive_int("image_batch_size", image_batch_size)
        check_seed("seed", seed)
        if no_image not in ("text-only", "xavier"):
            raise ValueError(f"no_image must be 'text-only' or 'xavier', got {no_image!r}.")
        self.device = resolve_device(device)
        self.autocast = autocast
        self.checkpoint = str(checkpoint)
        self.model = load_pretrained(VisualBertModel.from_pretrained, checkpoint, what="VisualBERT checkpoint")
        self.model.to(self.device).eval()
        if tokenizer is None:
            try:
                self.tokenizer = AutoTokenizer.from_pretrained(self.checkpoint)
                self.tokenizer_name = self.checkpoint
            except (OSError, ValueError, TypeError):
                logger.info(f"{self.checkpoint} has no tokenizer; using {FALLBACK_TOKENIZER} (VisualBERT's vocabulary)")
                tokenizer = FALLBACK_TOKENIZER
        if tokenizer is not None:
            self.tokenizer = load_pretrained(AutoTokenizer.from_pretrained, tokenizer, what="tokenizer")
            self.tokenizer_name = str(tokenizer)
        self.max_length = text_max_length(self.tokenizer, self.model.config, max_length)
        self.visual_dim = int(self.model.config.visual_embedding_dim)
        self.seed = seed
        self.max_images = max_images
        self.no_image = no_image
        self.image_batch_size = image_batch_size
        self.backbone: ImageBackbone | None = None
        self.projection = None
        if use_images:
            self.backbone = backbone_resolver.make(backbone, backbone_kwargs)
            self.backbone.to(self.device)
            self.projection = make_projection(
                self.backbone.output_dim,
                self.visual_dim,
                projection,
                seed=seed,
                backbone=f"the {backbone_resolver.normalize_cls(type(self.backbone))} backbone "
                f"({self.backbone.checkpoint})",
            )
            if self.projection is not None:
                self.projection.to(self.device)
                logger.warning(
                    f"Projecting {self.backbone.output_dim}-d visual tokens to {self.visual_dim}-d with a fixed random "
                    f"projection (seed {seed}); recorded in the features metadata."
                )

    @property
    def uses_images(self) -> bool:  # type: ignore[override]
        """Return whether images are encoded."""
        return self.backbone is not None

    @property
    def dim(self) -> int:  # noqa: D102
        return int(self.model.config.hidden_size)

    def metadata(self) -> dict[str, str]:  # noqa: D102
        metadata = {
            "encoder": "visualbert",
            "checkpoint": self.checkpoint,
            "tokenizer": self.tokenizer_name,
            "pooling": "cls",
            "max_length": str(self.max_length),
            "visual_embedding_dim": str(self.visual_dim),
            "precision": precision_name(self.device, self.autocast),
        }
        metadata.update(no_image=self.no_image, seed=str(self.seed))
        if self.backbone is None:
            metadata["backbone"] = "none"
            return metadata
        metadata.update(self.backbone.describe())
        metadata["projection"] = "none"
        if self.projection is not None:
            metadata.update(self.projection.describe())
        metadata["max_images"] = str(self.max_images)
        return metadata

    def _xavier_token(self, label: str) -> torch.Tensor:
        # seeded by the label so that the token does not depend on batching, sharding or resuming
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + zlib.crc32(label.encode("utf-8")))
        return torch.nn.init.xavier_uniform_(torch.empty(1, self.visual_dim), generator=generator)

    @torch.no_grad()
    def visual_tokens(self, batch: Sequence[EntityInput]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Compute the visual tokens of each entity (after the projection, if any).

        :param batch: the entities
        :return: for each entity a tensor of shape (m_i, visual_embedding_dim) (m_i may be 0), and the number of
            images used per entity
        """
        if self.backbone is None:  # text-only input; only Xavier tokens (no_image="xavier") are visual
            batch = [EntityInput(label=entity.label, text=entity.text) for entity in batch]
        paths = [(entity.label, path) for entity in batch for path in entity.images[: self.max_images]]
        num_images = torch.as_tensor([min(len(entity.images), self.max_images) for entity in batch], dtype=torch.long)
        per_image: list[torch.Tensor] = []
        for start in range(0, len(paths), self.image_batch_size):
            chunk = paths[start : start + self.image_batch_size]
            pixels = self.backbone.preprocess([load_image(path, label=label) for label, path in chunk])
            with autocast_context(self.device, self.autocast):
                tokens = self.backbone(pixels.to(self.device))
                if self.projection is not None:
                    tokens = self.projection(tokens.float())
            per_image.extend(tokens.float())
        tokens_of: list[torch.Tensor] = []
        offset = 0
        for entity, count in zip(batch, num_images.tolist()):
            if count:
                tokens_of.append(torch.cat(per_image[offset : offset + count], dim=0))
            elif self.no_image == "xavier":
                tokens_of.append(self._xavier_token(entity.label).to(self.device))
            else:
                tokens_of.append(torch.empty(0, self.visual_dim, device=self.device))
            offset += count
        return tokens_of, num_images

    @torch.no_grad()
    def encode(self, batch: Sequence[EntityInput]) -> EncodedBatch:  # noqa: D102
        encoding, truncated = tokenize(self.tokenizer, [entity.text for entity in batch], self.max_length)
        inputs = {key: value.to(self.device) for key, value in encoding.items()}
        if self.backbone is not None or self.no_image == "xavier":
            tokens_of, num_images = self.visual_tokens(batch)
        else:
            tokens_of, num_images = [], torch.zeros(len(batch), dtype=torch.long)
        num_tokens = max((tokens.shape[0] for tokens in tokens_of), default=0)
        if num_tokens:
            # pad to a common number of visual tokens; padded positions are masked out of attention
            visual = torch.zeros(len(batch), num_tokens, self.visual_dim, device=self.device)
            visual_mask = torch.zeros(len(batch), num_tokens, dtype=torch.long, device=self.device)
            for i, tokens in enumerate(tokens_of):
                visual[i, : tokens.shape[0]] = tokens
                visual_mask[i, : tokens.shape[0]] = 1
            inputs.update(
                visual_embeds=visual,
                visual_attention_mask=visual_mask,
                visual_token_type_ids=torch.ones_like(visual_mask),
            )
        with autocast_context(self.device, self.autocast):
            output = self.model(**inputs)
        cls = output.last_hidden_state[:, 0].float().cpu()
        return EncodedBatch(vectors=cls, truncated=truncated, num_images=num_images)
