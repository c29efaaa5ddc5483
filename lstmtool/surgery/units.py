"""Where a recurrent layer's units sit along one axis of a tensor, and how that axis
changes when units go (prune) or come (widen).

A unit `j` of a layer with `u` units appears in many places: column `j` of every gate
block of the layer's own kernel, recurrent kernel and bias (its incoming weights), row
`j` of the recurrent kernel and the rows of every consumer that read it (its outgoing
weights), and one entry of each per-channel vector (BatchNormalization) in between.
Each place is a `Site`: one axis of one stored tensor, with the positions where the
units sit given as `Blocks` of `u` consecutive positions holding units 0..u-1. A
*keep list* says, for each new position, which old unit it holds (None: a new unit).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

INCOMING, OUTGOING, VECTOR = "incoming", "outgoing", "vector"


@dataclass(frozen=True)
class Blocks:
    """Positions of one feature axis holding units: blocks starting at `starts`, each
    `units` long. `period` set: the axis is a Flatten of `period`-wide steps, repeated
    over a length that only the consumer's weights tell."""

    units: int
    starts: tuple
    width: Optional[int]
    period: Optional[int] = None

    def resolve(self, width: int) -> "Blocks":
        """These blocks on an axis of `width` positions (ValueError when they cannot fit)."""
        if self.period is not None:
            if width % self.period:
                raise ValueError(f"{width} inputs are not a whole number of {self.period}-wide steps")
            steps = width // self.period
            starts = tuple(t * self.period + s for t in range(steps) for s in self.starts)
            return Blocks(self.units, starts, width)
        if self.width is not None and self.width != width:
            raise ValueError(f"{width} inputs where {self.width} were expected")
        return Blocks(self.units, self.starts, width)

    def shifted(self, offset: int) -> tuple:
        return tuple(s + offset for s in self.starts)

    def new_width(self, keep) -> Optional[int]:
        if self.width is None:
            return None
        return self.width + len(self.starts) * (len(keep) - self.units)


def unit_blocks(units: int) -> Blocks:
    return Blocks(units, (0,), units)


def concatenated(parts) -> Blocks:
    """The blocks of a concatenation of [(width, Blocks or None)], in order."""
    starts, offset, units = [], 0, None
    for width, blocks in parts:
        if blocks is not None:
            blocks = blocks.resolve(width)
            starts += blocks.shifted(offset)
            units = blocks.units
        offset += width
    return Blocks(units, tuple(starts), offset)


def flattened(blocks: Blocks) -> Blocks:
    if blocks.width is None:
        raise ValueError("a Flatten of a Flatten whose length is unknown")
    return Blocks(blocks.units, blocks.starts, None, period=blocks.width)


@dataclass
class Site:
    """One axis of one stored tensor where the units sit."""

    path: str  # dataset path in the file
    shape: tuple
    dtype: str
    axis: int  # negative
    blocks: Blocks  # resolved against shape[axis]
    kind: str  # INCOMING (the units' own weights), OUTGOING (weights they feed), VECTOR
    layer: str  # the layer whose tensor this is
    role: str  # kernel, recurrent_kernel, bias, gamma...
    fill: float = 0.0  # what a new unit gets in a VECTOR (gamma 1, variance 1, others 0)
    views: Optional[tuple] = None  # cuDNN: ((start, stop, to_view, to_stored), ...) gate blocks on the
    # last axis; the units sit in each block's view, `axis` and `blocks` are the view's

    def positions(self, unit: int) -> list:
        return [s + unit for s in self.blocks.starts]


def index_map(blocks: Blocks, width: int, keep) -> np.ndarray:
    """For each new position the old one it takes (-1: a new unit)."""
    out, pos = [], 0
    for start in sorted(blocks.starts):
        out += range(pos, start)
        out += [start + k if k is not None else -1 for k in keep]
        pos = start + blocks.units
    out += range(pos, width)
    return np.asarray(out, dtype=np.int64)


def take(array: np.ndarray, site: Site, keep, fill_new) -> np.ndarray:
    """`array` with `site`'s axis rebuilt by `keep`; new positions from `fill_new(shape)`."""
    index = index_map(site.blocks, array.shape[site.axis], keep)
    new = _gather(array, np.maximum(index, 0), site.axis)
    fresh = index < 0
    if fresh.any():
        moved = np.moveaxis(new, site.axis, 0)
        moved[fresh] = fill_new(moved[fresh].shape).astype(array.dtype)
    return new


def _gather(array, index, axis):
    """np.take, by slices where the index runs in long stretches (a widen, a small prune):
    copying stretches is several times faster than gathering element by element."""
    breaks = np.flatnonzero(np.diff(index) != 1) + 1
    if len(breaks) > 64:
        return np.take(array, index, axis=axis)
    shape = list(array.shape)
    shape[axis] = len(index)
    out = np.empty(shape, dtype=array.dtype)
    src = np.moveaxis(array, axis, 0)
    dst = np.moveaxis(out, axis, 0)
    for a, b in zip(np.r_[0, breaks], np.r_[breaks, len(index)]):
        dst[a:b] = src[index[a]: index[a] + (b - a)]
    return out


def new_shape(shape, sites, keep) -> tuple:
    shape = list(shape)
    for site in sites:
        if site.views:  # each gate block's view changes; the blocks stay side by side
            n = len(site.views)
            width = shape[site.axis] if site.axis == -2 else shape[-1] // n
            shape[site.axis] = len(index_map(site.blocks, width, keep)) * (1 if site.axis == -2 else n)
        else:
            shape[site.axis] = len(index_map(site.blocks, shape[site.axis], keep))
    return tuple(shape)


def rebuild(array: np.ndarray, sites: list, keep, init) -> np.ndarray:
    """A tensor with every site applied: incoming and vector axes first, then outgoing,
    so a new unit's outgoing weights are zero even where its incoming column crosses them."""
    if any(s.views for s in sites):
        return _rebuild_views(array, sites, keep, init)
    order = sorted(sites, key=lambda s: s.kind == OUTGOING)
    for site in order:
        if site.kind == OUTGOING:
            array = take(array, site, keep, np.zeros)
        elif site.kind == VECTOR:
            array = take(array, site, keep, lambda shape, v=site.fill: np.full(shape, v))
        else:
            array = take(array, site, keep, lambda shape, s=site: init(s, shape))
    return array


def _rebuild_views(array, sites, keep, init):
    """cuDNN tensors: each gate block to its view, rebuilt there, and back to cuDNN's form."""
    views = sites[0].views
    if any(s.views != views for s in sites):
        raise ValueError(f"{sites[0].path}: its units sit in two different layouts")
    blocks = []
    for start, stop, to_view, to_stored in views:
        view = rebuild(to_view(array[..., start:stop]), [_plain(s) for s in sites], keep, init)
        blocks.append(to_stored(view))
    return np.concatenate(blocks, axis=-1)


def _plain(site):
    from dataclasses import replace

    return replace(site, views=None)


def _values(site, read):
    """The site's axis first, as the units see it (cuDNN: gate views side by side)."""
    values = np.asarray(read(site.path))
    if site.views:
        values = np.concatenate([to_view(values[..., a:b]) for a, b, to_view, _ in site.views], axis=-1)
    return np.moveaxis(values, site.axis, 0)


def _per_position(site, read, norm):
    """|w| summed (l1), w^2 summed (l2) or max |w| (peak) over everything but the site's axis."""
    values = _values(site, read)
    flat = values.reshape(values.shape[0], -1)
    if norm == "l2":
        return np.einsum("ij,ij->i", flat, flat).astype(np.float64)
    if norm == "peak":
        return np.abs(flat).max(axis=1).astype(np.float64)
    return np.abs(flat).sum(axis=1).astype(np.float64)  # pairwise float32 sums: ample for a ranking


def scores(sites: list, read, units: int, norm: str) -> np.ndarray:
    """Each unit's norm over its outgoing weights: l1, l2, or peak (the largest |w|)."""
    total = np.zeros(units, dtype=np.float64)
    for site in sites:
        if site.kind != OUTGOING:
            continue
        per = _per_position(site, read, norm)
        for start in site.blocks.starts:
            block = per[start:start + units]
            total[:] = np.maximum(total, block) if norm == "peak" else total + block
    return np.sqrt(total) if norm == "l2" else total
