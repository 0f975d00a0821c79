"""The Mitra 2D (cell-wise) attention transformer, weight-compatible with the official checkpoints.

Shape legend used in comments:

* ``b`` tables in a batch, ``s`` support rows, ``q`` query rows,
* ``f`` features, ``c = f + 1`` cells per row (the label token is cell 0),
* ``d`` model width, ``h`` attention heads, ``e = d / h`` head width.

Every row is a sequence of ``c`` tokens: the label token first, then one token per feature. Each
layer lets every cell attend along its column (query cells only see support cells) and then
along its row. There is no positional information, so the model is invariant to the order of
support rows and of feature columns, and a query row never depends on the other query rows.

The state-dict names and shapes match ``autogluon/mitra-classifier`` and
``autogluon/mitra-regressor`` (``Tab2D`` in AutoGluon 1.4+). Unlike the official SDPA path,
padding masks are honoured, so tables of different sizes can share a batch.

This module is pure PyTorch: no NumPy, scikit-learn or Hub code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .config import MitraConfig

# MitraConfig lives in mitra_sklearn.config and is re-exported here.
__all__ = ["MitraConfig", "MitraModel", "SupportCache", "QuantileStats", "N_QUANTILE_LEVELS", "optimizer_groups"]

# The official model normalises each feature by its rank among 999 support quantiles.
N_QUANTILE_LEVELS = 999

# CUDA kernels launch one block per (sequence, head); very large batches of short sequences
# exceed the 65,535 grid limit, so attention calls are split past this many sequences.
_MAX_SEQUENCES_PER_CUDA_CALL = 16_384
# Without gradients, the row-wise half of a layer (MLPs and attention across a row's cells) runs
# on slices of rows of at most this many cells, which bounds the memory of large tables.
_ROW_SLICE_CELLS = 1 << 16


@dataclass
class QuantileStats:
    """Per-table, per-feature normalisation statistics computed from the support rows.

    Attributes
    ----------
    boundaries : Tensor of shape (b, f, 999)
        Support quantiles at levels 1/1000 .. 999/1000.
    n_valid : Tensor of shape (b, 1, 1)
        Number of real (non-padded) support rows, as float.
    mean, std : Tensor of shape (b, f, 1)
        Mean and population standard deviation of the support ranks divided by ``n_valid``.
    """

    boundaries: torch.Tensor
    n_valid: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """Map raw values ``x`` of shape (b, n, f) to normalised ranks of the same shape."""
        x_by_feature = x.float().transpose(1, 2).contiguous()  # (b, f, n)
        # rank = number of boundaries strictly below the value (left-side search).
        ranks = torch.searchsorted(self.boundaries, x_by_feature).float()
        z = (ranks / self.n_valid - self.mean) / self.std
        # A constant support column carries no information: it maps to zero everywhere.
        z = torch.where(self.std == 0, torch.zeros_like(z), z)
        return z.transpose(1, 2)


def _linear_quantiles(ordered: torch.Tensor, levels: torch.Tensor, n_valid: torch.Tensor) -> torch.Tensor:
    """``torch.quantile`` (linear interpolation) of each row of sorted values, first ``n_valid`` only.

    Written out because ``torch.quantile`` refuses inputs of more than 2**24 elements (e.g. 8,192
    support rows x 2,048 features); the arithmetic is the same as torch's: rank = level x (n - 1),
    then ``lerp`` between the two neighbouring values.
    """
    b, f, _ = ordered.shape
    ranks = levels.view(1, 1, -1) * (n_valid - 1)  # (b, 1, L)
    below = ranks.floor().long()
    above = ranks.ceil().long()
    weights = (ranks - below).expand(b, f, -1)
    low = ordered.gather(-1, below.expand(b, f, -1))
    high = ordered.gather(-1, above.expand(b, f, -1))
    return torch.lerp(low, high, weights)


def fit_quantile_stats(
    x_support: torch.Tensor, padding_obs_support: torch.Tensor | None = None
) -> QuantileStats:
    """Compute the in-model normalisation statistics from the support rows.

    Parameters
    ----------
    x_support : Tensor of shape (b, s, f)
        Support features (finite values).
    padding_obs_support : bool Tensor of shape (b, s), optional
        True where a support row is padding. Padded rows are excluded from every statistic
        (the official code lets them into the quantiles as 9999s; with no padding both agree).
    """
    x = x_support.float().transpose(1, 2)  # (b, f, s)
    b, f, s = x.shape
    levels = torch.arange(1, N_QUANTILE_LEVELS + 1, dtype=torch.float32, device=x.device) / 1000
    if padding_obs_support is not None and bool(padding_obs_support.any()):
        pad = padding_obs_support[:, None, :].expand(b, f, s)
        n_valid = (~padding_obs_support).sum(dim=1).float().view(b, 1, 1)
        # Padded rows sort last (+inf) and the ranks below only reach the valid ones.
        ordered = torch.sort(x.masked_fill(pad, float("inf")), dim=-1).values
    else:
        pad = None
        n_valid = torch.full((b, 1, 1), float(s), device=x.device)
        ordered = torch.sort(x, dim=-1).values
    boundaries = _linear_quantiles(ordered, levels, n_valid)  # (b, f, 999)

    u = torch.searchsorted(boundaries, x.contiguous()).float() / n_valid  # (b, f, s)
    if pad is not None:
        u = u.masked_fill(pad, 0.0)
    mean = u.sum(dim=-1, keepdim=True) / n_valid
    centred = u - mean
    if pad is not None:
        centred = centred.masked_fill(pad, 0.0)
    std = ((centred**2).sum(dim=-1, keepdim=True) / n_valid).sqrt()
    return QuantileStats(boundaries=boundaries, n_valid=n_valid, mean=mean, std=std)


class _CellEmbedding(nn.Module):
    """Scalar cell value -> token (state-dict prefix ``x_embedding.``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.x_embedding = nn.Linear(1, dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z.unsqueeze(-1).to(_stream_dtype(self.x_embedding.weight))
        return self.x_embedding(z)  # (b, n, f) -> (b, n, f, d)


class _ClassLabelEmbedding(nn.Module):
    """Class (or bin) id -> token; query rows get the learned "unknown label" token."""

    def __init__(self, dim: int, n_classes: int) -> None:
        super().__init__()
        self.y_embedding = nn.Embedding(n_classes, dim)
        self.y_mask = nn.Embedding(1, dim)

    def forward(self, y_support: torch.Tensor, padding: torch.Tensor | None) -> torch.Tensor:
        ids = y_support.long()
        if padding is not None:
            ids = ids.masked_fill(padding, 0)  # padded labels are IGNORE_INDEX (-100) by convention
        tokens = self.y_embedding(ids)
        return _zero_padded_rows(tokens, padding)


class _ScalarLabelEmbedding(nn.Module):
    """Scaled regression target -> token; query rows get the learned "unknown label" token."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.y_embedding = nn.Linear(1, dim)
        self.y_mask = nn.Embedding(1, dim)

    def forward(self, y_support: torch.Tensor, padding: torch.Tensor | None) -> torch.Tensor:
        tokens = self.y_embedding(y_support.unsqueeze(-1).to(_stream_dtype(self.y_embedding.weight)))
        return _zero_padded_rows(tokens, padding)


def _stream_dtype(parameter: torch.Tensor) -> torch.dtype:
    """Residual-stream dtype: float32 (also under autocast or bf16 weights), float64 for a double model."""
    return torch.promote_types(torch.float32, parameter.dtype)


def _zero_padded_rows(tokens: torch.Tensor, padding: torch.Tensor | None) -> torch.Tensor:
    if padding is None:
        return tokens
    return tokens.masked_fill(padding.unsqueeze(-1), 0.0)


class MultiheadAttention(nn.Module):
    """Multi-head attention with separate biased q/k/v/o projections (official layout)."""

    def __init__(self, dim: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.o = nn.Linear(dim, dim)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        n, length, dim = x.shape  # (n, L, d) -> (n, h, L, e); channel = head * e + i
        return x.view(n, length, self.n_heads, dim // self.n_heads).transpose(1, 2)

    def keys_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Project ``x`` of shape (n, L, d) to keys and values of shape (n, h, L, e)."""
        return self._split_heads(self.k(x)), self._split_heads(self.v(x))

    def attend(
        self,
        x: torch.Tensor,
        keys: torch.Tensor | Sequence[torch.Tensor],
        values: torch.Tensor | Sequence[torch.Tensor],
        key_padding: torch.Tensor | None = None,
        group_rows: list[int] | None = None,
    ) -> torch.Tensor:
        """Attend from ``x`` (n, Lq, d) to precomputed keys/values; returns (n, Lq, d).

        ``key_padding`` is a bool tensor broadcastable to (n, 1, 1, Lk), True at padded keys.
        With ``group_rows`` (lengths of consecutive runs along Lq), ``keys`` and ``values`` are
        sequences and the i-th run of query positions attends to the i-th keys/values; the
        projections then run once for all runs.
        """
        queries = self._split_heads(self.q(x))
        mask = None if key_padding is None else ~key_padding
        if group_rows is None:
            keys, values, group_rows = [keys], [values], [queries.shape[2]]
        parts = [_sdpa(part, k, v, mask) for part, k, v in
                 zip(queries.split(group_rows, dim=2), keys, values, strict=True)]
        out = parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)
        n, heads, length, head_dim = out.shape
        return self.o(out.transpose(1, 2).reshape(n, length, heads * head_dim))

    def forward(self, x: torch.Tensor, key_padding: torch.Tensor | None = None) -> torch.Tensor:
        """Self-attention of ``x`` of shape (n, L, d)."""
        keys, values = self.keys_values(x)
        return self.attend(x, keys, values, key_padding)


def _sdpa(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    """``scaled_dot_product_attention`` split along the sequence batch where CUDA needs it."""
    if q.device.type == "cpu" and q.dtype == torch.bfloat16 and q.requires_grad:
        # Training under bf16 autocast on the CPU (without gradients nothing requires grad): the
        # flash kernel's bf16 backward is about 2x slower than its float32 one (torch 2.13), while
        # the projections gain about 3x from bf16; so attention alone runs in float32 there
        # (docs/pretraining.md, "CPU throughput").
        with torch.autocast("cpu", enabled=False):
            out = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask)
        return out.to(torch.bfloat16)
    if q.device.type == "cpu" and q.dtype == torch.bfloat16 and q.shape[-2] == 1 and k.shape[-2] >= 256:
        # The CPU kernel takes a path for a single bf16 query row that is 2-5x slower against
        # long keys than for two rows (torch 2.13); rows never mix, so attend twice and keep one.
        return F.scaled_dot_product_attention(q.expand(*q.shape[:-2], 2, q.shape[-1]), k, v,
                                              attn_mask=mask)[..., :1, :]
    n = q.shape[0]
    if not q.is_cuda or n <= _MAX_SEQUENCES_PER_CUDA_CALL:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    outputs = []
    for start in range(0, n, _MAX_SEQUENCES_PER_CUDA_CALL):
        stop = start + _MAX_SEQUENCES_PER_CUDA_CALL
        part_mask = None if mask is None else mask[start:stop] if mask.shape[0] > 1 else mask
        outputs.append(F.scaled_dot_product_attention(q[start:stop], k[start:stop], v[start:stop], attn_mask=part_mask))
    return torch.cat(outputs)


@dataclass
class _Masks:
    """Padding masks of one batch, reshaped once for the attention calls (True = padded)."""

    support_rows: torch.Tensor | None  # (b*c, 1, 1, s) keys of the column attention
    cells: torch.Tensor | None  # (b, c) keys of the row attention, label cell never padded

    def cells_for(self, n_rows: int) -> torch.Tensor | None:
        if self.cells is None:
            return None
        b, c = self.cells.shape
        return self.cells[:, None, :].expand(b, n_rows, c).reshape(b * n_rows, 1, 1, c)


class Layer(nn.Module):
    """One 2D block: attention along columns (across rows), MLP, attention along rows, MLP.

    All four sub-blocks are pre-LayerNorm residual blocks. The support stream attends to
    itself; the query stream attends to the support stream only (``keys``/``values`` below),
    which is what makes the support pass cacheable.
    """

    def __init__(self, dim: int, n_heads: int) -> None:
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(dim)
        self.attention1 = MultiheadAttention(dim, n_heads)
        self.layer_norm2 = nn.LayerNorm(dim)
        self.linear1 = nn.Linear(dim, dim * 4)
        self.linear2 = nn.Linear(dim * 4, dim)
        self.layer_norm3 = nn.LayerNorm(dim)
        self.attention2 = MultiheadAttention(dim, n_heads)
        self.layer_norm4 = nn.LayerNorm(dim)
        self.linear3 = nn.Linear(dim, dim * 4)
        self.linear4 = nn.Linear(dim * 4, dim)

    def support_step(
        self, support: torch.Tensor, masks: _Masks, *, last: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Update the support grid (b, s, c, d); also return this layer's column keys/values.

        With ``last`` (the last layer, whose support output is never read) only the keys and
        values are computed and ``support`` comes back unchanged.
        """
        b = support.shape[0]
        normed = _by_column(self.layer_norm1(support))  # (b*c, s, d)
        keys, values = self.attention1.keys_values(normed)
        if last:
            return support, keys, values
        attended = self.attention1.attend(normed, keys, values, masks.support_rows)
        support = support + _from_column(attended, b)
        support = self._after_column_attention(support, masks)
        return support, keys, values

    def query_step(
        self, query: torch.Tensor, keys: torch.Tensor | Sequence[torch.Tensor],
        values: torch.Tensor | Sequence[torch.Tensor], masks: _Masks,
        *, label_only: bool = False, group_rows: list[int] | None = None,
    ) -> torch.Tensor:
        """Update the query grid (b, q, c, d) given this layer's support keys/values.

        With ``label_only`` (the last layer, whose only output read is the label cell) the
        result is (b, q, 1, d): the other cells still serve as keys/values of the attention
        across the row, but their own updates are skipped. With ``group_rows``, consecutive
        runs of query rows read their own support sets (``keys``/``values`` are sequences).
        """
        b = query.shape[0]
        normed = _by_column(self.layer_norm1(query))  # (b*c, q, d)
        attended = self.attention1.attend(normed, keys, values, masks.support_rows, group_rows)
        query = query + _from_column(attended, b)
        return self._after_column_attention(query, masks, label_only)

    def _after_column_attention(self, x: torch.Tensor, masks: _Masks, label_only: bool = False) -> torch.Tensor:
        b, n, c, d = x.shape
        if torch.is_grad_enabled() or b * n * c <= _ROW_SLICE_CELLS:
            return self._row_wise(x, masks, label_only)
        # Every row is independent here, so slicing only changes the peak memory.
        rows = max(1, _ROW_SLICE_CELLS // (b * c))
        out = x.new_empty(b, n, 1 if label_only else c, d)
        for start in range(0, n, rows):
            out[:, start : start + rows] = self._row_wise(x[:, start : start + rows], masks, label_only)
        return out

    def _row_wise(self, x: torch.Tensor, masks: _Masks, label_only: bool = False) -> torch.Tensor:
        """MLP 1, attention across each row's cells, MLP 2 (no mixing between rows)."""
        b, n, c, d = x.shape
        x = x + self.linear2(F.gelu(self.linear1(self.layer_norm2(x))))
        rows = self.layer_norm3(x).reshape(b * n, c, d)  # each row's cells attend to each other
        if label_only:
            keys, values = self.attention2.keys_values(rows)
            attended = self.attention2.attend(rows[:, :1], keys, values, masks.cells_for(n))
            x = x[:, :, :1] + attended.view(b, n, 1, d)
        else:
            x = x + self.attention2(rows, masks.cells_for(n)).view(b, n, c, d)
        return x + self.linear4(F.gelu(self.linear3(self.layer_norm4(x))))


def _by_column(x: torch.Tensor) -> torch.Tensor:
    b, n, c, d = x.shape  # (b, n, c, d) -> (b*c, n, d)
    return x.permute(0, 2, 1, 3).reshape(b * c, n, d)


def _from_column(x: torch.Tensor, b: int) -> torch.Tensor:
    bc, n, d = x.shape  # (b*c, n, d) -> (b, n, c, d)
    return x.view(b, bc // b, n, d).permute(0, 2, 1, 3)


@dataclass
class SupportCache:
    """Everything a query pass needs from the support set, computed once per support set.

    Attributes
    ----------
    stats : QuantileStats
        Normalisation statistics of the support features.
    keys, values : list of Tensor of shape (b*c, h, s, e)
        Per-layer column-attention keys and values of the support grid.
    masks : _Masks
        Padding masks of the support rows and feature cells.
    n_features : int
        Number of feature columns the support set had.
    """

    stats: QuantileStats
    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    masks: _Masks = field(repr=False)
    n_features: int

    @property
    def n_support(self) -> int:
        """Number of support rows (padding included)."""
        return self.keys[0].shape[2]


class MitraModel(nn.Module):
    """The Mitra 2D attention transformer (``Tab2D`` of the official code).

    Parameters
    ----------
    config : MitraConfig
        Model shape and task.

    Notes
    -----
    Inputs follow the official convention: ``x_support`` (b, s, f), ``y_support`` (b, s) class
    ids (int) or scaled targets in [0, 1] (float), ``x_query`` (b, q, f) and optional bool
    padding masks where True marks padding. Use :meth:`forward` for training and prediction
    (without gradients it runs :meth:`predict_by_layer`, which takes the query rows through
    each layer in slices of the caller's choosing), or :meth:`encode_support` once and
    :meth:`predict_query` per chunk of query rows to reuse a support set across calls; all
    give the same numbers.
    """

    def __init__(self, config: MitraConfig) -> None:
        super().__init__()
        self.config = config
        # Enable to trade compute for memory when training (one checkpoint per layer).
        self.gradient_checkpointing = False
        self.x_embedding = _CellEmbedding(config.dim)
        if config.uses_class_label_embedding:
            self.y_embedding: nn.Module = _ClassLabelEmbedding(config.dim, config.dim_output)
        else:
            self.y_embedding = _ScalarLabelEmbedding(config.dim)
        self.layers = nn.ModuleList(Layer(config.dim, config.n_heads) for _ in range(config.n_layers))
        self.final_layer_norm = nn.LayerNorm(config.dim)
        self.final_layer = nn.Linear(config.dim, config.dim_output)
        self.reset_embeddings()

    def reset_embeddings(self) -> None:
        """Official initialisation: N(0, 1) cell and label embeddings, PyTorch defaults elsewhere."""
        nn.init.normal_(self.x_embedding.x_embedding.weight)
        nn.init.normal_(self.x_embedding.x_embedding.bias)
        nn.init.normal_(self.y_embedding.y_embedding.weight)
        nn.init.normal_(self.y_embedding.y_mask.weight)

    # ------------------------------------------------------------------ training
    def optimizer_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """AdamW parameter groups (`optimizer_groups`), as nanoGPT's ``configure_optimizers``."""
        return optimizer_groups(self, weight_decay)

    # ------------------------------------------------------------------ forward passes
    def forward(
        self,
        x_support: torch.Tensor,
        y_support: torch.Tensor,
        x_query: torch.Tensor,
        padding_features: torch.Tensor | None = None,
        padding_obs_support: torch.Tensor | None = None,
        padding_obs_query: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict the query rows from the support rows in one pass.

        Returns
        -------
        Tensor
            Logits (b, q, dim_output) for classification and binned regression, or
            predictions in scaled target space (b, q) for scalar regression. Padded query rows
            (``padding_obs_query``) hold meaningless values.
        """
        del padding_obs_query  # query rows never influence anything but themselves
        if not torch.is_grad_enabled():
            return self.predict_by_layer(x_support, y_support, x_query, padding_features, padding_obs_support)
        masks, stats, support = self._prepare_support(x_support, y_support, padding_features, padding_obs_support)
        query = self._query_grid(stats.normalise(x_query))
        last = len(self.layers) - 1
        for index, layer in enumerate(self.layers):
            if self.gradient_checkpointing and self.training:
                support, query = checkpoint(self._joint_step, layer, support, query, masks, index == last,
                                            use_reentrant=False)
            else:
                support, query = self._joint_step(layer, support, query, masks, index == last)
        return self._head(query)

    @staticmethod
    def _joint_step(
        layer: Layer, support: torch.Tensor, query: torch.Tensor, masks: _Masks, last: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # Only the query label cells of the last layer reach the head: the last layer's support
        # rows are needed for their keys/values alone, and its other query cells only as
        # keys/values of the attention across their row (the same outputs and gradients, less work).
        support, keys, values = layer.support_step(support, masks, last=last)
        return support, layer.query_step(query, keys, values, masks, label_only=last)

    @torch.no_grad()
    def predict_by_layer(
        self,
        x_support: torch.Tensor,
        y_support: torch.Tensor,
        x_query: torch.Tensor,
        padding_features: torch.Tensor | None = None,
        padding_obs_support: torch.Tensor | None = None,
        map_rows: Callable[[Callable[[torch.Tensor], torch.Tensor], torch.Tensor], torch.Tensor] | None = None,
        embeddings: bool = False,
    ) -> torch.Tensor:
        """Predict query rows with support and queries moving through the layers together.

        The support rows run once, one layer at a time, and each layer's keys/values are
        dropped once the queries have used them: memory holds one layer's keys/values and the
        query stream (b, q, c, d), not every layer's keys/values as :meth:`encode_support`.

        ``map_rows(fn, x)`` must return ``fn(x)`` for a function ``fn`` that treats every
        query row (dim 1) independently; a caller passes one that works through ``x`` in
        slices of rows (bounded memory, out-of-memory retries, progress). Default: all at once.
        With ``embeddings``, the rows' embeddings (`embed`) instead of the head's outputs.
        """
        if map_rows is None:
            map_rows = _all_rows
        masks, stats, support = self._prepare_support(x_support, y_support, padding_features, padding_obs_support)
        query = map_rows(lambda rows: self._query_grid(stats.normalise(rows)), x_query)
        last = len(self.layers) - 1
        for index, layer in enumerate(self.layers):
            support, keys, values = layer.support_step(support, masks, last=index == last)
            query = map_rows(partial(layer.query_step, keys=keys, values=values, masks=masks,
                                     label_only=index == last), query)
            del keys, values
        return map_rows(self.embed if embeddings else self._head, query)

    @torch.no_grad()
    def encode_support(
        self,
        x_support: torch.Tensor,
        y_support: torch.Tensor,
        padding_features: torch.Tensor | None = None,
        padding_obs_support: torch.Tensor | None = None,
    ) -> SupportCache:
        """Run the support rows through every layer once and keep what queries need.

        Queries never influence the support stream, so the per-layer keys/values of the column
        attention can be reused by every chunk of query rows (:meth:`predict_query`).
        """
        masks, stats, support = self._prepare_support(x_support, y_support, padding_features, padding_obs_support)
        keys, values = [], []
        last = len(self.layers) - 1
        for index, layer in enumerate(self.layers):
            support, layer_keys, layer_values = layer.support_step(support, masks, last=index == last)
            # Stored contiguous: every query slice reads them, and the attention reads strided
            # keys/values up to 3x slower for a few query rows (measured on the CPU); same values.
            keys.append(layer_keys.contiguous())
            values.append(layer_values.contiguous())
        return SupportCache(stats, keys, values, masks, n_features=x_support.shape[-1])

    def predict_query(self, cache: SupportCache, x_query: torch.Tensor, embeddings: bool = False) -> torch.Tensor:
        """Predict query rows (b, q, f) against a support set encoded by :meth:`encode_support`
        (with ``embeddings``: the rows' embeddings, `embed`)."""
        return self.predict_query_groups([cache], x_query, [x_query.shape[1]], embeddings=embeddings)

    @torch.no_grad()
    def predict_query_groups(
        self, caches: Sequence[SupportCache], x_query: torch.Tensor, group_rows: list[int], embeddings: bool = False
    ) -> torch.Tensor:
        """Predict query rows (b, q, f) whose consecutive runs of ``group_rows`` rows each read
        their own encoded support set (``caches``, in the same order).

        The same outputs as :meth:`predict_query` run per group; the row-wise work (embedding,
        MLPs, attention across each row) runs once for all groups, so many small groups cost
        little more than one group of all their rows. With several groups, the support sets
        must have no padding masks (one support set may have them).
        """
        if len(caches) != len(group_rows) or sum(group_rows) != x_query.shape[1]:
            raise ValueError(f"{len(caches)} support sets and group_rows {group_rows} do not cover "
                             f"{x_query.shape[1]} query rows.")
        for cache in caches:
            if x_query.shape[-1] != cache.n_features:
                raise ValueError(
                    f"x_query has {x_query.shape[-1]} features but the support set has {cache.n_features}."
                )
        if len(caches) > 1 and any(c.masks.support_rows is not None or c.masks.cells is not None for c in caches):
            raise ValueError("Grouped queries need support sets without padding masks.")
        masks = caches[0].masks  # the only support set's, or none
        parts = [cache.stats.normalise(part) for cache, part in
                 zip(caches, x_query.split(group_rows, dim=1), strict=True)]
        # One support set: its normalised rows as they come (a copy's layout moves bf16 matmuls by ~1e-3).
        query = self._query_grid(parts[0] if len(parts) == 1 else torch.cat(parts, dim=1))
        last = len(self.layers) - 1
        for index, layer in enumerate(self.layers):
            query = layer.query_step(query, [cache.keys[index] for cache in caches],
                                     [cache.values[index] for cache in caches], masks,
                                     label_only=index == last, group_rows=group_rows)
        return self.embed(query) if embeddings else self._head(query)

    # ------------------------------------------------------------------ pieces
    def _prepare_support(
        self,
        x_support: torch.Tensor,
        y_support: torch.Tensor,
        padding_features: torch.Tensor | None,
        padding_obs_support: torch.Tensor | None,
    ) -> tuple[_Masks, QuantileStats, torch.Tensor]:
        """Padding masks, normalisation statistics and the embedded support grid (b, s, c, d)."""
        masks = _make_masks(x_support, padding_features, padding_obs_support)
        stats = fit_quantile_stats(x_support, padding_obs_support)
        return masks, stats, self._support_grid(stats.normalise(x_support), y_support, padding_obs_support)

    def _support_grid(
        self, z_support: torch.Tensor, y_support: torch.Tensor, padding: torch.Tensor | None
    ) -> torch.Tensor:
        labels = self.y_embedding(y_support, padding).unsqueeze(2)  # (b, s, 1, d)
        cells = self.x_embedding(z_support)  # (b, s, f, d)
        # The residual stream stays float32 under autocast, as in the official classifier.
        dtype = _stream_dtype(self.final_layer.weight)
        return torch.cat([labels.to(dtype), cells.to(dtype)], dim=2)  # (b, s, c, d)

    def _query_grid(self, z_query: torch.Tensor) -> torch.Tensor:
        b, q, _ = z_query.shape
        cells = self.x_embedding(z_query)  # (b, q, f, d)
        unknown = self.y_embedding.y_mask.weight.view(1, 1, 1, -1).expand(b, q, 1, -1)
        dtype = _stream_dtype(self.final_layer.weight)
        return torch.cat([unknown.to(dtype), cells.to(dtype)], dim=2)

    def embed(self, query: torch.Tensor) -> torch.Tensor:
        """The query rows' embeddings (b, q, dim) from the last layer's stream (b, q, c, d): the
        normalised label cell, what the output head reads (``final_layer(embed(q))`` = outputs)."""
        return self.final_layer_norm(query[:, :, 0])

    def _head(self, query: torch.Tensor) -> torch.Tensor:
        out = self.final_layer(self.embed(query))  # label cell only
        if not self.config.uses_class_label_embedding:
            return out[..., 0]
        return out


def optimizer_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW parameter groups: weight decay on the matrices, none on norms, biases and embeddings.

    Used by fine-tuning and pretraining. Works on any module with Mitra's parameter names (the
    official ``Tab2D`` too, for the benchmarks).
    """
    decay, no_decay = [], []
    for module_name, module in model.named_modules():
        for name, parameter in module.named_parameters(recurse=False):
            if not parameter.requires_grad:
                continue
            exempt = (
                isinstance(module, (nn.LayerNorm, nn.Embedding))
                or name == "bias"
                or module_name.startswith(("x_embedding", "y_embedding"))
            )
            (no_decay if exempt else decay).append(parameter)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def _all_rows(fn: Callable[[torch.Tensor], torch.Tensor], rows: torch.Tensor) -> torch.Tensor:
    return fn(rows)


def _make_masks(
    x_support: torch.Tensor,
    padding_features: torch.Tensor | None,
    padding_obs_support: torch.Tensor | None,
) -> _Masks:
    b, s, f = x_support.shape
    support_rows = None
    if padding_obs_support is not None and bool(padding_obs_support.any()):
        # Same support-row mask for every column of a table: (b, s) -> (b*c, 1, 1, s).
        support_rows = padding_obs_support[:, None, :].expand(b, f + 1, s).reshape(b * (f + 1), 1, 1, s)
    cells = None
    if padding_features is not None and bool(padding_features.any()):
        label_cell = torch.zeros(b, 1, dtype=torch.bool, device=padding_features.device)
        cells = torch.cat([label_cell, padding_features.bool()], dim=1)
    return _Masks(support_rows=support_rows, cells=cells)
