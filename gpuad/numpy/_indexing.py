"""Indexing traced arrays: ``t[index]`` (the getitem row) and JAX-style out-of-place updates ``t.at[index]``.

``getitem`` normalises the index first (traced index arrays give their values; lists and arrays of another
backend move to the array's backend) and binds ``GETITEM``; ``IndexUpdate`` is what ``Tensor.at`` returns, and
its ``add``/``set``/``get`` build a new array from the scatter-add and getitem rows, ``min``/``max`` from the
backend's scatter with constant tie weights, ``multiply`` from a segmented product; none reads a device value.
Under vmap, an index that differs between the examples gathers and scatters through a one-hot contraction of
the finite part of the array (``finite_part``), made exactly NumPy's by each example's plain gather or
scatter (``exactly``). ``Tensor.__getitem__`` and ``Tensor.at`` (attached in ``_methods``) are the entry
points; nothing here is public in ``gpuad.numpy``.
"""
from __future__ import annotations

import builtins
import math

import numpy as _np

from .. import backend
from ..core import aval, concrete, constant, is_batched, is_float_dtype, map_values, raw, Tensor
from ..ops.linalg import EINSUM
from ..ops.linear import FINITE_PART, GETITEM, SCATTER_ADD
from ._dispatch import array_from, is_backend_array, module_of
from ._elementwise import where
from ._shapes import astype, broadcast_to, ravel, reshape

def normalize_index(index, like):
    """An index for ``like``: traced index arrays give their values, and lists and arrays of another backend
    (NumPy index arrays for a CuPy array) move to ``like``'s backend."""
    if not isinstance(index, tuple):
        index = (index,)
    module = module_of((like,))
    out = []
    for i in index:
        if isinstance(i, Tensor):
            i = concrete(i, "an index (vmap: index with a value that is not batched, or use take_along_axis)")
        if type(i) is list or (is_backend_array(i) and not isinstance(i, module.ndarray)
                               and getattr(i, "ndim", 0) > 0):
            i = module.asarray(i)
        out.append(i)
    return tuple(out) if len(out) != 1 else out[0]


def getitem(a, index):
    items = index if isinstance(index, tuple) else (index,)
    if any(is_batched(i) for i in items):
        return _batched_getitem(a, items)
    return GETITEM.bind(a, index=normalize_index(index, a))


# ---- indices that differ between the examples of a vmap: gathers as contractions with a one-hot mask ----------

def wrapped(index, n):
    """A backend index array taken modulo ``n`` (negative indices counted from the end), in intp: a narrow
    integer dtype (uint8 indices into an axis of 300) cannot hold n."""
    return index.astype(_np.intp, copy=False) % n


def one_hot(indices, n, dtype):
    """(vmap) ``indices`` (integers, batched) as a mask of their shape plus an axis of length ``n`` in ``dtype``:
    1 where the index selects. Contracting it with an array gathers, and the contraction's derivative is its
    transpose (a scatter-add), batched by the einsum and sum rows' rules. It costs O(n) per gathered element."""
    values = raw(indices)  # (the whole batch)
    # NumPy's bounds error where reading the indices costs no device-to-host transfer
    if values.size and backend.on_host(module_of((values,))) and (int(values.min()) < -n or int(values.max()) >= n):
        bad = int(values.min()) if int(values.min()) < -n else int(values.max())
        raise IndexError(f"index {bad} is out of bounds for axis with size {n}")
    mask = map_values(lambda v: wrapped(v, n)[..., None] == backend.array_module(v).arange(n), indices)
    return astype(mask, dtype)


def finite_part(a):
    """``a`` with its infinite and NaN elements zeroed, derivative the identity: what a one-hot contraction may
    read (0 * inf is NaN, which would reach every gathered element); ``exactly`` puts the selected non-finite
    values back. Integers and booleans are returned as they are."""
    return FINITE_PART.bind(a) if is_float_dtype(aval(a)[1]) or aval(a)[1].kind == "c" else a


def exactly(gathered, exact):
    """``gathered`` (a one-hot contraction of ``finite_part``) with the value ``exact`` (the same gather or
    scatter of the plain values, a constant) and the derivative of ``gathered``: exact - (g - gathered), whose
    value is exact's to the last bit (g - gathered is 0 exactly; a sum that cancelled, 1e16 - 1e16 + x, is
    not rounded again) where the contraction's value g is finite; gathered + (exact - g) where it is not."""
    if not (is_float_dtype(aval(gathered)[1]) or aval(gathered)[1].kind == "c"):
        return gathered
    finite = map_values(lambda g: backend.array_module(g).isfinite(g), gathered)
    plain = constant(gathered)
    return where(finite, exact - (plain - gathered),
                 gathered + map_values(lambda e, g: backend.where(e == g, 0, e - g), exact, gathered))


def _batched_getitem(a, items):
    """``a[items]`` where one item is a batched integer index (vmap): a gather along its axis, then the basic
    items after it. Full slices may come before it; other index arrays may not come with it."""
    shape = aval(a)[0]
    if any(i is Ellipsis for i in items):
        at = next(j for j, i in enumerate(items) if i is Ellipsis)
        explicit = sum(1 for i in items if i is not None and i is not Ellipsis)
        items = items[:at] + (slice(None),) * (len(shape) - explicit) + items[at + 1:]
    k = next(j for j, i in enumerate(items) if is_batched(i))
    before, after = items[:k], items[k + 1:]
    if (any(not (isinstance(i, slice) and i == slice(None)) for i in before)
            or any(is_batched(i) or is_backend_array(i) or type(i) is list or isinstance(i, Tensor) for i in after)
            or aval(items[k])[1].kind not in "iu"):
        raise NotImplementedError(
            "vmap: indexing with a batched value supports one batched integer index, after full slices only "
            "(x[i], x[:, i], x[i, 1:]); take the other index arrays in a separate indexing step")
    index, n = items[k], shape[k]
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    subs_a = letters[:len(shape)]
    m = len(aval(index)[0])
    subs_i = letters[len(shape):len(shape) + m]
    out = EINSUM.bind(one_hot(index, n, aval(a)[1]), finite_part(a), subscripts=f"{subs_i}{subs_a[k]},{subs_a}->"
                      f"{subs_a[:k]}{subs_i}{subs_a[k + 1:]}", optimize=False)

    def gather(values, positions):
        # the same gather of the plain values: take_along_axis, with the index's own axes (at least one) spread
        # out before axis k of the array and the array's other axes as 1s in the index (broadcast)
        xp = backend.array_module(values)
        lead = builtins.max(values.ndim - len(shape), positions.ndim - m)  # (either may be unbatched)
        values = values.reshape((1,) * (lead + len(shape) - values.ndim) + values.shape)
        positions = positions.reshape((1,) * (lead + m - positions.ndim) + positions.shape)
        spread = builtins.max(m, 1)
        positions = wrapped(positions, n).reshape(positions.shape + (1,) * (spread - m))
        values = values.reshape(values.shape[:lead + k] + (1,) * (spread - 1) + values.shape[lead + k:])
        positions = positions.reshape(positions.shape[:lead] + (1,) * k + positions.shape[lead:]
                                      + (1,) * (len(shape) - k - 1))
        out = xp.take_along_axis(values, positions, axis=lead + k + spread - 1)
        return out if m else out.reshape(out.shape[:lead + k] + out.shape[lead + k + 1:])
    out = exactly(out, map_values(gather, a, index))
    if after:
        out = getitem(out, (slice(None),) * (k + len(subs_i)) + after)
    return out


def extreme_and_weights(how, shape, selected, dtype, a, v, positions):
    """The scatter-max ("max") or scatter-min of ``v`` into ``a`` and constant tie weights, on backend arrays:
    ``a`` (lead + shape), ``v`` (lead + selected) and ``positions`` (lead + (count,): each selected element's
    flat position in its example's array), each with the batch axes of a vmap in progress in front (or none).

    No host read: the result is the backend's scatter, taken as a constant; the derivative is carried by a
    linear combination of the array and the values with these weights: each element's derivative goes evenly to
    the operands equal to it (the array's element and every value written there; JAX's convention for ties), so
    it is exact to every order away from ties. Returns (extreme: lead + shape, weights: lead + (size + count,))."""
    xp = backend.array_module(a, v, positions)
    size, count = math.prod(shape), math.prod(selected)
    lead = _np.broadcast_shapes(a.shape[:a.ndim - len(shape)], v.shape[:v.ndim - len(selected)],
                                positions.shape[:-1])
    batch = math.prod(lead)
    a = xp.broadcast_to(a, lead + shape).reshape(batch, size)
    v = xp.broadcast_to(v, lead + selected).reshape(batch, count)
    positions = xp.broadcast_to(positions, lead + (count,)).reshape(batch, count)
    targets = (xp.arange(batch).reshape(-1, 1) * size + positions).reshape(-1)
    extreme = a.copy().reshape(-1)
    (backend.scatter_max if how == "max" else backend.scatter_min)(extreme, targets, v.reshape(-1))
    reached = extreme[targets].reshape(batch, count)
    extreme = extreme.reshape(batch, size)
    weight_dtype = xp.finfo(dtype).dtype if dtype.kind == "c" else dtype
    tie_a = ((a == extreme) | (xp.isnan(a) & xp.isnan(extreme))).astype(xp.float32)
    tie_v = ((v == reached) | (xp.isnan(v) & xp.isnan(reached))).astype(xp.float32)
    ties = tie_a.reshape(-1).copy()  # (counted in float32 at least: float16 stops counting at 2048)
    backend.scatter_add(ties, targets, tie_v.reshape(-1))
    ties = xp.where(ties > 0, ties, 1)  # (0 only where a backend's scatter disagrees on NaN)
    weights_a = tie_a / ties.reshape(batch, size)
    weights_v = tie_v / ties[targets].reshape(batch, count)
    weights = xp.concatenate([weights_a, weights_v], axis=1).astype(weight_dtype, copy=False)
    return extreme.reshape(lead + shape), weights.reshape(lead + (size + count,))


def with_tie_weights(array, values, extreme, weights, shape, selected, scatter_into):
    """The traced result of a max/min update: ``extreme``'s value, the derivative of the weighted sum
    ``scatter_into(weighted values, weighted array)`` (which adds the values at the index into the array)."""
    if not is_float_dtype(aval(array)[1]) and aval(array)[1].kind != "c":
        return extreme  # integers and booleans: no derivative
    size = math.prod(shape)
    weights_a, weights_v = reshape(weights[:size], shape), reshape(weights[size:], selected)
    # (selected before scaled: an infinite operand that lost must not make inf * 0)
    linear = scatter_into(where(weights_v > 0, values, 0) * weights_v, where(weights_a > 0, array, 0) * weights_a)

    def rounding(exact, summed):  # the weighted sum rounds (three tied x / 3); the difference is exact
        return backend.where(exact == summed, 0, exact - summed)  # (0 where equal: inf - inf)
    return linear + map_values(rounding, extreme, linear, align=True)


def segmented_products(run, continues):
    """The running product within each run of the traced ``run`` (values sorted by position; ``continues``, a
    constant mask: True where an element continues the run before it), by the linear recurrence h_i = v_i
    h_(i-1) restarted at each run's first element: exact derivatives of every order, zeros included. Non-finite
    values enter as 1 (a run's start multiplies the product before it by 0, and 0 * inf would be NaN);
    their own segmented product (a constant) puts their inf or NaN back."""
    from ..ops.scans import RECURRENCE
    finite = map_values(lambda v: backend.array_module(v).isfinite(v), run)
    nonfinite = map_values(_nonfinite_running_products, run, continues, align=True)
    run = where(finite, run, 1)
    products = RECURRENCE.bind(where(continues, 0, run), where(continues, run, 0), axis=0, reverse=False)
    return products * nonfinite


def _nonfinite_running_products(values, continues):
    """The running product within each run (along the last axis) of the non-finite ``values`` only (1 for the
    finite ones), by a segmented doubling scan that selects with ``where`` (never multiplies by a 0 across
    runs): NaN once a NaN is in, else an infinity whose sign is the product's, else 1."""
    xp = backend.array_module(values)
    h = backend.where(xp.isfinite(values), xp.ones((), dtype=values.dtype), values)
    started = ~xp.broadcast_to(continues, h.shape)
    d, n = 1, h.shape[-1]
    while d < n:
        shifted = xp.concatenate([xp.ones(h.shape[:-1] + (d,), dtype=h.dtype), h[..., :-d]], axis=-1)
        before = xp.concatenate([xp.ones(h.shape[:-1] + (d,), dtype=bool), started[..., :-d]], axis=-1)
        h = backend.where(started, h, shifted * h)
        started = started | before
        d *= 2
    return h


def update_values(values, module, dtype, selected):
    """``values`` cast to the array's dtype (as NumPy's assignment does) and broadcast over the selection."""
    values = array_from(values)
    values = values if isinstance(values, Tensor) else module.asarray(raw(values))
    return broadcast_to(astype(values, dtype), selected)


class IndexUpdate:
    """``t.at[index].set(v)`` / ``.add(v)``: out-of-place updates of a traced array (JAX's spelling)."""

    def __init__(self, array):
        self.array = array

    def __getitem__(self, index):
        items = index if isinstance(index, tuple) else (index,)
        if any(is_batched(i) for i in items):
            return BatchedIndexUpdateAt(self.array, items)
        return IndexUpdateAt(self.array, normalize_index(index, self.array))


class IndexUpdateAt:
    """The pending update ``t.at[index]``: each method returns a new array and leaves ``t`` as it was."""

    def __init__(self, array, index):
        self.array, self.index = array, index

    def get(self):
        return getitem(self.array, self.index)

    def _selection(self):
        """The module, the array's shape and dtype, and the shape of ``array[index]`` (from a zero-stride proxy,
        so nothing of the array's size is gathered)."""
        module = module_of((self.array,))
        shape, dtype = aval(self.array)
        proxy = module.broadcast_to(module.zeros((), dtype=module.bool_), shape)
        return module, shape, dtype, proxy[self.index].shape

    def add(self, values):
        """Add ``values`` at ``index``; repeated indices accumulate (like ``numpy.add.at``)."""
        module, shape, dtype, selected = self._selection()
        values = update_values(values, module, dtype, selected)
        return self.array + SCATTER_ADD.bind(values, index=self.index, shape=shape)

    def set(self, values):
        """Replace the elements at ``index``; at a repeated index the last value wins, as in NumPy's assignment,
        and only that value gets a derivative."""
        module, shape, dtype, selected = self._selection()
        values = update_values(values, module, dtype, selected)
        # Number the selected positions (in the selection's C order) and keep, per element, the largest number
        # written to it (a scatter-max, deterministic on every backend, where a plain assignment with repeated
        # indices leaves the winner undefined on the GPU): the last write wins, as in NumPy's assignment. -1 marks
        # the elements not selected at all. No value is read back to the host: the mask is applied always.
        order = module.arange(math.prod(selected)).reshape(selected)
        winner = module.full(shape, -1, dtype=order.dtype)
        backend.scatter_max(winner, self.index, order)
        chosen = winner[self.index] == order
        values = where(chosen, values, 0)
        return where(winner < 0, self.array, 0) + SCATTER_ADD.bind(values, index=self.index, shape=shape)

    def _extremum(self, values, how):
        """The elementwise maximum (``how`` "max") or minimum ("min") with ``values`` at ``index``, every
        occurrence of a repeated index taking part (like ``numpy.maximum.at``); see ``extreme_and_weights``."""
        module, shape, dtype, selected = self._selection()
        values = update_values(values, module, dtype, selected)
        if math.prod(selected) == 0:
            return self.array
        index = self.index
        positions = module.arange(math.prod(shape)).reshape(shape)[index].reshape(-1)
        extreme, weights = map_values(lambda a, v: extreme_and_weights(how, shape, selected, dtype, a, v, positions),
                                      self.array, values)
        return with_tie_weights(self.array, values, extreme, weights, shape, selected, lambda spread, kept: (
            kept + SCATTER_ADD.bind(spread, index=index, shape=shape)))

    def multiply(self, values):
        """Multiply the elements at ``index`` by ``values``; repeated indices multiply repeatedly (like
        ``numpy.multiply.at``).

        No host read: the occurrences are sorted by position on the device, each run of one position multiplied
        by a segmented product (the linear recurrence h_i = v_i h_(i-1) within a run, restarted at each run's
        first element: exact derivatives of every order, zeros included), and each run's total multiplies its
        element."""
        module, shape, dtype, selected = self._selection()
        values = ravel(update_values(values, module, dtype, selected))
        size = math.prod(shape)
        positions = module.arange(size).reshape(shape)[self.index].ravel()
        if positions.size == 0:
            return self.array
        order = module.argsort(positions)  # a product does not depend on the order within a run
        ordered = positions[order]
        continues = module.concatenate([module.zeros(1, dtype=bool), ordered[1:] == ordered[:-1]])
        last = module.concatenate([ordered[1:] != ordered[:-1], module.ones(1, dtype=bool)])
        products = segmented_products(values[order], continues)
        totals = SCATTER_ADD.bind(where(last, products, 0), index=ordered, shape=(size,))
        selected_mask = module.zeros(size, dtype=bool)
        selected_mask[ordered] = True
        return reshape(ravel(self.array) * where(selected_mask, totals, 1), shape)

    def min(self, values):
        """The elementwise minimum with ``values`` at ``index`` (like ``numpy.minimum.at``); ties share the
        derivative evenly."""
        return self._extremum(values, "min")

    def max(self, values):
        """The elementwise maximum with ``values`` at ``index`` (like ``numpy.maximum.at``); ties share the
        derivative evenly."""
        return self._extremum(values, "max")


class BatchedIndexUpdateAt:
    """``t.at[i]`` where ``i`` is an integer index batched by a vmap in progress (each example updates its own
    positions), after full slices only: ``t.at[i]``, ``t.at[:, i]``. ``get``, ``add`` and ``set`` are one-hot
    contractions (a scatter-add, O(n) per written element, n the indexed axis's length) whose values are then
    made exactly NumPy's (``add.at``'s order of additions; a written inf or NaN) by the plain scatter of each
    example; ``min``, ``max`` and ``multiply`` take the unbatched updates' constructions (tie weights, a
    segmented product) per example."""

    def __init__(self, array, items):
        shape = aval(array)[0]
        k = next(j for j, i in enumerate(items) if is_batched(i))
        if (any(not (isinstance(i, slice) and i == slice(None)) for i in items[:k] + items[k + 1:])
                or aval(items[k])[1].kind not in "iu" or k >= len(shape)):
            raise NotImplementedError(
                "vmap: t.at[...] with a batched index supports one batched integer index after full slices only "
                "(t.at[i], t.at[:, i]); update the other axes in a separate step")
        self.array, self.items, self.axis, self.index = array, items, k, items[k]

    def get(self):
        return getitem(self.array, self.items)

    def _scattered(self, values, base):
        """``base`` (an array of the updated array's shape) plus ``values`` added at the index, as a traced
        array; the values broadcast over the selection in the array's dtype."""
        shape, dtype = aval(self.array)
        k, n = self.axis, shape[self.axis]
        index_shape = aval(self.index)[0]
        values, selected = self._selected(values)
        letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
        pre, axis_letter, post = letters[:k], letters[k], letters[k + 1:len(shape)]
        idx = letters[len(shape):len(shape) + len(index_shape)]
        added = EINSUM.bind(one_hot(self.index, n, dtype), finite_part(values),
                            subscripts=f"{idx}{axis_letter},{pre}{idx}{post}->{pre}{axis_letter}{post}",
                            optimize=False)
        linear = base + added
        m = len(index_shape)

        def scatter(b, i, v):  # the same update of the plain values, example by example: NumPy's add.at
            xp = backend.array_module(b, i, v)
            lead = builtins.max(b.ndim - len(shape), i.ndim - m, v.ndim - len(selected))
            b, i, v = (x.reshape((1,) * (lead + r - x.ndim) + x.shape)
                       for x, r in ((b, len(shape)), (i, m), (v, len(selected))))
            outer = _np.broadcast_shapes(b.shape[:lead], i.shape[:lead], v.shape[:lead])
            batch = math.prod(outer)
            target = xp.moveaxis(xp.broadcast_to(b, outer + shape), lead + k, lead).reshape(
                (batch, n) + shape[:k] + shape[k + 1:]).copy()
            v = xp.moveaxis(xp.broadcast_to(v, outer + selected), tuple(range(lead + k, lead + k + m)),
                            tuple(range(lead, lead + m))).reshape((batch,) + index_shape + shape[:k] + shape[k + 1:])
            rows = xp.arange(batch).reshape((batch,) + (1,) * m)
            backend.scatter_add(target, (rows, wrapped(xp.broadcast_to(i, outer + index_shape).reshape(
                (batch,) + index_shape), n)), v)
            return xp.moveaxis(target.reshape(outer + (n,) + shape[:k] + shape[k + 1:]), lead, lead + k)

        return exactly(linear, map_values(scatter, base, self.index, values))

    def add(self, values):
        """Add ``values`` at each example's index; repeated indices accumulate (``numpy.add.at``)."""
        return self._scattered(values, self.array)

    def set(self, values):
        """Replace the elements at each example's index; at a repeated index the last write wins (NumPy's
        assignment), and only that value gets a derivative."""
        shape = aval(self.array)[0]
        k, n, m = self.axis, shape[self.axis], len(aval(self.index)[0])
        index_shape = aval(self.index)[0]

        def winners(i):  # (the last occurrence of each position; -1 where none): positions written, and by whom
            xp = backend.array_module(i)
            lead = i.ndim - m
            order = xp.broadcast_to(xp.arange(math.prod(index_shape)).reshape(index_shape), i.shape)
            flat = wrapped(i.reshape((math.prod(i.shape[:lead]),) + index_shape), n)  # (an empty index too)
            last = xp.full((flat.shape[0], n), -1, dtype=order.dtype)
            rows = xp.arange(flat.shape[0]).reshape((-1,) + (1,) * m)
            backend.scatter_max(last, (rows, flat), order.reshape(flat.shape))
            chosen = xp.take_along_axis(last, flat.reshape(flat.shape[0], -1), axis=1).reshape(flat.shape)
            chosen = chosen == order.reshape(flat.shape)
            return (last >= 0).reshape(i.shape[:lead] + (n,)), chosen.reshape(i.shape)

        written, chosen = map_values(winners, self.index)
        expand = (slice(None),) + (None,) * (len(shape) - k - 1)
        kept = where(written[expand], 0, self.array)
        values, _ = self._selected(values)
        return self._scattered(where(chosen[(slice(None),) * m + (None,) * (len(shape) - k - 1)], values, 0), kept)

    def _positions(self, i):
        """Each selected element's flat position in its example's array, (p n + i_j) after + q, from the backend
        array ``i`` (the index, its batch axes in front): lead + (count,)."""
        shape = aval(self.array)[0]
        k, n, index_shape = self.axis, shape[self.axis], aval(self.index)[0]
        before, after = math.prod(shape[:k]), math.prod(shape[k + 1:])
        xp = backend.array_module(i)
        lead = i.shape[:i.ndim - len(index_shape)]
        columns = wrapped(i, n).reshape(lead + (1, math.prod(index_shape), 1))
        return ((xp.arange(before).reshape(before, 1, 1) * n + columns) * after
                + xp.arange(after).reshape(1, 1, after)).reshape(lead + (-1,))

    def _selected(self, values):
        shape, dtype = aval(self.array)
        k, index_shape = self.axis, aval(self.index)[0]
        selected = shape[:k] + index_shape + shape[k + 1:]
        return update_values(values, module_of((self.array,)), dtype, selected), selected

    def _extremum(self, values, how):
        shape, dtype = aval(self.array)
        values, selected = self._selected(values)
        if math.prod(selected) == 0:
            return self.array
        top, weights = map_values(lambda a, i, v: extreme_and_weights(how, shape, selected, dtype, a, v,
                                                                      self._positions(i)),
                                  self.array, self.index, values)
        return with_tie_weights(self.array, values, top, weights, shape, selected, self._scattered)

    def multiply(self, values):
        """Multiply the elements at each example's index by ``values``; repeated indices multiply repeatedly
        (``numpy.multiply.at``): the unbatched update's segmented product, each example's runs its own."""
        shape, dtype = aval(self.array)
        values, selected = self._selected(values)
        size = math.prod(shape)
        if math.prod(selected) == 0:
            return self.array

        def runs(i):  # the occurrences sorted by position, per example: where each run continues and ends
            xp = backend.array_module(i)
            positions = self._positions(i)
            order = xp.argsort(positions, axis=-1)
            ordered = xp.take_along_axis(positions, order, axis=-1)
            same = ordered[..., 1:] == ordered[..., :-1]
            edge = xp.zeros(same.shape[:-1] + (1,), dtype=bool)
            written = xp.zeros(ordered.shape[:-1] + (size,), dtype=bool)
            written.reshape(-1, size)[xp.arange(written.size // size).reshape(-1, 1),
                                      ordered.reshape(-1, ordered.shape[-1])] = True
            return (order, ordered, xp.concatenate([edge, same], axis=-1), xp.concatenate([~same, ~edge], axis=-1),
                    written)

        order, ordered, continues, last, written = map_values(runs, self.index)
        values = ravel(values)
        products = segmented_products(getitem(values, (order,)), continues)
        zeros = map_values(lambda o: backend.array_module(o).zeros(o.shape[:-1] + (size,), dtype=dtype), ordered)
        totals = BatchedIndexUpdateAt(zeros, (ordered,)).add(where(last, products, 0))
        return reshape(ravel(self.array) * where(written, totals, 1), shape)

    def min(self, values):
        """The elementwise minimum with ``values`` at each example's index (``numpy.minimum.at``); ties share
        the derivative evenly."""
        return self._extremum(values, "min")

    def max(self, values):
        """The elementwise maximum with ``values`` at each example's index (``numpy.maximum.at``); ties share
        the derivative evenly."""
        return self._extremum(values, "max")

