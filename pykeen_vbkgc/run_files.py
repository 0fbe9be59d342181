"""The files of a saved run (``pykeen-vbkgc train --output``), written and read without pickle.

A run directory holds the model as data, never as code:

- ``vbkgc_model.json``: the model's class and constructor arguments, the graph's size and the SHA-256 of each of the
  files below and of its own other entries; it is written last, so a directory without it is not a (finished) run,
- ``model.safetensors``: the weights, including the frozen features (the model is rebuilt from the JSON with
  placeholder features, then the weights are loaded into it),
- ``entity_to_id.json`` and ``relation_to_id.json``: the label mappings, label to id,
- ``training_triples.safetensors``: the training triples as ids (``predict`` leaves them out of its answers),
- ``vbkgc_run.json``: how the run was made (the dataset, settings and seed; ``evaluate`` finds the dataset there).

:func:`load_run` reads these files only, so loading a run that someone else made runs no code of theirs. ``train``
also writes PyKEEN's own files for PyKEEN users (``trained_model.pkl``, ``training_triples/``: pickles, which
:func:`load_run` reads only with ``trust_pickle=True``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .device_option import device_problem, parse_device
from .digests import file_sha256
from .replacing import replacing
from .validation import ids_out_of_range

if TYPE_CHECKING:
    import torch
    from pykeen.models import Model
    from pykeen.triples import TriplesFactory

    from .model import VBKGC

__all__ = [
    "MODEL_DESCRIPTION",
    "RUN_RECORD",
    "PickleOnlyRunError",
    "RunFilesError",
    "load_run",
    "read_run_record",
    "save_run_files",
]

#: the description of the model, written last: a directory holds a finished run if and only if it has this file
MODEL_DESCRIPTION = "vbkgc_model.json"
#: the weights (and frozen features) of the model
WEIGHTS = "model.safetensors"
#: the entity labels and their ids
ENTITY_TO_ID = "entity_to_id.json"
#: the relation labels and their ids
RELATION_TO_ID = "relation_to_id.json"
#: the training triples, as ids
TRAINING_TRIPLES = "training_triples.safetensors"
#: how the run was made: the dataset, the settings, the seed (read by ``evaluate``)
RUN_RECORD = "vbkgc_run.json"
#: PyKEEN's pickles, written for PyKEEN users
PICKLED_MODEL = "trained_model.pkl"
PICKLED_TRIPLES = "training_triples"

#: the value of ``format`` in :data:`MODEL_DESCRIPTION`, and the version of the layout described here
FORMAT = "pykeen-vbkgc run"
FORMAT_VERSION = 1

#: the key of :data:`MODEL_DESCRIPTION` that holds the SHA-256 of the rest of it (runs saved before it have none)
DESCRIPTION_DIGEST = "description_sha256"

#: constructor arguments that the files carry themselves (the features are in the weights)
_NOT_DESCRIBED = ("triples_factory", "features", "random_seed")

#: the weights whose widths the description gives: the frozen features (``feature_dim``) and the structural
#: embeddings (``embedding_dim``)
_FEATURES_WEIGHT = "entity_representations.2.base.base._embeddings.weight"
_STRUCTURAL_WEIGHT = "entity_representations.0.base._embeddings.weight"


class RunFilesError(ValueError):
    """A directory does not hold a readable run; the message is one line that names the file and the problem."""


class PickleOnlyRunError(RunFilesError):
    """A directory holds only PyKEEN's pickle of a model, which is read only when trusted."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        #: the pickle
        self.path = path


def save_run_files(
    directory: str | os.PathLike,
    model: VBKGC,
    training: TriplesFactory,
    model_kwargs: Mapping[str, Any],
) -> None:
    """Save a VBKGC model and its training triples without pickle, so that :func:`load_run` can rebuild it.

    :param directory: an existing directory
    :param model: the trained model
    :param training: its training triples (with labels)
    :param model_kwargs: the keyword arguments the model was built with (those of :class:`~pykeen_vbkgc.VBKGC`,
        including ``loss`` and ``loss_kwargs`` as names and plain values); ``features`` and ``random_seed`` are left
        out (the features are saved with the weights)
    :raises TypeError: if the model is not a VBKGC or an argument cannot be written as JSON
    """
    from safetensors.torch import save_file, save_model

    from .model import VBKGC

    if not isinstance(model, VBKGC):
        raise TypeError(f"save_run_files saves VBKGC models, not {type(model).__name__}.")
    kwargs = {key: value for key, value in model_kwargs.items() if key not in _NOT_DESCRIBED}
    try:
        json.dumps(kwargs, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise TypeError(f"the model's arguments must be plain JSON values: {error}") from None
    directory = Path(directory)
    # every file through replacing, which gives it the umask's mode (safetensors makes its files private); save_model
    # stores the structural embedding, which appears twice in the state dict (two views), once
    with replacing(directory / WEIGHTS) as temporary:
        save_model(model, str(temporary))
    _write_json(directory / ENTITY_TO_ID, dict(training.entity_to_id))
    _write_json(directory / RELATION_TO_ID, dict(training.relation_to_id))
    with replacing(directory / TRAINING_TRIPLES) as temporary:
        save_file({"mapped_triples": training.mapped_triples.detach().cpu().contiguous()}, temporary)
    description = dict(
        format=FORMAT,
        version=FORMAT_VERSION,
        model="VBKGC",
        model_kwargs=kwargs,
        num_entities=training.num_entities,
        # without PyKEEN's inverse relations: the mapping holds the training triples' relations
        num_relations=training.real_num_relations,
        feature_dim=model.entity_representations[2].base.transformation.in_features,
        create_inverse_triples=training.create_inverse_triples,
        files={
            name: file_sha256(directory / name) for name in (WEIGHTS, ENTITY_TO_ID, RELATION_TO_ID, TRAINING_TRIPLES)
        },
    )
    description[DESCRIPTION_DIGEST] = _description_digest(description)
    # last, and whole or not at all: its presence marks a finished run
    _write_json(directory / MODEL_DESCRIPTION, description)


def load_run(
    directory: str | os.PathLike, *, trust_pickle: bool = False, device: str | torch.device | None = None
) -> tuple[Model, TriplesFactory]:
    """Load a run saved by ``pykeen-vbkgc train --output``: the model and its training triples.

    The model is rebuilt from ``vbkgc_model.json`` and ``model.safetensors``, the triples from the label mappings
    and ``training_triples.safetensors``; no pickle is read, so a run from anyone is safe to load. Every file is
    checked against the SHA-256 recorded when it was saved.

    :param directory: the run directory
    :param trust_pickle: for a directory with PyKEEN's pickle only (``trained_model.pkl`` and
        ``training_triples/``, e.g. a run saved by an older version), unpickle those. A pickle can run any code when
        it is loaded: pass True only for files you trust.
    :param device: where to put the model; default: a GPU if there is one, else the CPU
    :return: the model (in evaluation mode) and the training triples factory
    :raises PickleOnlyRunError: if the directory holds only a pickle and ``trust_pickle`` is False
    :raises RunFilesError: if the directory holds no run, or a file is missing, damaged or inconsistent
    :raises TypeError: if ``trust_pickle`` is not a bool (a safety switch takes no "truthy" values)
    :raises ValueError: if ``device`` names no device, or one that this machine does not have
    """
    import torch
    from pykeen.triples import TriplesFactory
    from pykeen.utils import resolve_device

    if not isinstance(trust_pickle, bool):
        raise TypeError(f"trust_pickle must be True or False, got {trust_pickle!r}.")
    if device is not None:
        # before any file is read; PyKEEN would fall back to the CPU for a missing GPU, and fail late for others
        problem = device_problem(device if isinstance(device, torch.device) else parse_device(device))
        if problem is not None:
            raise ValueError(f"{str(device)!r}: {problem}.")
    directory = Path(directory)
    if not directory.exists():
        raise RunFilesError(f"{directory} does not exist.")
    description_path = directory / MODEL_DESCRIPTION
    if not description_path.is_file():
        return _load_without_description(directory, trust_pickle=trust_pickle, device=device)
    description = _read_description(description_path)
    for name, digest in description["files"].items():
        path = directory / name
        if not path.is_file():
            raise RunFilesError(f"{path} is missing; {description_path.name} lists it as part of the run.")
        if file_sha256(path) != digest:
            raise RunFilesError(f"{path} was changed or damaged after it was saved (its SHA-256 differs).")
    entity_to_id = _read_mapping(directory / ENTITY_TO_ID, size=description["num_entities"])
    relation_to_id = _read_mapping(directory / RELATION_TO_ID, size=description["num_relations"])
    mapped_triples = _read_triples(directory / TRAINING_TRIPLES, description)
    training = TriplesFactory(
        mapped_triples=mapped_triples,
        entity_to_id=entity_to_id,
        relation_to_id=relation_to_id,
        create_inverse_triples=description["create_inverse_triples"],
    )
    model = _rebuild_model(directory, description, training)
    model = model.to(resolve_device(device))
    model.eval()
    return model, training


def read_run_record(directory: str | os.PathLike) -> dict[str, Any] | None:
    """Read how a run was made (``vbkgc_run.json``), checking the fields that ``evaluate`` uses.

    :param directory: the run directory
    :return: the record, or None if the directory has none
    :raises RunFilesError: if the file is not a JSON object with a non-empty string ``dataset`` and a string or null
        ``dataset_directory``
    """
    path = Path(directory) / RUN_RECORD
    if not path.is_file():
        return None
    record = _read_json(path)
    if not isinstance(record, dict):
        raise RunFilesError(f"{path} is not a run record: expected a JSON object, got {_json_type(record)}.")
    if not isinstance(record.get("dataset"), str) or not record["dataset"]:
        raise RunFilesError(f"{path}: 'dataset' must be a non-empty string, got {_json_type(record.get('dataset'))}.")
    if not isinstance(record.get("dataset_directory"), str | None):
        raise RunFilesError(
            f"{path}: 'dataset_directory' must be a string or null, got {_json_type(record['dataset_directory'])}."
        )
    return record


def is_finished_run(directory: str | os.PathLike) -> bool:
    """Return whether a directory holds a finished run (a readable :data:`MODEL_DESCRIPTION`).

    :param directory: a directory
    :return: whether :func:`load_run` would find a description there (the other files are not checked)
    """
    path = Path(directory) / MODEL_DESCRIPTION
    if not path.is_file():
        return False
    try:
        _read_description(path)
    except RunFilesError:
        return False
    return True


def _load_without_description(directory: Path, trust_pickle: bool, device) -> tuple[Model, TriplesFactory]:
    """Explain why a directory without a description holds no loadable run, or load its pickle if trusted."""
    from .checkpoints import CHECKPOINT_NAME

    pickled = directory / PICKLED_MODEL
    if (directory / CHECKPOINT_NAME).is_file():
        raise RunFilesError(
            f"{directory} is an unfinished train run (it holds a checkpoint, no model yet); run the same train "
            "command again to finish it."
        )
    saved = [name for name in (WEIGHTS, ENTITY_TO_ID, RELATION_TO_ID, TRAINING_TRIPLES) if (directory / name).exists()]
    if saved:
        # not an older pickle-only run: its pickle (if any) is no way around a damaged run
        raise RunFilesError(
            f"{directory} has {saved[0]} but no {MODEL_DESCRIPTION}, which train writes last: the run is damaged or "
            "unfinished."
        )
    if not pickled.is_file():
        raise RunFilesError(f"{directory} holds no saved run (expected {MODEL_DESCRIPTION} from train --output).")
    if not trust_pickle:
        raise PickleOnlyRunError(
            f"{directory} holds only PyKEEN's pickle {PICKLED_MODEL} (an older run, or one saved by PyKEEN); a "
            "pickle can run any code when it is loaded, so it is read only with trust_pickle=True, for files you "
            "trust.",
            path=pickled,
        )
    return _load_pickled_run(directory, device=device)


def _load_pickled_run(directory: Path, device) -> tuple[Model, TriplesFactory]:
    """Unpickle PyKEEN's ``trained_model.pkl`` and ``training_triples/``; their code runs (trusted files only)."""
    import torch
    from pykeen.models import Model
    from pykeen.triples import TriplesFactory
    from pykeen.utils import resolve_device

    pickled, triples = directory / PICKLED_MODEL, directory / PICKLED_TRIPLES
    if not triples.is_dir():
        raise RunFilesError(f"{directory} has {PICKLED_MODEL} but no {PICKLED_TRIPLES}/ (the label mappings).")
    device = resolve_device(device)
    try:
        model = torch.load(pickled, weights_only=False, map_location=device)
    except Exception as error:  # anything may come out of an unpickler
        raise RunFilesError(f"{pickled} is not a readable PyKEEN model: {_first_line(error)}") from None
    if not isinstance(model, Model):
        raise RunFilesError(f"{pickled} is not a PyKEEN model: it holds a {type(model).__name__}.")
    try:
        training = TriplesFactory.from_path_binary(triples)
    except Exception as error:
        raise RunFilesError(f"{triples}/ is not readable PyKEEN triples: {_first_line(error)}") from None
    if (model.num_entities, model.num_relations) != (training.num_entities, training.num_relations):
        raise RunFilesError(
            f"{pickled} and {triples}/ do not belong together: the model has {model.num_entities} entities and "
            f"{model.num_relations} relations, the triples {training.num_entities} and {training.num_relations}."
        )
    model.eval()
    return model, training


def _read_description(path: Path) -> dict[str, Any]:
    """Read and check :data:`MODEL_DESCRIPTION`."""
    description = _read_json(path)
    if not isinstance(description, dict) or description.get("format") != FORMAT:
        raise RunFilesError(f'{path} is not a description of a pykeen-vbkgc model (no "format": "{FORMAT}").')
    if description.get("version") != FORMAT_VERSION:
        raise RunFilesError(
            f"{path} has format version {description.get('version')!r}; this version of pykeen-vbkgc reads "
            f"version {FORMAT_VERSION}."
        )
    digest = description.get(DESCRIPTION_DIGEST)
    if digest is not None and digest != _description_digest(description):
        raise RunFilesError(f"{path} was changed or damaged after it was saved (its SHA-256 differs).")
    expected = dict(
        model=str,
        model_kwargs=dict,
        num_entities=int,
        num_relations=int,
        feature_dim=int,
        create_inverse_triples=bool,
        files=dict,
    )
    for key, kind in expected.items():
        value = description.get(key)
        if not isinstance(value, kind) or (kind is int and (isinstance(value, bool) or value < 1)):
            raise RunFilesError(f"{path}: {key!r} must be {_KIND_NAMES[kind]}, got {_json_type(value)}.")
    if description["model"] != "VBKGC":
        raise RunFilesError(f"{path} describes a {description['model']!r} model; only 'VBKGC' can be rebuilt.")
    files = description["files"]
    if sorted(files) != sorted((WEIGHTS, ENTITY_TO_ID, RELATION_TO_ID, TRAINING_TRIPLES)) or not all(
        isinstance(digest, str) for digest in files.values()
    ):
        raise RunFilesError(f"{path}: 'files' must give the SHA-256 of {WEIGHTS}, the mappings and the triples.")
    unknown = set(description["model_kwargs"]).intersection(_NOT_DESCRIBED)
    if unknown:
        raise RunFilesError(f"{path}: 'model_kwargs' must not contain {sorted(unknown)}.")
    return description


_KIND_NAMES = {str: "a string", dict: "an object", int: "a positive integer", bool: "true or false"}


def _description_digest(description: Mapping[str, Any]) -> str:
    """Return the SHA-256 of a description without its digest, written as canonical JSON."""
    rest = {key: value for key, value in description.items() if key != DESCRIPTION_DIGEST}
    text = json.dumps(rest, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _read_mapping(path: Path, size: int) -> dict[str, int]:
    """Read a label-to-id mapping whose ids are exactly ``0 .. size - 1``."""
    mapping = _read_json(path)
    if not isinstance(mapping, dict) or not all(
        isinstance(value, int) and not isinstance(value, bool) for value in mapping.values()
    ):
        raise RunFilesError(f"{path} must be a JSON object from labels to integer ids.")
    # the length first: a size beyond the file's would not fit in memory as a range
    if len(mapping) != size or sorted(mapping.values()) != list(range(size)):
        raise RunFilesError(f"{path} must give the ids 0 to {size - 1} once each ({len(mapping):,} labels found).")
    return mapping


def _read_triples(path: Path, description: Mapping[str, Any]) -> torch.Tensor:
    """Read the training triples (ids) and check them against the numbers of entities and relations."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(path)
    except (SafetensorError, OSError) as error:
        raise RunFilesError(f"{path} is not a readable safetensors file: {_first_line(error)}") from None
    triples = tensors.get("mapped_triples")
    if triples is None or triples.dtype != torch.long or triples.ndim != 2 or triples.shape[1] != 3:
        raise RunFilesError(f"{path} must hold 'mapped_triples', an int64 tensor of shape (n, 3).")
    if ids_out_of_range(triples, description["num_entities"], description["num_relations"]) is not None:
        raise RunFilesError(f"{path} has ids outside the entities and relations of the run.")
    return triples


def _rebuild_model(directory: Path, description: Mapping[str, Any], training: TriplesFactory) -> VBKGC:
    """Build the described VBKGC with placeholder features and load its weights (the features among them)."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    from .features import FeaturesFileError
    from .model import VBKGC

    description_path = directory / MODEL_DESCRIPTION
    weights = directory / WEIGHTS
    _check_widths(weights, description)
    placeholder = torch.zeros(description["num_entities"], description["feature_dim"])
    # the initial values are overwritten by the weights: no seed is needed, and the caller's random state is kept
    seed_logger = logging.getLogger("pykeen.models.base")
    seed_logger.addFilter(_no_seed_warning)
    try:
        with torch.random.fork_rng(devices=[]):
            model = VBKGC(triples_factory=training, features=placeholder, **description["model_kwargs"])
    except (TypeError, ValueError, KeyError, FeaturesFileError) as error:
        raise RunFilesError(f"{description_path}: cannot rebuild the model: {_first_line(error)}") from None
    finally:
        seed_logger.removeFilter(_no_seed_warning)
    try:
        load_model(model, weights, strict=True)
    except (SafetensorError, OSError) as error:
        raise RunFilesError(f"{weights} is not a readable safetensors file: {_first_line(error)}") from None
    except RuntimeError as error:
        # load_state_dict lists the problems on the lines after its first
        problems = "; ".join(line.strip() for line in str(error).splitlines()[1:] if line.strip())
        raise RunFilesError(f"{weights} does not fit the model of {description_path.name}: {problems}") from None
    for name, parameter in model.named_parameters():
        if not bool(torch.isfinite(parameter).all()):
            # train saves no diverged model: every score would be NaN
            raise RunFilesError(f"{weights} holds values that are not finite (NaN or infinite) in {name}.")
    return model


def _check_widths(weights: Path, description: Mapping[str, Any]) -> None:
    """Check the widths of the description against the weights' header, before the model is built with them."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(weights, framework="pt") as file:
            shapes = {key: tuple(file.get_slice(key).get_shape()) for key in file.keys()}
    except (SafetensorError, OSError) as error:
        raise RunFilesError(f"{weights} is not a readable safetensors file: {_first_line(error)}") from None
    embedding_dim = description["model_kwargs"].get("embedding_dim")
    for key, name, width in (
        (_FEATURES_WEIGHT, "feature_dim", description["feature_dim"]),
        (_STRUCTURAL_WEIGHT, "embedding_dim", embedding_dim),
    ):
        shape = shapes.get(key)
        # a missing weight is left to the loading, which lists all that are missing
        if shape is not None and (len(shape) != 2 or (width is not None and shape[1] != width)):
            raise RunFilesError(
                f"{weights} does not fit the model of {MODEL_DESCRIPTION}: its {key} has shape {list(shape)}, the "
                f"description's {name} is {width}."
            )


def _no_seed_warning(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("No random seed is specified")


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RunFilesError(f"cannot read {path}: {_first_line(error)}") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as error:
        raise RunFilesError(f"{path} is not valid JSON: {error}") from None
    except RecursionError:
        raise RunFilesError(f"{path} is not valid JSON: it is nested too deeply.") from None


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _write_json(path: Path, value: Any) -> None:
    text = json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    with replacing(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if value == "":
        return "an empty string"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float) and not (isinstance(value, float) and not math.isfinite(value)):
        return repr(value)
    return {str: "a string", list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    line = text.splitlines()[0] if text else ""
    return f"{type(error).__name__}: {line}" if line else type(error).__name__
