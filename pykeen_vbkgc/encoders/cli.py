"""Command line: ``pykeen-vbkgc encode`` and ``pykeen-vbkgc merge-features``.

Every unusable input ends the command with one error message before anything is written; an interrupted
``encode`` leaves only its resume file ``<output>.partial`` behind, never a truncated output.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from ..device_option import check_device
from ..features import FeaturesFileError, check_output_file
from ..validation import MAX_COUNT, MAX_SEED
from .backbones import backbone_resolver
from .base import EncoderLoadError
from .inputs import EncodingInputError, check_inputs, read_images, read_texts
from .projection import DimensionMismatchError
from .run import EncodingTerminated, encode_entities, parse_shard, partial_path
from .run import merge_features as merge_feature_files
from .visualbert import DEFAULT_CHECKPOINT

__all__ = [
    "encode",
    "merge_features",
]

logger = logging.getLogger(__name__)

#: the default checkpoint of the text-only encoder
DEFAULT_TEXT_CHECKPOINT = "sentence-transformers/all-MiniLM-L6-v2"
#: options that only make sense for the VisualBERT encoder with images
_IMAGE_OPTIONS = ("backbone", "backbone_checkpoint", "visual_tokens", "projection", "max_images")
#: options that only make sense for the VisualBERT encoder
_VISUALBERT_OPTIONS = ("tokenizer", "no_image", "seed")
#: errors that describe bad input or an unavailable checkpoint, shown as one message
_USER_ERRORS = (
    EncodingInputError,
    EncoderLoadError,
    FeaturesFileError,
    DimensionMismatchError,
    ImportError,
    ValueError,
    OSError,
)


def _read_entities(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise EncodingInputError(f"{path} is not UTF-8 text: {error}") from None
    return [line.rstrip("\r\n") for line in text.splitlines() if line.strip()]


def _explicit(ctx: click.Context, names: tuple[str, ...]) -> list[str]:
    """Return the options among ``names`` that the user set explicitly."""
    return [
        "--" + name.replace("_", "-")
        for name in names
        if ctx.get_parameter_source(name) not in (None, click.core.ParameterSource.DEFAULT)
    ]


def _load_dataset(name: str, directory: Path | None):
    from ..dataset_loading import open_dataset

    dataset = open_dataset(name, directory)
    if not hasattr(dataset, "entity_texts"):
        raise click.BadParameter(
            f"The dataset {name!r} has no entity texts; use a multimodal dataset (e.g. fb15k237multimodal, wn9) or "
            "--texts.",
            param_hint="--dataset",
        )
    return dataset


def _check_output(output: Path, overwrite: bool) -> None:
    """Refuse an output file that exists (unless ``overwrite``) or whose directory cannot be made."""
    if output.exists() and not overwrite:
        raise click.UsageError(f"The output file {output} exists; pass --overwrite to replace it.")
    # the directories are made when the file is written: a file in their place would fail only then
    try:
        check_output_file(output)
    except FeaturesFileError as error:
        raise click.UsageError(str(error)) from None


@click.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="The features file to write.")
@click.option("--texts", type=click.Path(path_type=Path), help="Entity texts: TSV (label<TAB>text) or JSON.")
@click.option(
    "--dataset",
    help="Use a dataset's own texts (and images): a multimodal dataset name, e.g. fb15k237multimodal, or your own "
    "graph's directory (texts in entity2text.txt; the features are written next to them by default).",
)
@click.option("--dataset-directory", type=click.Path(file_okay=False, path_type=Path), help="Its data directory.")
@click.option("--images", type=click.Path(path_type=Path), help="Entity images: a directory per entity, or a TSV.")
@click.option(
    "--image-dir-names",
    type=click.Choice(["label", "freebase"]),
    default="label",
    show_default=True,
    help="How image directory names map to labels ('freebase': m.06rf7 is /m/06rf7).",
)
@click.option(
    "--entities",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Encode these entities (one label per line), in this order; default: all that have a text.",
)
@click.option(
    "--encoder",
    "encoder_name",
    type=click.Choice(["visualbert", "text"]),
    default="visualbert",
    show_default=True,
    help="VisualBERT [CLS] (the paper), or a text-only Hugging Face / sentence-transformers model.",
)
@click.option(
    "--checkpoint",
    help=f"Hub name or local directory; default {DEFAULT_CHECKPOINT} (visualbert), {DEFAULT_TEXT_CHECKPOINT} (text).",
)
@click.option("--tokenizer", help="VisualBERT tokenizer; default: the checkpoint's own, else BERT uncased.")
@click.option(
    "--backbone",
    type=click.Choice(sorted(backbone_resolver.options)),
    default="vgg16",
    show_default=True,
    help="Image backbone (vgg16 needs pykeen-vbkgc[vision]).",
)
@click.option("--backbone-checkpoint", help="Weights of the backbone (hub name / directory; VGG: weights name / file).")
@click.option(
    "--visual-tokens",
    type=click.Choice(["pooled", "grid"]),
    default="pooled",
    show_default=True,
    help="One token per image, or all grid/patch tokens (transformers backbones).",
)
@click.option(
    "--projection",
    type=click.Choice(["error", "random"]),
    default="error",
    show_default=True,
    help="If the backbone's dim differs from the checkpoint's visual_embedding_dim: fail, or a fixed seeded "
    "random projection (recorded in the metadata).",
)
@click.option(
    "--seed",
    type=click.IntRange(0, MAX_SEED),
    default=0,
    show_default=True,
    help="Seed of the projection and Xavier tokens.",
)
@click.option(
    "--max-images", type=click.IntRange(1, MAX_COUNT), default=5, show_default=True, help="Images per entity."
)
@click.option(
    "--no-image",
    type=click.Choice(["text-only", "xavier"]),
    default="text-only",
    show_default=True,
    help="Entities without images: text-only input, or one Xavier-initialised visual token (the paper).",
)
@click.option(
    "--pooling",
    type=click.Choice(["auto", "mean", "cls"]),
    default="auto",
    show_default=True,
    help="Text encoder pooling ('auto': the sentence-transformers config, else mean).",
)
@click.option(
    "--max-length", type=click.IntRange(3, MAX_COUNT), help="Maximum text tokens; default: the model's limit."
)
@click.option("--batch-size", type=click.IntRange(1, MAX_COUNT), default=32, show_default=True)
@click.option("--device", callback=check_device, help="e.g. cpu, cuda, cuda:1; default: CUDA when available.")
@click.option(
    "--threads",
    type=click.IntRange(1, MAX_COUNT),
    help="CPU threads for torch; default: torch's choice. On a busy or small machine 1 can be faster.",
)
@click.option("--no-autocast", is_flag=True, help="Disable mixed precision on CUDA.")
@click.option("--shard", help="Encode only shard i of n ('i/n', 0-based); merge the shards with merge-features.")
@click.option("--restart", is_flag=True, help="Ignore the resume file <output>.partial and encode everything.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--checkpoint-interval", type=click.FloatRange(min=0), default=60.0, show_default=True, help="Seconds.")
@click.option("--quiet", is_flag=True, help="No progress bars (neither ours nor the model loading's).")
@click.pass_context
def encode(
    ctx: click.Context,
    output: Path | None,
    texts: Path | None,
    dataset: str | None,
    dataset_directory: Path | None,
    images: Path | None,
    image_dir_names: str,
    entities: Path | None,
    encoder_name: str,
    checkpoint: str | None,
    tokenizer: str | None,
    backbone: str,
    backbone_checkpoint: str | None,
    visual_tokens: str,
    projection: str,
    seed: int,
    max_images: int,
    no_image: str,
    pooling: str,
    max_length: int | None,
    batch_size: int,
    device: str | None,
    threads: int | None,
    no_autocast: bool,
    shard: str | None,
    restart: bool,
    overwrite: bool,
    checkpoint_interval: float,
    quiet: bool,
) -> None:
    """Encode entity texts (and images) into a features file for the vbkgc model."""
    # validate all options before loading anything
    if (texts is None) == (dataset is None):
        raise click.UsageError("Give exactly one of --texts and --dataset.")
    if dataset_directory is not None and dataset is None:
        raise click.UsageError("--dataset-directory needs --dataset.")
    shard_pair = None
    if shard is not None:
        try:
            shard_pair = parse_shard(shard)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--shard") from None
    if encoder_name == "text":
        wrong = _explicit(ctx, _IMAGE_OPTIONS + _VISUALBERT_OPTIONS)
        if images is not None:
            wrong.insert(0, "--images")
        if wrong:
            raise click.UsageError(f"{', '.join(wrong)} only apply to --encoder visualbert.")
    else:
        if _explicit(ctx, ("pooling",)):
            raise click.UsageError("--pooling only applies to --encoder text (VisualBERT uses [CLS]).")
        if backbone == "vgg16" and visual_tokens != "pooled":
            raise click.UsageError("--visual-tokens grid needs a transformers backbone (vgg16 gives one fc7 token).")
        if images is None and dataset is None and (wrong := _explicit(ctx, _IMAGE_OPTIONS)):
            raise click.UsageError(f"{', '.join(wrong)} need --images.")
    if output is None and (dataset is None or shard_pair is not None):
        raise click.UsageError("Give the output file with -o/--output.")

    try:
        if dataset is not None:
            data = _load_dataset(dataset, dataset_directory)
            text_of = data.entity_texts
            image_paths = getattr(data, "entity_images", {}) if encoder_name == "visualbert" else {}
            if images is not None:
                image_paths = read_images(images, dir_names=image_dir_names)
            output = output or data.features_path
        else:
            text_of = read_texts(texts)
            image_paths = read_images(images, dir_names=image_dir_names) if images is not None else {}
        if images is not None and not image_paths:
            raise click.UsageError(f"No images found in {images} (expected a directory per entity, or a TSV).")
        entity_list = _read_entities(entities) if entities is not None else None
        # fail on bad inputs before loading any model
        check_inputs(text_of, image_paths, entity_list)
        _check_output(output, overwrite)

        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        if quiet:
            # transformers' own bars ("Loading weights"), too
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()
        if encoder_name == "text":
            from .text import TextEncoder

            encoder = TextEncoder(
                checkpoint or DEFAULT_TEXT_CHECKPOINT,
                pooling=pooling,
                max_length=max_length,
                device=device,
                autocast=not no_autocast,
            )
        else:
            from .visualbert import VisualBertEncoder

            if not image_paths:
                logger.info("No images given: VisualBERT gets text-only input")
            backbone_kwargs = {"checkpoint": backbone_checkpoint} if backbone_checkpoint else {}
            if visual_tokens != "pooled":
                backbone_kwargs["visual_tokens"] = visual_tokens
            encoder = VisualBertEncoder(
                checkpoint or DEFAULT_CHECKPOINT,
                tokenizer=tokenizer,
                backbone=backbone,
                backbone_kwargs=backbone_kwargs,
                use_images=bool(image_paths),
                projection=projection,
                seed=seed,
                max_images=max_images,
                no_image=no_image,
                max_length=max_length,
                device=device,
                autocast=not no_autocast,
            )
        features = encode_entities(
            encoder,
            text_of,
            image_paths,
            output=output,
            entities=entity_list,
            batch_size=batch_size,
            shard=shard_pair,
            resume=not restart,
            overwrite=overwrite,
            checkpoint_interval=checkpoint_interval,
            progress=not quiet,
        )
    except click.ClickException:
        raise
    except _USER_ERRORS as error:
        raise click.ClickException(str(error)) from error
    except KeyboardInterrupt as error:
        # Ctrl-C or SIGTERM: encode_entities kept the finished entities; one line instead of a traceback
        partial = partial_path(output) if output is not None else None
        kept = f"the finished entities are in {partial}" if partial and partial.exists() else "no entity was finished"
        click.echo(f"Interrupted: {kept}; run the same command again to resume.", err=True)
        sys.exit(143 if isinstance(error, EncodingTerminated) else 130)
    with_images = int((features.num_images > 0).sum()) if features.num_images is not None else 0
    click.echo(
        f"Wrote {len(features.labels):,} entities x {features.dim} ({with_images:,} with images, "
        f"{features.metadata['num_truncated']} texts truncated) to {output}"
    )


@click.command("merge-features")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Merged file.")
@click.option(
    "--entities",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The merged file must cover exactly these entities (one label per line).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
def merge_features(paths: tuple[Path, ...], output: Path, entities: Path | None, overwrite: bool) -> None:
    """Merge features files (e.g. the shards of one encode run), checking every entity is covered exactly once."""
    _check_output(output, overwrite)
    if output.resolve() in {path.resolve() for path in paths}:
        raise click.UsageError("The output file must not be one of the inputs.")
    try:
        merged = merge_feature_files(
            paths,
            output,
            expected_labels=_read_entities(entities) if entities is not None else None,
            overwrite=overwrite,
        )
    except _USER_ERRORS as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"Merged {len(paths)} files: {len(merged.labels):,} entities x {merged.dim} written to {output}")
