"""Set aggregators: one descriptor for a template (a set of face features), the coreset model and baselines.

Every aggregator takes a padded batch of sets and returns unit descriptors and their norms:

    forward(features (B, N, D) unit, norms (B, N), mask (B, N) bool, media (B, N) int64 | None)
        -> descriptors (B, D) unit, descriptor norms (B,)

A padded slot (mask False) never contributes: it is never picked, never attended and never averaged, so
padding a set further changes nothing. Every set must hold at least one face.

The baselines here (mean, norm-weighted, media-then-template) are the compared methods of Study S: they run
through the same padded batches, devices and precision as the trained aggregators, so that a comparison differs
in the rule alone. ``dmlfaces.eval.templates`` keeps a second, float64 numpy form of the insightface recipe on
purpose: it is the evaluator's own rule (every N/D/F mode of ``ijb_11.py``, TARs equal to insightface's float for
float), which a float32 batch on a GPU cannot promise; the two agree to float32 rounding (tests/models/test_model_templates.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import nn

from dmlfaces.models.choices import ATTENTION_LAYERS, FIRST_PICKS, NORM_ENCODINGS, PICK_LOGITS
from dmlfaces.models.coreset import farthest_point_picks, quality_distance

_TINY = 1e-12
AGGREGATORS = ("coreset", "mean", "norm_weighted", "media_template", "attention_pooling")


def _unit(aggregate: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, D) -> unit rows (zero rows stay zero) and their norms (B,)."""
    norm = aggregate.norm(dim=-1)
    return aggregate / norm.clamp(min=_TINY)[:, None], norm


def _check_sets(mask: torch.Tensor) -> None:
    empty = (~mask).all(dim=1)
    if empty.any():
        raise ValueError(
            f"sets {empty.nonzero().flatten().tolist()[:10]} of the batch have no faces; every template needs at least one crop"
        )


class MeanAggregator(nn.Module):
    """Average of the unit features (the simplest template descriptor)."""

    def forward(self, features, norms, mask, media=None):
        _check_sets(mask)
        return _unit((features * mask[..., None]).sum(1))


class NormWeightedMean(nn.Module):
    """Average of ``q_i f_i``: each face weighted by its feature norm (CAFace's "average" baseline)."""

    def forward(self, features, norms, mask, media=None):
        _check_sets(mask)
        return _unit((features * (norms * mask)[..., None]).sum(1))


class MediaThenTemplate(nn.Module):
    """insightface's IJB recipe: mean of the unit features of each media (video or still), summed over media.

    A burst of frames of one video counts once, however long it is. ``media`` ids are compared within a
    set only; without them every face is its own media (the plain sum).
    """

    def forward(self, features, norms, mask, media=None):
        _check_sets(mask)
        if media is None:
            return _unit((features * mask[..., None]).sum(1))
        same = (media[:, :, None] == media[:, None, :]) & mask[:, None, :] & mask[:, :, None]
        per_media_count = same.sum(2).clamp(min=1)  # (B, N): faces in the media of each face
        weights = mask / per_media_count
        return _unit((features * weights[..., None]).sum(1))


def _masked_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits.masked_fill(~mask, -float("inf")), dim=-1)


class AttentionPooling(nn.Module):
    """Neural Aggregation Network (Yang et al., CVPR 2017): two cascaded attention blocks over the set.

    The first block scores faces with a learned kernel, the second with a kernel adapted to the
    first block's aggregate (``tanh(W r0 + b)``).
    """

    def __init__(self, dim: int = 512) -> None:
        super().__init__()
        self.kernel = nn.Parameter(torch.zeros(dim))
        self.adapt = nn.Linear(dim, dim)

    def forward(self, features, norms, mask, media=None):
        _check_sets(mask)
        first = _masked_softmax(features @ self.kernel, mask)
        r0 = (first[..., None] * features).sum(1)
        second = _masked_softmax((features * torch.tanh(self.adapt(r0))[:, None, :]).sum(-1), mask)
        return _unit((second[..., None] * features).sum(1))


def norm_encoding(values: torch.Tensor, dim: int, layout: str = "sin_cos_halves") -> torch.Tensor:
    """(...,) scalars -> (..., dim) sinusoidal encoding (Vaswani et al.), the scalar playing the position.

    Channel pair j has frequency ``10000 ** (-2 j / dim)``. ``"sin_cos_halves"`` (ours): angle ``v * freq``,
    the sines in the first half of the channels and the cosines in the second. ``"interleaved_2pi"`` (the
    official ``get_proposal_pos_embed``): angle ``2 pi v * freq``, sine and cosine of pair j in channels 2j and
    2j + 1. The encoding is added to the features channel by channel, so the two layouts are not equivalent.
    """
    if layout not in NORM_ENCODINGS:
        raise ValueError(f"norm encoding {layout!r}; choose one of {NORM_ENCODINGS}")
    half = dim // 2
    frequencies = torch.exp(torch.arange(half, device=values.device, dtype=values.dtype) * (-2 * math.log(10000.0) / dim))
    if layout == "interleaved_2pi":
        angles = (values * (2 * math.pi))[..., None] * frequencies
        encoding = torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(-2)
        return torch.cat([encoding, torch.zeros_like(values)[..., None]], dim=-1) if dim % 2 else encoding
    angles = values[..., None] * frequencies
    parts = [angles.sin(), angles.cos()] + ([torch.zeros_like(values)[..., None]] if dim % 2 else [])
    return torch.cat(parts, dim=-1)


class Attention(nn.Module):
    """Multi-head attention with a key mask, computable in one pass or accumulated over key chunks.

    The few queries are mapped into the input space instead of projecting every key and value:
    ``q . (W_k k + b_k) = (W_k^T q) . k + q . b_k`` and ``sum_i a_i (W_v v_i + b_v) = W_v (sum_i a_i v_i) +
    b_v sum_i a_i``. The result is the usual attention, at O(H Lq D) per key instead of O(D^2): what makes
    the cross-attention over a whole template cheap.
    """

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention dim {dim} is not divisible by heads {heads}")
        self.heads, self.head_dim = heads, dim // heads
        self.query, self.key, self.value, self.out = (nn.Linear(dim, dim) for _ in range(4))
        self.dropout = nn.Dropout(dropout)

    @torch.no_grad()
    def reset_like_multihead_attention(self) -> None:
        """Initialise as ``nn.MultiheadAttention`` does: one Xavier-uniform draw over the stacked (3 D, D) query,
        key and value weights, zero biases, the output weight as ``nn.Linear`` (kept) with a zero bias."""
        stacked = torch.empty(3 * self.query.in_features, self.query.in_features)
        nn.init.xavier_uniform_(stacked)
        for linear, weight in zip((self.query, self.key, self.value), stacked.chunk(3)):
            linear.weight.copy_(weight)
            linear.bias.zero_()
        self.out.bias.zero_()

    def _queries_in_input_space(self, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, Lq, D) -> scaled queries through the key map (B, H * Lq, D) and their bias terms (B, H * Lq, 1)."""
        batch, length, dim = query.shape
        q = self.query(query).view(batch, length, self.heads, self.head_dim).transpose(1, 2) / math.sqrt(self.head_dim)
        mapped = torch.einsum("bhld,hde->bhle", q, self.key.weight.view(self.heads, self.head_dim, dim))
        bias = torch.einsum("bhld,hd->bhl", q, self.key.bias.view(self.heads, self.head_dim))
        return mapped.flatten(1, 2), bias.flatten(1, 2)[..., None]

    def _project_mixed(self, mixed: torch.Tensor, weight_sums: torch.Tensor, length: int) -> torch.Tensor:
        """(B, H * Lq, D) attention-weighted raw values and (B, H * Lq, 1) weight sums -> (B, Lq, D) output."""
        batch, _, dim = mixed.shape
        mixed = mixed.view(batch, self.heads, length, dim)
        heads = torch.einsum("bhle,hde->bhld", mixed, self.value.weight.view(self.heads, self.head_dim, dim))
        heads = heads + weight_sums.view(batch, self.heads, length, 1) * self.value.bias.view(1, self.heads, 1, self.head_dim)
        return self.out(heads.transpose(1, 2).flatten(-2))

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        """(B, Lq, D) queries over (B, Lk, D) keys/values; key_mask (B, Lk) True for real keys."""
        length = query.shape[1]
        if key.shape[1] <= length:  # as few keys as queries (self-attention): projecting them is cheaper
            q = self._split(self.query(query)) / math.sqrt(self.head_dim)
            scores = q @ self._split(self.key(key)).transpose(-1, -2)  # (B, H, Lq, Lk)
            weights = self.dropout(_masked_softmax(scores, key_mask[:, None, None, :]))
            return self.out((weights @ self._split(self.value(value))).transpose(1, 2).flatten(-2))
        mapped, bias = self._queries_in_input_space(query)
        scores = mapped @ key.transpose(1, 2) + bias  # (B, H * Lq, Lk)
        weights = self.dropout(_masked_softmax(scores, key_mask[:, None, :]))
        return self._project_mixed(weights @ value, weights.sum(-1, keepdim=True), length)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, D) -> (B, H, L, D/H)."""
        return x.unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)

    def forward_chunked(self, query: torch.Tensor, chunks: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """The same as ``forward`` (evaluation, no padding) with keys/values arriving in (B, n, D) chunks.

        The softmax is accumulated online (running maximum, sum and weighted values), so memory is one chunk.
        """
        mapped, bias = self._queries_in_input_space(query)
        top = total = mixed = None
        for key, value in chunks:
            scores = mapped @ key.transpose(1, 2) + bias  # (B, H * Lq, n)
            chunk_top = scores.amax(-1, keepdim=True)
            new_top = chunk_top if top is None else torch.maximum(top, chunk_top)
            exp = torch.exp(scores - new_top)
            if top is None:
                total, mixed = exp.sum(-1, keepdim=True), exp @ value
            else:
                rescale = torch.exp(top - new_top)
                total = total * rescale + exp.sum(-1, keepdim=True)
                mixed = mixed * rescale + exp @ value
            top = new_top
        if top is None:
            raise ValueError("the set has no faces")
        return self._project_mixed(mixed / total, torch.ones_like(total), query.shape[1])


class CoresetAggregator(nn.Module):
    """FaceCoresetNet's set aggregator: K farthest-point picks refined by self- and cross-attention.

    As published (Shapira and Keller, AAAI 2024): on ``x_i = q_i f_i``, pick the core template CT (K faces,
    :func:`~dmlfaces.models.coreset.farthest_point_picks`); ``q = LN1(CT + pe|CT| + SelfAttn)``, keys
    ``x + pe(q_i)``; ``q = LN2(CT + CrossAttn(q, keys, x))``; aggregate = mean over the picks of ``CT + q``;
    the output is the unit aggregate and its norm (the set's quality). Linear in the set size N.

    Args:
        dim: feature size D; heads, dropout: of both attention layers; k: picks.
        gamma: initial quality exponent; learn_gamma False (or k = 1) fixes it (gamma = 0 is pure diversity).
        tau: Gumbel-Softmax temperature in training.
        pick_logits, first_pick: the pick rules (``choices.PICK_LOGITS``, ``choices.FIRST_PICKS``).
        norm_encoding: ``NORM_ENCODINGS``. attention: ``ATTENTION_LAYERS``; ``"official"`` initialises both
            layers as ``nn.MultiheadAttention`` and adds dropout on both residual branches, as the official
            ``TransformerDecoderLayerOrig``.
    """

    STREAM_ABOVE = 8192  # faces; a single set larger than this is evaluated in chunks of this size

    def __init__(
        self,
        dim: int = 512,
        heads: int = 8,
        k: int = 3,
        dropout: float = 0.1,
        gamma: float = 0.01,
        learn_gamma: bool = True,
        tau: float = 1.0,
        pick_logits: str = "log_distance",
        first_pick: str = "argmax",
        norm_encoding: str = "sin_cos_halves",
        attention: str = "ours",
    ) -> None:
        super().__init__()
        if k < 1:
            raise ValueError(f"coreset k = {k}; it must be at least 1")
        for name, value, choices in (
            ("pick_logits", pick_logits, PICK_LOGITS),
            ("first_pick", first_pick, FIRST_PICKS),
            ("norm_encoding", norm_encoding, NORM_ENCODINGS),
            ("attention", attention, ATTENTION_LAYERS),
        ):
            if value not in choices:
                raise ValueError(f"coreset {name} = {value!r}; choose one of {choices}")
        self.dim, self.k, self.tau = dim, k, tau
        self.pick_logits, self.first_pick, self.norm_encoding = pick_logits, first_pick, norm_encoding
        if learn_gamma and k > 1:  # with one pick (the best face) gamma plays no part
            self.gamma = nn.Parameter(torch.tensor(float(gamma)))
        else:
            self.register_buffer("gamma", torch.tensor(float(gamma)))
        self.encode_norm = nn.LayerNorm(dim)
        self.self_attention = Attention(dim, heads, dropout)
        self.cross_attention = Attention(dim, heads, dropout)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        if attention == "official":
            self.self_attention.reset_like_multihead_attention()
            self.cross_attention.reset_like_multihead_attention()
        self.residual_dropout = nn.Dropout(dropout) if attention == "official" else nn.Identity()

    def pe(self, values: torch.Tensor) -> torch.Tensor:
        """(...,) norms -> (..., D) LayerNorm of their sinusoidal encoding."""
        return self.encode_norm(norm_encoding(values, self.dim, self.norm_encoding))

    def _queries(self, core: torch.Tensor, pick_mask: torch.Tensor) -> torch.Tensor:
        """(B, K, D) core template -> (B, K, D) queries after self-attention among the picks."""
        q = core + self.pe(core.norm(dim=-1))
        return self.norm1(q + self.residual_dropout(self.self_attention(q, q, q, pick_mask)))

    def _finish(self, core: torch.Tensor, attended: torch.Tensor, pick_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        refined = self.norm2(core + self.residual_dropout(attended))
        weights = pick_mask.to(core.dtype)[..., None]
        return _unit(((core + refined) * weights).sum(1) / weights.sum(1))

    def forward(self, features, norms, mask, media=None):
        _check_sets(mask)
        if not self.training and features.shape[0] == 1 and features.shape[1] > self.STREAM_ABOVE:
            # One huge set (a long video): the chunked path gives the same descriptor with temporaries of one
            # chunk, which stay in cache instead of streaming N x D arrays through memory several times.
            kept = mask[0]
            face_features, face_norms = (features[0], norms[0]) if kept.all() else (features[0, kept], norms[0, kept])

            def chunks():
                for start in range(0, len(face_norms), self.STREAM_ABOVE):
                    yield face_features[start : start + self.STREAM_ABOVE], face_norms[start : start + self.STREAM_ABOVE]

            descriptor, norm = self.forward_stream(chunks)
            return descriptor[None], norm[None]
        x = features * norms[..., None]
        picks, pick_mask = farthest_point_picks(
            features, norms, mask, self.k, self.gamma, self.training, self.tau, self.pick_logits, self.first_pick
        )
        core = picks @ x
        queries = self._queries(core, pick_mask)
        attended = self.cross_attention(queries, x + self.pe(norms), x, mask)
        return self._finish(core, attended, pick_mask)

    @torch.no_grad()
    def forward_stream(
        self, chunks: Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Evaluation descriptor of ONE set too large for memory, read as chunks; equals ``forward``.

        Args:
            chunks: called once per pass (K + 1 passes); each call yields (n, D) unit features and (n,) norms.
        Returns:
            (D,) unit descriptor and its () norm.
        """
        if self.training:
            raise RuntimeError("forward_stream is for evaluation; call .eval() first")
        # Pass 1: the best face (the first of equal maxima, as argmax over the whole set would choose).
        best, count, centres, centre_norms = -float("inf"), 0, [], []
        for features, norms in chunks():
            count += len(norms)
            i = int(norms.argmax())
            if norms[i] > best:
                best, centre, centre_norm = float(norms[i]), features[i].clone(), norms[i].clone()
        if count == 0:
            raise ValueError("the set has no faces")
        centres.append(centre), centre_norms.append(centre_norm)
        # Passes 2..K: the face farthest from the picked ones, with the same distances as the in-memory path.
        for _ in range(min(self.k, count) - 1):
            best = -float("inf")
            for features, norms in chunks():
                nearest = torch.full_like(norms, float("inf"))
                for c in centres:
                    nearest = torch.minimum(nearest, quality_distance(features[None], norms[None], c[None], self.gamma)[0])
                logits = torch.log(nearest + _TINY)
                i = int(logits.argmax())
                if logits[i] > best:
                    best, centre, centre_norm = float(logits[i]), features[i].clone(), norms[i].clone()
            centres.append(centre), centre_norms.append(centre_norm)
        core = (torch.stack(centres) * torch.stack(centre_norms)[:, None])[None]  # (1, K_eff, D)
        pick_mask = torch.ones(core.shape[:2], dtype=torch.bool, device=core.device)
        queries = self._queries(core, pick_mask)

        def keys_values():
            for features, norms in chunks():
                x = (features * norms[:, None])[None]
                yield x + self.pe(norms[None]), x

        attended = self.cross_attention.forward_chunked(queries, keys_values())
        descriptor, norm = self._finish(core, attended, pick_mask)
        return descriptor[0], norm[0]


def build_aggregator(name: str, dim: int = 512, **coreset: object) -> nn.Module:
    """An aggregator by name (``AGGREGATORS``); ``coreset`` keywords go to :class:`CoresetAggregator`."""
    if name == "coreset":
        return CoresetAggregator(dim, **coreset)
    simple = {"mean": MeanAggregator, "norm_weighted": NormWeightedMean, "media_template": MediaThenTemplate}
    if name in simple:
        return simple[name]()
    if name == "attention_pooling":
        return AttentionPooling(dim)
    raise ValueError(f"unknown aggregator {name!r}; choose one of {list(AGGREGATORS)}")
