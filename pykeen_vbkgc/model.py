"""VBKGC: a multimodal TransE with frozen VisualBERT features and a learned projection."""

# no ``from __future__ import annotations`` here: PyKEEN's command builder (``pykeen train vbkgc``) reads the
# annotations of ``VBKGC.__init__`` as types, and drops every option whose annotation is a string

import inspect
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Literal

import torch
from class_resolver import Hint, HintOrType, OptionalKwargs
from pykeen.losses import Loss, MarginRankingLoss, loss_resolver
from pykeen.models.nbase import ERModel, iter_slices
from pykeen.nn.init import PretrainedInitializer, xavier_uniform_
from pykeen.nn.representation import Embedding, TransformedRepresentation
from pykeen.regularizers import Regularizer
from pykeen.triples import CoreTriplesFactory
from pykeen.typing import FloatTensor, InductiveMode, Initializer, LongTensor
from pykeen.utils import set_random_seed
from torch import nn

from .defaults import BEST, MIN_FEATURE_COVERAGE, Preset, get_preset, preset_for
from .features import FEATURES_METADATA_KEY, EntityFeatures, FeaturesFileError, load_features, validate_matrix
from .interaction import (
    MEAN_TERM_WEIGHTS,
    SCORE_TERMS,
    VBKGCInteraction,
    normalize_score_terms,
    normalize_term_weights,
)
from .kernels import uses_dense_path
from .neighbours import NeighbourVote, standardised
from .preset_loss import PresetLoss
from .representation import TwinsView, decode_twins
from .validation import FLOAT32_TINY, check_float32, check_positive_int

__all__ = [
    "MIN_FEATURE_COVERAGE",
    "VBKGC",
    "WARN_FEATURE_COVERAGE",
]

logger = logging.getLogger(__name__)

#: the hidden size of VisualBERT, i.e., the width of random features for the "w/o VisualBERT" ablation
DEFAULT_FEATURE_DIM = 768

#: below this fraction of entities with a feature, the model warns
WARN_FEATURE_COVERAGE = 0.9

FeaturesHint = torch.Tensor | EntityFeatures | str | os.PathLike | Literal["random"] | None

#: the arguments of :class:`~pykeen.models.ERModel` that VBKGC sets itself, and its own arguments that set them
_OWN_ERMODEL_ARGUMENTS = {
    "interaction": ("interaction", "scoring_fct_norm, normalize, normalize_relations, score_terms and term_weights"),
    "entity_representations": ("entity representations", "embedding_dim, features and entity_initializer"),
    "relation_representations": ("relation representations", "embedding_dim and relation_initializer"),
}


class VBKGC(
    ERModel[tuple[FloatTensor, FloatTensor, FloatTensor], FloatTensor, tuple[FloatTensor, FloatTensor, FloatTensor]]
):
    r"""An implementation of VBKGC [zhang2022]_.

    Each entity $e$ has a learned structural embedding $\mathbf{e}_s \in \mathbb{R}^d$ and a multimodal embedding
    $\mathbf{e}_m = \mathbf{W} \mathbf{h}_e$ (Eq. 3), where $\mathbf{h}_e \in \mathbb{R}^{d_m}$ is a frozen,
    pre-extracted feature (the VisualBERT [CLS] state of the entity's text and images, see
    :mod:`pykeen_vbkgc.encoders`) and $\mathbf{W} \in \mathbb{R}^{d \times d_m}$ is learned. Relations have one
    embedding $\mathbf{r} \in \mathbb{R}^d$. Triples are scored by :class:`~pykeen_vbkgc.VBKGCInteraction`, the sum
    of five TransE terms over structural and multimodal embeddings (Eq. 4-10).

    The features are stored in a frozen :class:`~pykeen.nn.representation.Embedding` (initialised by a
    :class:`~pykeen.nn.init.PretrainedInitializer`) and projected by a
    :class:`~pykeen.nn.representation.TransformedRepresentation`. Entities without a feature get a Xavier-initialised
    feature row (paper, Sec. 5.3), which is frozen like the others.

    The entity representations are wrapped in :class:`~pykeen_vbkgc.representation.TwinsView` so that the model
    consumes twins negatives from :class:`~pykeen_vbkgc.TwinsNegativeSampler`; with any other sampler it behaves
    as described above. For training batches, :meth:`score_hrt` projects and normalises all entities once per
    parameter update (shared by the positive and the negative call of the sLCWA loop) and lets
    :meth:`~pykeen_vbkgc.VBKGCInteraction.score_rows` score the rows against that table.

    Beyond the paper, a positive ``neighbour_weight`` adds a non-learned vote to the ranking of all candidates in
    evaluation mode: the candidates that the entities with the most similar features are linked to in training
    (:class:`~pykeen_vbkgc.neighbours.NeighbourVote`; the presets of FB15k-237 and WN9 use it, WN9's behind the
    mirror gate: no vote for the queries that a mirrored training triple answers).
    ---
    citation:
        author: Zhang
        year: 2022
        link: https://arxiv.org/abs/2209.07084
        github: zjukg/NATIVE
    """

    #: The default strategy for optimizing the model's hyper-parameters: the paper fixes d = 128; the settings of the
    #: dataset's preset (:func:`~pykeen_vbkgc.defaults.preset_for`) are fixed, too, by leaving them out here (tune
    #: them explicitly with ``model_kwargs_ranges``)
    hpo_default: ClassVar[Mapping[str, Any]] = dict(
        embedding_dim=dict(type="categorical", choices=[BEST.embedding_dim]),
    )
    #: The default loss function class, for PyKEEN's tools that read it (``hpo_pipeline``): a stand-in that the model
    #: replaces by its preset's loss (:attr:`~pykeen_vbkgc.defaults.Preset.loss`), as it does when given no loss
    loss_default = PresetLoss
    #: The default parameters for the default loss function class: the preset's margin
    loss_default_kwargs: ClassVar[Mapping[str, Any]] = dict(margin_scale=1.0)
    #: this model decodes the twins ids produced by :class:`~pykeen_vbkgc.TwinsNegativeSampler`
    supports_twins_negatives: ClassVar[bool] = True

    def __init__(
        self,
        *,
        triples_factory: CoreTriplesFactory,
        features: FeaturesHint = None,
        feature_dim: int | None = None,
        min_feature_coverage: float = MIN_FEATURE_COVERAGE,
        embedding_dim: int = BEST.embedding_dim,
        scoring_fct_norm: float | None = None,
        normalize: bool = BEST.normalize,
        normalize_relations: bool | None = None,
        score_terms: str | Iterable[str] | None = None,
        term_weights: Mapping[str, float] | str | None = None,
        entity_initializer: Hint[Initializer] = xavier_uniform_,
        relation_initializer: Hint[Initializer] = None,
        regularizer: HintOrType[Regularizer] = None,
        regularizer_kwargs: OptionalKwargs = None,
        projection_bias: bool = False,
        projection_lr_scale: float | None = None,
        neighbour_weight: float | None = None,
        num_neighbours: int | None = None,
        neighbour_mirror_gate: bool | None = None,
        preset: str | None = None,
        loss: Loss | str | type[Loss] | None = None,
        loss_kwargs: Mapping[str, Any] | None = None,
        **kwargs,
    ) -> None:
        r"""Initialize VBKGC.

        The settings left out (``None``) come from a preset of :mod:`pykeen_vbkgc.defaults`: the one that the
        dataset named in the training triples' metadata (WN9 and FB15k-237 do, see
        :func:`~pykeen_vbkgc.defaults.preset_for`), else the best-known general settings,
        :data:`~pykeen_vbkgc.defaults.BEST`. ``preset="paper"`` chooses the paper's configuration.

        :param triples_factory: the training triples factory
        :param features: the frozen multimodal features $\mathbf{h}_e$. Either a float tensor of shape
            ``(num_entities, d_m)`` aligned with ``triples_factory.entity_to_id``, a path to a features file (see
            :mod:`pykeen_vbkgc.features`), an :class:`~pykeen_vbkgc.features.EntityFeatures`, ``"random"`` for
            random features (the ablation "w/o VisualBERT"), or ``None`` (default) for the features that the
            dataset attached to its training triples (the multimodal datasets of :mod:`pykeen_vbkgc.datasets` do
            when their features file exists), else random features. Labelled features are aligned by entity label;
            entities without a feature get Xavier-initialised rows. Random features and a coverage below 90 % are
            logged as warnings.
        :param feature_dim: the feature dimension $d_m$ of random features (default 768); if given together
            with features, it must match them
        :param min_feature_coverage: the smallest accepted fraction of entities with a feature (default 0.5);
            below it the model raises an error, because most entities would get random features. Set it to 0 to
            accept any coverage.
        :param embedding_dim: the embedding dimension $d$ of structural, multimodal and relation embeddings
        :param scoring_fct_norm: the order $p$ of the norm in $f(h, r, t) = -\|h + r - t\|_p$; default: the preset's
        :param normalize: whether to L2-normalise the entity arguments of each TransE term, as in the reference code
        :param normalize_relations: whether to L2-normalise the relation vector, too (OpenKE does, PyKEEN's TransE
            does not); default: the preset's
        :param score_terms: which of the terms ``ss``, ``mm``, ``sm``, ``ms``, ``all`` to sum (default: all)
        :param term_weights: a weight per score term, e.g. ``dict(mm=0.1)`` or ``"mm=0.1"``; unnamed terms weigh 1.
            Default: the preset's (its weights of terms that are not scored are dropped); ``{}`` weighs every term 1
        :param entity_initializer: initializer of the structural entity embeddings
        :param relation_initializer: initializer of the relation embeddings; default: the preset's
        :param regularizer: a regularizer of the structural entity embeddings and the relation embeddings, or a hint
            thereof, as for :class:`~pykeen.models.TransE` (e.g. ``"lp"``; :func:`pykeen.pipeline.pipeline`'s
            ``regularizer``). A training step reads every row of both tables (the piece table holds all entities), so
            the regularizer sees all rows, not only the batch's. Default: none
        :param regularizer_kwargs: keyword arguments of the regularizer
        :param projection_bias: whether the projection $\mathbf{W}$ has a bias
        :param preset: the name of the preset for every setting left out (``"best"``, ``"paper"``, ``"wn9"``,
            ``"fb15k237"``); default: the dataset's (see above)
        :param loss: the loss; default: the preset's :attr:`~pykeen_vbkgc.defaults.Preset.loss` with its
            :attr:`~pykeen_vbkgc.defaults.Preset.margin`. :func:`pykeen.pipeline.pipeline` always builds a loss and
            hands PyKEEN's ``MarginRankingLoss(margin=1)`` to the model when it was given no ``loss``; VBKGC takes
            that as "no loss given" and uses the preset's loss (with the pipeline's ``loss_kwargs``, if any), because
            a pairwise margin of 1 makes it rank each query's own entity first.
        :param loss_kwargs: keyword arguments of the loss
        :param projection_lr_scale: a factor $s > 0$ on the learning rate of $\mathbf{W}$ under Adam-type optimizers.
            $\mathbf{W}$ is shared by all entities and moves every step, so a smaller rate than the embeddings' can
            help (see docs/results.md). Implemented as $\mathbf{W} = s \mathbf{V}$ with $\mathbf{V}$ the trained
            parameter (initialised to $\mathbf{W}_0 / s$): Adam moves $\mathbf{V}$ by about the learning rate per
            step whatever the gradient's scale, hence $\mathbf{W}$ by $s$ times that. (Plain SGD would see $s^2$.)
            Default: the preset's
        :param neighbour_weight: the weight $\lambda \geq 0$ of the neighbours' vote
            (:class:`~pykeen_vbkgc.neighbours.NeighbourVote`, built from the features and the training triples) when
            the model ranks all candidates of a query in evaluation mode (:meth:`score_t`, :meth:`score_h` and
            PyKEEN's ``predict_*`` and evaluators, which call them): the scores become
            $z(s) + \lambda \, z(v)$, with $s$ the learned scores, $v$ the votes and $z$ standardising each query's
            row to mean 0 and standard deviation 1. Training and :meth:`score_hrt` use the learned score alone.
            Default: the preset's (0, no vote, except FB15k-237's and WN9's)
        :param num_neighbours: the number $K$ of neighbours that vote; default: the preset's (50), at most the
            number of entities minus one
        :param neighbour_mirror_gate: whether the queries that a mirrored training triple answers (e.g. a hypernym
            whose hyponym triple is known) get no vote (:mod:`~pykeen_vbkgc.neighbours`); default: the preset's (only
            WN9's)
        :param kwargs: remaining keyword arguments passed to :meth:`pykeen.models.ERModel.__init__`, except its
            interaction and representations, which VBKGC builds from the arguments above
        :raises TypeError: for an interaction or representations of :class:`~pykeen.models.ERModel` in ``kwargs``
        """
        for argument, (what, own) in _OWN_ERMODEL_ARGUMENTS.items():
            for name in (argument, f"{argument}_kwargs"):
                if name in kwargs:
                    raise TypeError(f"VBKGC builds its own {what} from its arguments {own}; it takes no {name}.")
        embedding_dim, feature_dim, num_neighbours = (
            None if value is None else check_positive_int(name, value)
            for name, value in dict(
                embedding_dim=embedding_dim, feature_dim=feature_dim, num_neighbours=num_neighbours
            ).items()
        )
        if neighbour_weight is not None:
            check_float32("neighbour_weight", neighbour_weight)
        if neighbour_mirror_gate is not None and not isinstance(neighbour_mirror_gate, bool):
            raise ValueError(f"neighbour_mirror_gate must be True or False, got {neighbour_mirror_gate!r}.")
        if kwargs.get("random_seed") is not None:
            # seed before drawing Xavier rows for entities without features, so they are reproducible, too
            set_random_seed(kwargs["random_seed"])
        feature_tensor = _resolve_features(
            features=features,
            feature_dim=feature_dim,
            triples_factory=triples_factory,
            min_coverage=min_feature_coverage,
        )
        settings = preset_for(triples_factory) if preset is None else get_preset(preset)
        if scoring_fct_norm is None:
            scoring_fct_norm = settings.scoring_fct_norm
        if projection_lr_scale is None:
            projection_lr_scale = settings.projection_lr_scale
        if term_weights is None:
            term_weights = _preset_term_weights(settings, score_terms)
        if normalize_relations is None:
            normalize_relations = settings.normalize_relations
        if relation_initializer is None:
            relation_initializer = settings.relation_initializer
        if neighbour_weight is None:
            neighbour_weight = settings.neighbour_weight
        if num_neighbours is None:
            # the preset's number, on a graph that small: every other entity
            num_neighbours = min(settings.num_neighbours, triples_factory.num_entities - 1)
        if neighbour_mirror_gate is None:
            neighbour_mirror_gate = settings.neighbour_mirror_gate
        pipeline_loss_kwargs = _pipeline_default_loss_kwargs(loss)
        if pipeline_loss_kwargs is not None:
            loss_kwargs, loss = pipeline_loss_kwargs, None
        if loss is None:
            loss, loss_kwargs = settings.loss, {"margin": settings.margin, **(loss_kwargs or {})}
            logger.info(f"VBKGC was given no loss: using the {settings.name!r} preset's {loss}({loss_kwargs}).")
        elif _is_preset_loss(loss):
            if not isinstance(loss, PresetLoss):
                loss = PresetLoss(**(loss_kwargs or {}))
            loss, loss_kwargs = loss.resolve(settings), None
            logger.info(f"VBKGC uses the {settings.name!r} preset's loss: {loss}.")
        structural = Embedding(
            max_id=triples_factory.num_entities,
            shape=embedding_dim,
            initializer=entity_initializer,
            regularizer=regularizer,
            regularizer_kwargs=regularizer_kwargs,
        )
        multimodal = TransformedRepresentation(
            transformation=_ScaledLinear(
                feature_tensor.shape[1], embedding_dim, bias=projection_bias, scale=projection_lr_scale
            ),
            base=Embedding.from_pretrained(_FrozenFeatures(tensor=feature_tensor), trainable=False),
        )
        super().__init__(
            triples_factory=triples_factory,
            interaction=VBKGCInteraction,
            interaction_kwargs=dict(
                p=scoring_fct_norm,
                normalize=normalize,
                normalize_relations=normalize_relations,
                score_terms=score_terms,
                term_weights=term_weights,
            ),
            entity_representations=[
                TwinsView(base=structural, side="replacement"),
                TwinsView(base=structural, side="original"),
                TwinsView(base=multimodal, side="replacement"),
            ],
            relation_representations_kwargs=dict(
                shape=embedding_dim,
                initializer=relation_initializer,
                regularizer=regularizer,
                regularizer_kwargs=regularizer_kwargs,
            ),
            loss=loss,
            loss_kwargs=loss_kwargs,
            **kwargs,
        )
        #: (key, (e_s, e_m, piece table)) of the current parameters, see _entity_tables
        self._tables: tuple[Any, tuple[FloatTensor, FloatTensor, FloatTensor]] | None = None
        # the weight of the neighbours' vote when ranking candidates (see __init__ and the property)
        self._neighbour_weight = float(neighbour_weight)
        #: the vote; built only for a positive weight (its tables hold the training triples)
        self.neighbour_vote = (
            NeighbourVote(
                mapped_triples=triples_factory.mapped_triples,
                num_entities=triples_factory.num_entities,
                # the training triples' relations, without PyKEEN's inverse ones
                num_relations=triples_factory.real_num_relations,
                num_neighbours=num_neighbours,
                mirror_gate=neighbour_mirror_gate,
            )
            if neighbour_weight > 0
            else None
        )

    def score_hrt(self, hrt_batch: LongTensor, *, mode: InductiveMode | None = None) -> FloatTensor:  # noqa: D102
        if mode is not None:
            self._check_entity_ids(hrt_batch[:, 0::2])
            return super().score_hrt(hrt_batch=hrt_batch, mode=mode)
        num_entities = self.num_entities
        entities = hrt_batch[:, 0::2]
        dense = uses_dense_path(hrt_batch.device)
        if not dense or not self.training:
            # twins ids, too: the negatives of a loss (PyKEEN's evaluation-loss callback, Lightning's validation)
            # carry them in evaluation mode. On the CPU the host looks at the ids anyway; on accelerators the check
            # synchronises with the device, which training does not wait for
            self._check_twins_range(entities)
        replacement = decode_twins(entities, num_entities=num_entities, side="replacement")
        original = decode_twins(entities, num_entities=num_entities, side="original")
        sums = None
        structural, multimodal, table = self._entity_tables(piece_table=not dense)
        (relation_representation,) = self.relation_representations
        relations = relation_representation(indices=None)
        r_index = hrt_batch[:, 1]
        if dense:
            # on accelerators, testing for twins ids and selecting them would synchronise with the device: every
            # position gets its own sum piece n(e_s original + e_m) (cheap there; for plain ids the row of e_s + e_m),
            # which follows e_s and e_m in one table; where relations are normalised as entities are (or neither is),
            # their rows follow, too (one normalisation, and no gather of their own: each operator is a kernel launch)
            in_table = self.interaction.normalize == self.interaction.normalize_relations
            table = self.interaction.piece_table(
                structural,
                multimodal,
                twins=(
                    structural.index_select(0, original.reshape(-1)),
                    multimodal.index_select(0, replacement.reshape(-1)),
                ),
                relations=relations if in_table else None,
                sums=False,
            )
            if table.requires_grad:
                table.register_hook(self._forget_tables)
            start = 2 * num_entities
            sum_index = torch.arange(start, start + entities.numel(), device=entities.device).view_as(entities)
            if in_table:
                relations, r_index = None, r_index + (start + entities.numel())
        else:
            sum_index = entities + 2 * num_entities
        # per side the table rows of the pieces (e_s, e_s original, e_m, e_s original + e_m), see piece_table
        index = torch.stack([replacement, original, replacement + num_entities, sum_index], dim=-1)
        # the dense kernels take views of the index; each copy would be one more kernel launch
        h_index, t_index = index[:, 0], index[:, 1]
        if not dense:
            # the positions of the twins ids, searched once (each boolean selection would search the mask again)
            positions = (entities >= num_entities).reshape(-1).nonzero().squeeze(dim=1)
            if positions.numel():
                # the sum piece of a twins pair (e, e') is n(e_s + e'_m): one extra row per twins id, after the
                # table; index_select, not indexing: its backward is an index_add_, much faster than index_put_
                rows = table.shape[0] + torch.arange(positions.numel(), device=index.device)
                index.view(-1, index.shape[-1])[positions, 3] = rows
                # one more (unused) row: with as many sum rows as rows (every sLCWA negative has a twins id), the
                # compiled kernels would guard on that equality, which the positives then fail (a second graph)
                positions = torch.cat([positions, positions[:1]])
                sums = self.interaction.twins_sum_pieces(
                    structural.index_select(0, original.reshape(-1).index_select(0, positions)),
                    multimodal.index_select(0, replacement.reshape(-1).index_select(0, positions)),
                )
            # contiguous copies, not views: the storage offset of a view is one more size that compiled kernels
            # guard on (and compile again for)
            h_index, t_index = h_index.contiguous(), t_index.contiguous()
        return self.interaction.score_rows(
            table=table, h_index=h_index, relations=relations, r_index=r_index, t_index=t_index, twins_sums=sums
        ).unsqueeze(dim=-1)

    def score_t(
        self,
        hr_batch: LongTensor,
        *,
        slice_size: int | None = None,
        mode: InductiveMode | None = None,
        tails: LongTensor | None = None,
    ) -> FloatTensor:
        """Score all tails, or each query's own candidates; see :meth:`pykeen.models.ERModel.score_t`.

        In evaluation mode with a positive ``neighbour_weight``, the scores of all tails are combined with the
        neighbours' vote (see :meth:`__init__`) before the requested ones are picked.
        """
        if self._votes(mode):
            return self._with_votes(super().score_t, hr_batch, slice_size=slice_size, side="tail", candidates=tails)
        if tails is None or tails.ndimension() == 1 or slice_size is not None or mode is not None:
            return super().score_t(hr_batch=hr_batch, slice_size=slice_size, mode=mode, tails=tails)
        # a candidate matrix per query (e.g. NSCaching's caches): score_hrt projects every entity once instead of
        # once per candidate
        return self._score_candidates(hr_batch, candidates=tails, column=2)

    def score_h(
        self,
        rt_batch: LongTensor,
        *,
        slice_size: int | None = None,
        mode: InductiveMode | None = None,
        heads: LongTensor | None = None,
    ) -> FloatTensor:
        """Score all heads, or each query's own candidates; see :meth:`pykeen.models.ERModel.score_h`.

        In evaluation mode with a positive ``neighbour_weight``, the scores of all heads are combined with the
        neighbours' vote (see :meth:`__init__`) before the requested ones are picked.
        """
        if self._votes(mode):
            return self._with_votes(super().score_h, rt_batch, slice_size=slice_size, side="head", candidates=heads)
        if heads is None or heads.ndimension() == 1 or slice_size is not None or mode is not None:
            return super().score_h(rt_batch=rt_batch, slice_size=slice_size, mode=mode, heads=heads)
        return self._score_candidates(rt_batch, candidates=heads, column=0)

    @property
    def neighbour_weight(self) -> float:
        r"""Return the weight $\lambda$ of the neighbours' vote when ranking candidates (see :meth:`__init__`)."""
        return self._neighbour_weight

    @neighbour_weight.setter
    def neighbour_weight(self, value: float) -> None:
        """Change the weight of the vote; a model built with weight 0 has no vote to weigh.

        :raises ValueError: for a weight that is not a number within float32's range, or a positive weight for a
            model without a vote
        """
        check_float32("neighbour_weight", value)
        if value > 0 and self.neighbour_vote is None:
            raise ValueError(
                "this model was built without the neighbours' vote (neighbour_weight=0): pass neighbour_weight to "
                "VBKGC(...) (or model_kwargs) to build it."
            )
        self._neighbour_weight = float(value)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # pickles of earlier versions hold the weight as a plain attribute
        if "neighbour_weight" in state:
            state["_neighbour_weight"] = state.pop("neighbour_weight")
        super().__setstate__(state)

    def _votes(self, mode: InductiveMode | None) -> bool:
        """Return whether the neighbours' vote joins the ranking scores."""
        return not self.training and mode is None and self.neighbour_vote is not None and self.neighbour_weight > 0

    def _with_votes(
        self, score, pairs: LongTensor, slice_size: int | None, side: str, candidates: LongTensor | None
    ) -> FloatTensor:
        r"""Return $z(s) + \lambda \, z(v)$ over all entities, then the candidates' columns.

        :param score: ERModel's ``score_t`` (``side="tail"``, ``pairs`` of (h, r)) or ``score_h`` (``"head"``, (r, t))
        """
        key, anchor = ("tails", 0) if side == "tail" else ("heads", 1)
        if not slice_size or slice_size >= self.num_entities:
            learned = score(pairs)
        else:
            # ERModel's own slicing would call this model's score_t / score_h (and the vote) again for each slice
            ids = iter_slices(ids=None, slice_size=slice_size, total=self.num_entities, device=pairs.device)
            learned = torch.cat([score(pairs, **{key: part}) for part in ids], dim=-1)
        votes = self._votes_of(pairs[:, anchor], pairs[:, 1 - anchor], side=side)
        return _select(standardised(learned) + self.neighbour_weight * standardised(votes), candidates)

    def _votes_of(self, anchors: LongTensor, relations: LongTensor, side: str) -> FloatTensor:
        """Return the neighbours' votes for queries given in the model's relation ids.

        With inverse triples, PyKEEN gives the model the relation ids $2r$ for the training triples' relation $r$ and
        $2r + 1$ for its inverse (:class:`~pykeen.inverse.DefaultRelationInverter`); the vote counts the training
        triples, so it takes $r$, and a query of the inverse relation asks for the other side of $r$.
        """
        features = self._features()
        if not self.use_inverse_triples or not len(anchors):
            return self.neighbour_vote(features, anchors, relations, side=side)
        inverse = self.relation_inverter.is_inverse(relations)
        relations = torch.div(relations, 2, rounding_mode="floor")
        parts = [
            (rows, self.neighbour_vote(features, anchors[rows], relations[rows], side=rows_side))
            for rows, rows_side in ((~inverse, side), (inverse, "head" if side == "tail" else "tail"))
            if bool(rows.any())
        ]
        votes = parts[0][1].new_empty(len(anchors), self.num_entities)
        for rows, part in parts:
            votes[rows] = part
        return votes

    def _features(self) -> FloatTensor:
        r"""Return the frozen features $\mathbf{h}$ of all entities."""
        return self.entity_representations[2].base.base(indices=None)

    def _score_candidates(self, pairs: LongTensor, candidates: LongTensor, column: int) -> FloatTensor:
        """Score the triples of each query pair with each of its row's candidates at ``column`` (0 or 2)."""
        triples = torch.empty(*candidates.shape, 3, dtype=torch.long, device=candidates.device)
        triples[..., column] = candidates
        triples[..., [c for c in range(3) if c != column]] = pairs.unsqueeze(1)
        return self.score_hrt(triples.view(-1, 3)).view(candidates.shape)

    def _get_representations(
        self, h: LongTensor | None, r: LongTensor | None, t: LongTensor | None, *, mode: InductiveMode | None
    ) -> tuple[Any, Any, Any]:
        """Return ERModel's representations; without gradients, the entities' come from the cached tables.

        Scoring all candidates (PyKEEN's evaluators, ``predict_*``) would otherwise project every entity's features
        once per batch of queries, although the parameters do not change between batches.
        """
        self._check_entity_ids(h)
        self._check_entity_ids(t)
        if mode is not None or torch.is_grad_enabled():
            return super()._get_representations(h=h, r=r, t=t, mode=mode)
        structural, multimodal, _ = self._entity_tables(piece_table=False)
        # the tables of the views, in the order of entity_representations (see _entity_tables)
        tables = (structural, structural, multimodal)

        def look_up(indices: LongTensor | None, positions: Sequence[int]) -> list[FloatTensor]:
            if indices is None:
                views = tables
            else:
                views = tuple(
                    table[decode_twins(indices, num_entities=self.num_entities, side=view.side)]
                    for table, view in zip(tables, self.entity_representations, strict=True)
                )
            return [views[i] for i in positions]

        hr = look_up(h, self.interaction.head_indices)
        rr = [representation(indices=r) for representation in self.relation_representations]
        tr = look_up(t, self.interaction.tail_indices)
        # as ERModel: a single representation is passed as itself
        return tuple(x[0] if len(x) == 1 else x for x in (hr, rr, tr))

    def _check_entity_ids(self, ids: LongTensor | None) -> None:
        """In evaluation mode, refuse entity ids outside ``0..num_entities-1`` (queries and candidates).

        Ids from ``num_entities`` on are twins ids, which only the negatives that :meth:`score_hrt` scores carry:
        elsewhere they would be decoded into the score of other entities (and negative ids would wrap around),
        silently.
        """
        if self.training or ids is None or not ids.numel():
            return
        bad = (ids < 0) | (ids >= self.num_entities)
        if bool(bad.any()):
            raise IndexError(
                f"entity ids must be from 0 to {self.num_entities - 1}, got {ids[bad][0].item()} (ids from "
                f"{self.num_entities} on are twins ids, which only score_hrt takes)."
            )

    def _check_twins_range(self, entities: LongTensor) -> None:
        """Refuse entity ids outside the plain and twins ids, ``0..N(N+1)-1``.

        Beyond, an id would fail inside torch; a negative one would be decoded into other entities, silently.
        """
        if not entities.numel():
            return
        low, high, end = entities.min().item(), entities.max().item(), self.num_entities * (self.num_entities + 1)
        if low < 0 or high >= end:
            raise IndexError(
                f"entity ids must be from 0 to {end - 1} (twins ids included), got ids from {low} to {high}."
            )

    def _entity_tables(self, piece_table: bool = True) -> tuple[FloatTensor, FloatTensor, FloatTensor | None]:
        r"""Return $\mathbf{e}_s$ and $\mathbf{e}_m$ of all entities and their piece table, once per parameter state.

        PyKEEN's sLCWA loop scores the positives and the negatives of a batch in two calls; both use every entity's
        projection, so the tables are computed once and reused until the parameters change or a backward pass has
        consumed their graph (sub-batching calls backward before the optimizer step). A caller that builds its own
        piece table from $\mathbf{e}_s$ and $\mathbf{e}_m$ (the accelerators' path, evaluation) passes
        ``piece_table=False``, gets ``None`` for it unless it was cached, and, with gradients, registers
        :meth:`_forget_tables` on what it builds.
        """
        key = (torch.is_grad_enabled(), tuple((p.data_ptr(), p._version) for p in self.parameters()))
        if self._tables is not None and self._tables[0] == key:
            structural, multimodal, table = self._tables[1]
            if table is not None or not piece_table:
                return self._tables[1]
        else:
            structural_view, _, multimodal_view = self.entity_representations
            structural, multimodal, table = structural_view(indices=None), multimodal_view(indices=None), None
        if piece_table:
            table = self.interaction.piece_table(structural, multimodal)
            if table.requires_grad:
                table.register_hook(self._forget_tables)
        self._tables = (key, (structural, multimodal, table))
        return self._tables[1]

    def _forget_tables(self, grad: FloatTensor) -> None:
        """Drop the cached tables once a backward pass went through them or a table built from them."""
        self._tables = None

    def post_parameter_update(self) -> None:  # noqa: D102
        super().post_parameter_update()
        self._tables = None

    def __getstate__(self) -> dict[str, Any]:
        # the cached tables may hold an autograd graph, which cannot (and need not) be pickled
        return {**super().__getstate__(), "_tables": None}

    @property
    def score_terms(self) -> tuple[str, ...]:
        """Return the score terms summed by the interaction."""
        return self.interaction.score_terms


def _select(scores: FloatTensor, candidates: LongTensor | None) -> FloatTensor:
    """Pick the candidates' columns of the scores of all entities: all, the same ones (1-d) or per row (2-d)."""
    if candidates is None:
        return scores
    if candidates.ndimension() == 1:
        return scores[:, candidates]
    return scores.gather(1, candidates)


class _ScaledLinear(nn.Linear):
    r"""A linear layer $x \mapsto s V x$ whose parameters $V$ are stored divided by $s$ (a learning-rate scale)."""

    def __init__(self, in_features: int, out_features: int, bias: bool, scale: float) -> None:
        # the parameters are stored divided by the scale: its reciprocal must be a finite float32
        check_float32("projection_lr_scale", scale, minimum=FLOAT32_TINY)
        self.scale = scale
        super().__init__(in_features, out_features, bias=bias)

    def reset_parameters(self) -> None:  # noqa: D102
        super().reset_parameters()
        with torch.no_grad():
            # the effective weight s * V starts from nn.Linear's usual initialisation
            for parameter in self.parameters():
                parameter.div_(self.scale)

    def forward(self, x: FloatTensor) -> FloatTensor:  # noqa: D102
        bias = None if self.bias is None else self.bias * self.scale
        return nn.functional.linear(x, self.weight * self.scale, bias)

    def extra_repr(self) -> str:  # noqa: D102
        return f"{super().extra_repr()}, scale={self.scale}"


class _FrozenFeatures(PretrainedInitializer):
    """A pretrained initializer that hands out copies.

    ``ERModel.reset_parameters_`` first re-initialises the inner ``torch.nn.Embedding`` in place; if the weight shared
    memory with the initializer's tensor, every reset after the first would overwrite the features with noise.
    """

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return super().__call__(x).clone()


def _preset_term_weights(settings: Preset, score_terms: str | Iterable[str] | None) -> dict[str, float] | str | None:
    """Return the preset's weights of the scored terms (a preset weighs all five terms; a model may score fewer)."""
    if settings.term_weights is None or settings.term_weights == MEAN_TERM_WEIGHTS:
        # the mean of whichever terms are scored
        return settings.term_weights
    weights = dict(zip(SCORE_TERMS, normalize_term_weights(settings.term_weights, SCORE_TERMS)))
    return {term: weights[term] for term in normalize_score_terms(score_terms)}


def _is_preset_loss(loss: Loss | str | type[Loss]) -> bool:
    """Return whether ``loss`` names, is or builds the stand-in :class:`~pykeen_vbkgc.preset_loss.PresetLoss`."""
    if isinstance(loss, Loss):
        return isinstance(loss, PresetLoss)
    return loss_resolver.lookup(loss) is PresetLoss


def _pipeline_default_loss_kwargs(loss: Any) -> dict[str, Any] | None:
    """Return the pipeline's ``loss_kwargs`` if ``loss`` is what :func:`pykeen.pipeline.pipeline` built for no loss.

    The pipeline resolves ``loss=None`` to PyKEEN's ``MarginRankingLoss`` before it builds the model, so the model
    cannot tell it from an explicit request by its value; the pipeline's own argument, still ``None`` in the calling
    frame of ``pykeen.pipeline.api._build_model_helper``, can.

    :param loss: the loss handed to the model
    :return: the ``loss_kwargs`` given to the pipeline (empty if none), or None if the loss was chosen explicitly
    """
    if type(loss) is not MarginRankingLoss:
        return None
    pipeline_locals = _pipeline_frame_locals()
    if pipeline_locals.get("loss", "given") is not None:
        return None
    return dict(pipeline_locals.get("loss_kwargs") or {})


def _pipeline_frame_locals() -> Mapping[str, Any]:
    frame = inspect.currentframe()
    try:
        while frame is not None:
            if (
                frame.f_code.co_name == "_build_model_helper"
                and frame.f_globals.get("__name__") == "pykeen.pipeline.api"
            ):
                return frame.f_locals
            frame = frame.f_back
        return {}
    finally:
        del frame


def _resolve_features(
    features: FeaturesHint, feature_dim: int | None, triples_factory: CoreTriplesFactory, min_coverage: float
) -> FloatTensor:
    """Turn any supported features hint into a complete ``(num_entities, d_m)`` feature matrix."""
    if not 0 <= min_coverage <= 1:
        raise ValueError(f"min_feature_coverage must be between 0 and 1, got {min_coverage}.")
    num_entities = triples_factory.num_entities
    if features is None:
        # the multimodal datasets attach their features file to the training triples (see pykeen_vbkgc.datasets)
        features = triples_factory.metadata.get(FEATURES_METADATA_KEY)
        if features is None:
            logger.warning(
                "VBKGC got no features and the training triples carry none: every entity gets a random feature "
                "(the ablation 'w/o VisualBERT'). Pass model_kwargs=dict(features=...) with a features file, or "
                "features='random' to choose random features on purpose."
            )
        else:
            logger.info(f"Using the dataset's features file {features}.")
    elif isinstance(features, str) and features == "random":
        logger.warning("VBKGC uses random features, as requested (the ablation 'w/o VisualBERT').")
        features = None
    source = "features"
    if isinstance(features, str | os.PathLike):
        source = f"the features file {features}"
        features = load_features(features)
    if isinstance(features, EntityFeatures):
        entity_to_id = getattr(triples_factory, "entity_to_id", None)
        if entity_to_id is None:
            raise FeaturesFileError(
                "Labelled features need a triples factory with entity labels (a TriplesFactory, not a "
                "CoreTriplesFactory); pass a tensor aligned with the entity ids instead."
            )
        aligned = features.align(entity_to_id)
        if aligned.num_covered == 0:
            raise FeaturesFileError(
                f"None of the labels in {source} matches an entity of the triples factory; check that the features "
                f"were encoded for this dataset (first labels: {list(features.labels[:3])})."
            )
        _check_coverage(aligned.num_covered, num_entities, min_coverage=min_coverage, source=source)
        logger.info(
            f"{source} covers {aligned.num_covered:,} of {num_entities:,} entities; "
            f"{aligned.num_ignored:,} labels in the features are not in the graph and are ignored."
        )
        matrix, mask = aligned.vectors, aligned.mask
    elif features is None:
        matrix = torch.empty(num_entities, feature_dim or DEFAULT_FEATURE_DIM)
        mask = torch.zeros(num_entities, dtype=torch.bool)
    elif isinstance(features, torch.Tensor):
        validate_matrix(features, name="features")
        if features.shape[0] != num_entities:
            raise FeaturesFileError(
                f"features has {features.shape[0]:,} rows but the triples factory has {num_entities:,} entities; "
                "a feature tensor must be aligned with triples_factory.entity_to_id."
            )
        matrix = features.detach().to(dtype=torch.get_default_dtype(), device="cpu").clone()
        mask = torch.ones(num_entities, dtype=torch.bool)
    else:
        raise TypeError(
            "features must be a tensor, a path to a features file, EntityFeatures, 'random' or None, "
            f"not {type(features)}."
        )
    if feature_dim is not None and feature_dim != matrix.shape[1]:
        raise FeaturesFileError(f"feature_dim={feature_dim} does not match the features' dimension {matrix.shape[1]}.")
    missing = ~mask
    if missing.any():
        matrix[missing] = xavier_uniform_(torch.empty(int(missing.sum()), matrix.shape[1]))
    return matrix


def _check_coverage(num_covered: int, num_entities: int, min_coverage: float, source: str) -> None:
    """Refuse features that cover too few entities, and warn about a low coverage."""
    coverage = num_covered / num_entities
    message = (
        f"{source} covers only {num_covered:,} of {num_entities:,} entities ({coverage:.1%}); the other "
        f"{num_entities - num_covered:,} get random features"
    )
    if coverage < min_coverage:
        raise FeaturesFileError(
            f"{message}, more than the accepted {1 - min_coverage:.0%}. Check that the features were encoded for "
            "this graph, or lower min_feature_coverage (e.g. to 0) to accept them anyway."
        )
    if coverage < WARN_FEATURE_COVERAGE:
        logger.warning(f"{message}.")
