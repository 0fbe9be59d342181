"""The encoding module (paper, section 4.1): entity texts and images to frozen multimodal features.

Typical use, equivalent to
``pykeen-vbkgc encode --texts texts.tsv --images images/ --backbone resnet -o features.safetensors``:

.. code-block:: python

    from pykeen_vbkgc.encoders import VisualBertEncoder, encode_entities, read_images, read_texts

    encoder = VisualBertEncoder("uclanlp/visualbert-vqa-coco-pre", backbone="resnet")
    encode_entities(encoder, read_texts("texts.tsv"), read_images("images/"), output="features.safetensors")

Modules: :mod:`.inputs` (reading texts and images), :mod:`.backbones` (image backbones),
:mod:`.projection` (visual dimension matching), :mod:`.visualbert` and :mod:`.text` (the encoders),
:mod:`.run` (batching, resuming, sharding, merging) and :mod:`.cli` (the command line).
"""

from .backbones import (
    CLIPVisionBackbone,
    ImageBackbone,
    ResNetBackbone,
    TransformersBackbone,
    VGG16Backbone,
    ViTBackbone,
    backbone_resolver,
)
from .base import EncodedBatch, EncoderLoadError, EntityEncoder, EntityInput
from .inputs import EncodingInputError, check_inputs, load_image, read_images, read_texts
from .projection import DimensionMismatchError, RandomProjection, make_projection
from .run import encode_entities, merge_features, parse_shard, partial_path, shard_slice
from .text import TextEncoder
from .visualbert import DEFAULT_CHECKPOINT, VisualBertEncoder

__all__ = [
    "DEFAULT_CHECKPOINT",
    "CLIPVisionBackbone",
    "DimensionMismatchError",
    "EncodedBatch",
    "EncoderLoadError",
    "EncodingInputError",
    "EntityEncoder",
    "EntityInput",
    "ImageBackbone",
    "RandomProjection",
    "ResNetBackbone",
    "TextEncoder",
    "TransformersBackbone",
    "VGG16Backbone",
    "ViTBackbone",
    "VisualBertEncoder",
    "backbone_resolver",
    "check_inputs",
    "encode_entities",
    "load_image",
    "make_projection",
    "merge_features",
    "parse_shard",
    "partial_path",
    "read_images",
    "read_texts",
    "shard_slice",
]
