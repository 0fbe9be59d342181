"""Image backbones: each turns an image into one or more visual tokens for VisualBERT.

- ``vgg16`` (:class:`VGG16Backbone`): the paper's choice, torchvision's ImageNet VGG16, fc7 activations (4096-d,
  one token per image). Needs the optional extra ``pip install pykeen-vbkgc[vision]`` (torchvision), which is
  imported only when this backbone is built.
- ``resnet``, ``vit``, ``clipvision`` and the generic ``transformers``: vision models from :mod:`transformers`
  (no torchvision needed). ``microsoft/resnet-152`` gives 2048-d pooled features, which is the
  ``visual_embedding_dim`` of the COCO/VQA VisualBERT checkpoints, so it needs no projection.

All are resolved by name through :data:`backbone_resolver`, e.g. ``backbone_resolver.make("resnet")``.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from class_resolver import ClassResolver
from PIL import Image
from torch import nn

from .base import load_pretrained

__all__ = [
    "CLIPVisionBackbone",
    "ImageBackbone",
    "ResNetBackbone",
    "TransformersBackbone",
    "VGG16Backbone",
    "ViTBackbone",
    "backbone_resolver",
]

logger = logging.getLogger(__name__)

VisualTokens = Literal["pooled", "grid"]

#: the message for a missing torchvision, naming the extra and the alternatives
TORCHVISION_MISSING = (
    "The 'vgg16' image backbone needs torchvision, which is an optional extra: "
    "pip install 'pykeen-vbkgc[vision]' (pick the torchvision build that matches your torch). "
    "Backbones without torchvision: 'resnet' (microsoft/resnet-152, 2048-d, matches the COCO VisualBERT "
    "checkpoint natively), 'vit', 'clipvision' or 'transformers' with any Hugging Face vision checkpoint."
)


class ImageBackbone(nn.Module, ABC):
    """A frozen image feature extractor: images in, visual tokens of dimension :attr:`output_dim` out."""

    #: the dimension of each visual token
    output_dim: int
    #: the checkpoint / weights the backbone was built from
    checkpoint: str
    #: how images become tokens: one pooled token or the grid/patch tokens
    visual_tokens: str = "pooled"

    @abstractmethod
    def preprocess(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Turn RGB images into a batch of pixel values.

        :param images: the images
        :return: shape: (len(images), channels, height, width)
        """

    @abstractmethod
    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Extract visual tokens.

        :param pixel_values: shape: (n, channels, height, width)
        :return: shape: (n, tokens_per_image, output_dim)
        """

    def describe(self) -> dict[str, str]:
        """Return metadata that identifies the backbone."""
        return {
            "backbone": backbone_resolver.normalize_cls(type(self)),
            "backbone_checkpoint": self.checkpoint,
            "backbone_dim": str(self.output_dim),
            "visual_tokens": self.visual_tokens,
        }

    def _freeze(self) -> None:
        self.eval()
        for parameter in self.parameters():
            parameter.requires_grad_(False)


class VGG16Backbone(ImageBackbone):
    """torchvision's VGG16 (ImageNet), as in the paper: the fc7 (or fc6) activations, one token per image."""

    def __init__(self, checkpoint: str | os.PathLike | None = "IMAGENET1K_V1", layer: Literal["fc6", "fc7"] = "fc7"):
        """Build the backbone.

        :param checkpoint: the name of a torchvision weights enum member of ``VGG16_Weights`` (downloaded to the torch
            hub cache on first use), or the path of a saved VGG16 ``state_dict`` (loaded with ``weights_only=True``)
        :param layer: which fully connected layer's (post-ReLU) activations to use; both are 4096-d
        :raises ImportError: if torchvision is not installed
        """
        super().__init__()
        try:
            from torchvision.models import VGG16_Weights, vgg16
        except ImportError as error:
            raise ImportError(TORCHVISION_MISSING) from error
        if layer not in ("fc6", "fc7"):
            raise ValueError(f"layer must be 'fc6' or 'fc7', got {layer!r}")
        weights = None
        state_dict = None
        if checkpoint is not None and Path(checkpoint).is_file():
            state_dict = torch.load(checkpoint, map_location="cpu", weights_only=True)
        elif checkpoint is not None:
            try:
                weights = VGG16_Weights[str(checkpoint)]
            except KeyError as error:
                raise ValueError(
                    f"Unknown VGG16 weights {checkpoint!r}: use one of {[w.name for w in VGG16_Weights]} "
                    "or the path of a saved state_dict."
                ) from error
        model = vgg16(weights=weights)
        if state_dict is not None:
            model.load_state_dict(state_dict)
        self.checkpoint = str(checkpoint)
        self.layer = layer
        self.features = model.features
        self.avgpool = model.avgpool
        # classifier = fc6, ReLU, Dropout, fc7, ReLU, Dropout, fc8
        self.head = model.classifier[: 2 if layer == "fc6" else 5]
        self.output_dim = 4096
        self._transform = (weights or VGG16_Weights.IMAGENET1K_V1).transforms()
        self._freeze()

    def preprocess(self, images: Sequence[Image.Image]) -> torch.Tensor:  # noqa: D102
        return torch.stack([self._transform(image) for image in images])

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:  # noqa: D102
        hidden = torch.flatten(self.avgpool(self.features(pixel_values)), 1)
        return self.head(hidden).unsqueeze(1)

    def describe(self) -> dict[str, str]:  # noqa: D102
        return {**super().describe(), "backbone_layer": self.layer}


class TransformersBackbone(ImageBackbone):
    """Any Hugging Face vision model with an image processor (ResNet, ViT, ConvNeXt, CLIP vision, ...)."""

    #: the default checkpoint of the subclass; None means a checkpoint must be given
    default_checkpoint: ClassVar[str | None] = None

    def __init__(self, checkpoint: str | os.PathLike | None = None, visual_tokens: VisualTokens = "pooled"):
        """Load the model and its image processor through ``from_pretrained``.

        :param checkpoint: a hub name or local directory holding the model and its ``preprocessor_config.json``
        :param visual_tokens: ``"pooled"``: one token per image (the pooler output, or the first token when the
            model has no pooler); ``"grid"``: all tokens of the last hidden state (patches, or the cells of a
            convolutional feature map)
        """
        super().__init__()
        checkpoint = checkpoint or self.default_checkpoint
        if checkpoint is None:
            raise ValueError(f"{type(self).__name__} needs a checkpoint (a hub name or a local directory).")
        if visual_tokens not in ("pooled", "grid"):
            raise ValueError(f"visual_tokens must be 'pooled' or 'grid', got {visual_tokens!r}")
        from transformers import AutoImageProcessor

        self.checkpoint = str(checkpoint)
        self.visual_tokens = visual_tokens
        self.processor = load_pretrained(AutoImageProcessor.from_pretrained, checkpoint, what="image processor")
        self.model = load_pretrained(self._model_loader(), checkpoint, what="image backbone checkpoint")
        config = self.model.config
        hidden_sizes = getattr(config, "hidden_sizes", None)
        self.output_dim = int(hidden_sizes[-1] if hidden_sizes else config.hidden_size)
        self._freeze()

    def _model_loader(self) -> Any:
        from transformers import AutoModel

        return AutoModel.from_pretrained

    def preprocess(self, images: Sequence[Image.Image]) -> torch.Tensor:  # noqa: D102
        return self.processor(images=list(images), return_tensors="pt")["pixel_values"]

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:  # noqa: D102
        output = self.model(pixel_values=pixel_values)
        if self.visual_tokens == "grid":
            hidden = output.last_hidden_state
            if hidden.ndim == 4:  # convolutional: (n, channels, h, w) -> (n, h * w, channels)
                hidden = hidden.flatten(2).transpose(1, 2)
            return hidden
        pooled = getattr(output, "pooler_output", None)
        if pooled is None:
            pooled = output.last_hidden_state[:, 0]
        return pooled.reshape(pooled.shape[0], 1, -1)


class ResNetBackbone(TransformersBackbone):
    """A Hugging Face ResNet; ResNet-152's pooled 2048-d features match the COCO VisualBERT checkpoint."""

    default_checkpoint = "microsoft/resnet-152"


class ViTBackbone(TransformersBackbone):
    """A Hugging Face ViT (768-d for the base models)."""

    default_checkpoint = "google/vit-base-patch16-224-in21k"


class CLIPVisionBackbone(TransformersBackbone):
    """The vision tower of a CLIP checkpoint (768-d for ViT-B)."""

    default_checkpoint = "openai/clip-vit-base-patch32"

    def _model_loader(self) -> Any:
        from transformers import CLIPVisionModel

        # loads the vision tower from a full CLIP checkpoint, too
        return CLIPVisionModel.from_pretrained


#: resolves image backbones by name: vgg16 (default), transformers, resnet, vit, clipvision
backbone_resolver: ClassResolver[ImageBackbone] = ClassResolver(
    [VGG16Backbone, TransformersBackbone, ResNetBackbone, ViTBackbone, CLIPVisionBackbone],
    base=ImageBackbone,
    suffix="Backbone",
    default=VGG16Backbone,
)
