r"""The neighbours' vote: what the entities described most like a query's entity are linked to in training.

The frozen features of VBKGC place entities with similar descriptions close together, and on FB15k-237 that alone
predicts links: the tails that the entities most similar to $h$ have under $r$ rank the test answers of $(h, r, ?)$
about as well as a converged TransE (docs/results.md, "What the text features know"). The learned score terms do not
pick this up (random features score as well as text features there), so VBKGC can add it when it ranks candidates
(:class:`~pykeen_vbkgc.VBKGC`'s ``neighbour_weight``).

For a query $(h, r, ?)$ the vote for a candidate tail $e$ is

.. math::

    v(h, r, e) = \sum_{h' \in N_K(h)} \max(0, \cos(\mathbf{h}_h, \mathbf{h}_{h'})) \, [(h', r, e) \in \mathcal{T}]
        + 10^{-3} \, \frac{c_r(e)}{\max_{e'} c_r(e')}

where $N_K(h)$ are the $K$ entities other than $h$ whose features $\mathbf{h}$ have the largest cosine with $h$'s,
$\mathcal{T}$ the training triples and $c_r(e)$ how often $e$ is a tail of $r$ in $\mathcal{T}$: a tie-breaker
below any step of the similarities that matters. Queries $(?, r, t)$ vote for heads the same way, with the roles of
head and tail swapped.

With the *mirror gate*, the vote is left out (all zero) for the queries that a mirrored training triple answers. The
mirror of a relation $r$ is the relation $r'$ (possibly $r$ itself) under which most of $r$'s training triples
$(h, r, t)$ also appear reversed, $(t, r', h) \in \mathcal{T}$, if that is more than half of them (on WN9 hypernym and
hyponym mirror each other); the query $(h, r, ?)$ is answered by a mirror if some $(c, r', h) \in \mathcal{T}$ has
$(h, r, c) \notin \mathcal{T}$, i.e. the structure can read a new answer off a training triple (queries $(?, r, t)$:
some $(t, r', c) \in \mathcal{T}$ with $(c, r, t) \notin \mathcal{T}$). On WN9 most test triples are such answers, which
the learned scores rank first and the vote can only push down, while the vote ranks the others' answers far better
than the learned scores (docs/results.md).
"""

from __future__ import annotations

import warnings
from typing import Literal

import torch
from pykeen.typing import BoolTensor, FloatTensor, LongTensor, MappedTriples
from torch import nn

from .validation import check_positive_int, ids_out_of_range

__all__ = [
    "NeighbourVote",
    "mirror_answered",
    "mirror_relations",
    "standardised",
]

#: the weight of the relation's frequency in the vote: it only breaks ties between equal votes
TIE_BREAKER = 1e-3

#: the share of a relation's training triples that must appear reversed under another relation to make it the mirror
MIRROR_SHARE = 0.5

VoteSide = Literal["head", "tail"]


def _triple_codes(h: LongTensor, r: LongTensor, t: LongTensor, num_entities: int, num_relations: int) -> LongTensor:
    """Return one integer per triple (the same for the same triple), to look triples up with :func:`torch.isin`."""
    return (h * num_relations + r) * num_entities + t


def mirror_relations(mapped_triples: MappedTriples, num_entities: int, num_relations: int) -> LongTensor:
    r"""Return each relation's mirror (see the module's description), -1 for a relation without one.

    :param mapped_triples: the training triples, shape ``(n, 3)``
    :param num_entities: the number of entities
    :param num_relations: the number of relations
    :return: shape ``(num_relations,)``: the relation $r'$ under which more than half of the training triples
        $(h, r, t)$ appear reversed as $(t, r', h)$, the most of them if several, else -1
    """
    h, r, t = mapped_triples.cpu().T
    # the training triples ordered by their (head, tail) pair; each triple's reversed pair is looked up among them
    pairs = h * num_entities + t
    order = pairs.argsort()
    sorted_pairs, sorted_relations = pairs[order], r[order]
    reversed_pairs = t * num_entities + h
    first = torch.searchsorted(sorted_pairs, reversed_pairs, side="left")
    matches = torch.searchsorted(sorted_pairs, reversed_pairs, side="right") - first
    # one row per (triple, triple on its reversed pair): the k-th match of triple i sits at first[i] + k
    triple = torch.arange(len(r)).repeat_interleave(matches)
    starts = matches.cumsum(0) - matches
    position = first.repeat_interleave(matches) + torch.arange(int(matches.sum())) - starts.repeat_interleave(matches)
    together = torch.bincount(r[triple] * num_relations + sorted_relations[position], minlength=num_relations**2)
    counts = torch.bincount(r, minlength=num_relations).clamp_min(1)
    share = together.view(num_relations, num_relations) / counts.unsqueeze(1)
    best_share, mirror = share.max(dim=1)
    return torch.where(best_share > MIRROR_SHARE, mirror, -1)


def mirror_answered(mapped_triples: MappedTriples, num_entities: int, num_relations: int) -> dict[str, BoolTensor]:
    r"""Return which queries a mirrored training triple answers (see the module's description).

    :param mapped_triples: the training triples, shape ``(n, 3)``
    :param num_entities: the number of entities
    :param num_relations: the number of relations
    :return: for ``"tail"``, ``answered[r, h]`` for the queries $(h, r, ?)$; for ``"head"``, ``answered[r, t]`` for
        $(?, r, t)$; each of shape ``(num_relations, num_entities)``
    """
    triples = mapped_triples.cpu()
    h, r, t = triples.T
    known = _triple_codes(h, r, t, num_entities, num_relations)
    answered = {side: torch.zeros(num_relations, num_entities, dtype=torch.bool) for side in ("tail", "head")}
    for relation, mirror in enumerate(mirror_relations(triples, num_entities, num_relations).tolist()):
        if mirror < 0:
            continue
        # each (x, mirror, y) answers (y, relation, ?) with x and (?, relation, x) with y, unless (y, relation, x) is
        # a training triple already
        x, _, y = triples[r == mirror].T
        new = ~torch.isin(_triple_codes(y, torch.full_like(y, relation), x, num_entities, num_relations), known)
        answered["tail"][relation, y[new]] = True
        answered["head"][relation, x[new]] = True
    return answered


class NeighbourVote(nn.Module):
    """The vote of the module's description for all candidates of a batch of queries; nothing in it is learned."""

    def __init__(
        self,
        mapped_triples: MappedTriples,
        num_entities: int,
        num_relations: int,
        num_neighbours: int,
        mirror_gate: bool = False,
    ) -> None:
        """Prepare the vote from the training triples.

        :param mapped_triples: the training triples, shape ``(n, 3)``
        :param num_entities: the number of entities
        :param num_relations: the number of relations
        :param num_neighbours: the number $K$ of neighbours that vote
        :param mirror_gate: whether the queries that a mirrored training triple answers get no vote (see the module's
            description)
        :raises ValueError: if a number is not a positive integer, ``num_neighbours`` is not below the number of
            entities, ``mirror_gate`` is not a bool, or the triples hold ids beyond the numbers of entities and
            relations
        """
        super().__init__()
        num_entities = check_positive_int("num_entities", num_entities)
        num_relations = check_positive_int("num_relations", num_relations)
        num_neighbours = check_positive_int("num_neighbours", num_neighbours)
        if not isinstance(mirror_gate, bool):
            raise ValueError(f"mirror_gate must be True or False, got {mirror_gate!r}.")
        out_of_range = ids_out_of_range(mapped_triples, num_entities, num_relations)
        if out_of_range is not None:
            kind, low, high, number = out_of_range
            argument = "num_entities" if kind == "entity" else "num_relations"
            raise ValueError(
                f"the triples hold {kind} ids from {low} to {high}, outside 0 to {number - 1} ({argument}={number})."
            )
        if num_neighbours >= num_entities:
            raise ValueError(
                f"num_neighbours must be below the number of entities ({num_entities:,}): an entity has at most "
                f"{num_entities - 1:,} neighbours, got {num_neighbours:,}."
            )
        self.num_neighbours = num_neighbours
        self.mirror_gate = mirror_gate
        self.num_entities = num_entities
        self.num_relations = num_relations
        h, r, t = mapped_triples.cpu().T
        for side, (anchors, targets) in dict(tail=(h, t), head=(t, h)).items():
            # the non-zeros of adjacency[r N + a, e] = 1, one per training triple in which a is the anchor and e the
            # target under r; dense index buffers, not a sparse tensor: buffers travel (to devices, through
            # DistributedDataParallel's broadcasts) as dense tensors
            adjacency = torch.sparse_coo_tensor(
                torch.stack([r * num_entities + anchors, targets]),
                torch.ones(len(targets)),
                (num_relations * num_entities, num_entities),
                check_invariants=True,
            ).coalesce()
            frequency = torch.zeros(num_relations, num_entities)
            frequency.index_put_((r, targets), torch.ones(len(targets)), accumulate=True)
            prior = TIE_BREAKER * frequency / frequency.amax(dim=1, keepdim=True).clamp_min(1)
            # non-persistent: rebuilt from the training triples, so that the model's state dict stays as it was
            self.register_buffer(f"{side}_index", adjacency.indices(), persistent=False)
            self.register_buffer(f"{side}_counts", adjacency.values(), persistent=False)
            self.register_buffer(f"{side}_prior", prior, persistent=False)
        if mirror_gate:
            for side, answered in mirror_answered(mapped_triples, num_entities, num_relations).items():
                self.register_buffer(f"{side}_answered", answered, persistent=False)

    def forward(self, features: FloatTensor, anchors: LongTensor, relations: LongTensor, side: VoteSide) -> FloatTensor:
        r"""Return the votes for every candidate.

        :param features: the entities' features $\mathbf{h}$, shape ``(num_entities, d)``
        :param anchors: the known entity of each query ($h$ for ``side="tail"``, $t$ for ``"head"``), shape ``(b,)``
        :param relations: the relation of each query, shape ``(b,)``
        :param side: the side that is predicted
        :return: shape ``(b, num_entities)``
        """
        if side not in ("head", "tail"):
            raise ValueError(f"Invalid side: {side!r}. Use 'head' or 'tail'.")
        if features.ndim != 2 or features.shape[0] != self.num_entities:
            raise ValueError(
                f"features must have one row per entity, shape ({self.num_entities}, d); got {tuple(features.shape)}."
            )
        self._check_ids(anchors, relations)
        size = (self.num_relations * self.num_entities, self.num_entities)
        index, counts = getattr(self, f"{side}_index"), getattr(self, f"{side}_counts")
        adjacency = torch.sparse_coo_tensor(index, counts, size, is_coalesced=True, check_invariants=False)
        prior = getattr(self, f"{side}_prior")
        # normalised in float64, then in the dtype of the counts they weigh (float32, unless the model was converted)
        unit = nn.functional.normalize(features.double(), dim=1).to(counts.dtype)
        similarity = unit[anchors] @ unit.T
        # the anchor is not its own neighbour
        similarity[torch.arange(len(anchors), device=anchors.device), anchors] = float("-inf")
        weights, ids = similarity.topk(self.num_neighbours, dim=1)
        # sum_k w_k adjacency[r N + n_k, :] as one product: a sparse (queries, relations x entities) selection of rows
        rows = (relations.unsqueeze(1) * self.num_entities + ids).reshape(-1)
        queries = torch.arange(len(anchors), device=anchors.device).repeat_interleave(self.num_neighbours)
        selection = torch.sparse_coo_tensor(
            torch.stack([queries, rows]),
            weights.clamp_min(0).reshape(-1),
            (len(anchors), adjacency.shape[0]),
            check_invariants=False,  # in range by construction
        )
        with warnings.catch_warnings():
            # the product goes through a sparse CSR tensor, which torch calls a beta feature once per process
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
            votes = torch.sparse.mm(selection, adjacency)
        votes = votes.to_dense() + prior[relations]
        if self.mirror_gate:
            votes = votes.masked_fill(getattr(self, f"{side}_answered")[relations, anchors].unsqueeze(1), 0.0)
        return votes

    def _check_ids(self, anchors: LongTensor, relations: LongTensor) -> None:
        """Refuse ids out of range (one host sync): the sparse product does not check its indices."""
        bad_anchors = (anchors < 0) | (anchors >= self.num_entities)
        bad_relations = (relations < 0) | (relations >= self.num_relations)
        if not bool(bad_anchors.any() | bad_relations.any()):
            return
        for name, bad, ids, number in (
            ("entity", bad_anchors, anchors, self.num_entities),
            ("relation", bad_relations, relations, self.num_relations),
        ):
            if bool(bad.any()):
                raise IndexError(f"{name} ids must be from 0 to {number - 1}, got {ids[bad][0].item()}.")


def standardised(scores: FloatTensor) -> FloatTensor:
    """Return each row of ``scores`` minus its mean, divided by its standard deviation (computed in double)."""
    rows = scores.double()
    rows = (rows - rows.mean(dim=-1, keepdim=True)) / rows.std(dim=-1, keepdim=True).clamp_min(1e-12)
    return rows.to(scores.dtype)
