"""Which dataset rows a batch came from, so a report can say "dataset index 1234" instead of "row 18 of the batch".

`IndexedLoader(loader)` iterates exactly like `loader` and, after each batch, knows the dataset indices of its
rows (`.last`). For a torch `DataLoader` it is rebuilt around a batch sampler that records the index lists as the
DataLoader draws them: the same sampler object (so the same order and the same generator), the same workers,
collate_fn and pinning. A DataLoader hands batches out in the order their indices were drawn (`in_order=True`, its
default, even with workers), so the n-th batch yielded is the n-th index list recorded. Other iterables carry no
indices: `.last` stays None and reports fall back to positions within the batch.

Why a sampler wrapper rather than a dataset that returns its index: the user's batches keep their structure
(no extra element to unpack), and nothing about the dataset or collate_fn changes."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sized
from typing import Any

from torch.utils.data import DataLoader


class _Recording:
    """A batch sampler (or sampler) that yields what the wrapped one yields and records it."""

    def __init__(self, inner: Iterable[Any], drawn: deque[list[int]], single: bool) -> None:
        self.inner, self.drawn, self.single = inner, drawn, single

    def __iter__(self) -> Iterator[Any]:
        for item in self.inner:
            self.drawn.append([_index(item)] if self.single else [_index(i) for i in item])
            yield item

    def __len__(self) -> int:
        return len(self.inner) if isinstance(self.inner, Sized) else 0


def _index(i: Any) -> int:
    try:
        return int(i)
    except (TypeError, ValueError):
        return -1  # a sampler yielding keys that are not integers: unknown


class IndexedLoader:
    """Iterates like `loader`; `.last` holds the dataset indices of the batch it yielded last (None if unknown)."""

    def __init__(self, loader: Iterable[Any]) -> None:
        self.source = loader
        self.last: list[int] | None = None
        self._drawn: deque[list[int]] = deque()
        self._loader = _recording_loader(loader, self._drawn) if isinstance(loader, DataLoader) else None

    @property
    def tracks(self) -> bool:
        """True when the batches' dataset indices are known."""
        return self._loader is not None

    def __iter__(self) -> Iterator[Any]:
        self._drawn.clear()
        self.last = None
        if self._loader is None:
            yield from self.source
            return
        for batch in self._loader:
            self.last = self._drawn.popleft() if self._drawn else None
            yield batch

    def __len__(self) -> int:
        return len(self.source) if isinstance(self.source, Sized) else 0

    def __getattr__(self, name: str) -> Any:  # dataset, batch_size, sampler, ... of the wrapped loader
        return getattr(self.source, name)


def _recording_loader(dl: DataLoader[Any], drawn: deque[list[int]]) -> DataLoader[Any] | None:
    """`dl` rebuilt around a recording (batch) sampler; None when the order cannot be trusted."""
    if not getattr(dl, "in_order", True) or dl._dataset_kind != 0:  # out-of-order workers; an IterableDataset
        return None
    kwargs: dict[str, Any] = {
        "num_workers": dl.num_workers, "collate_fn": dl.collate_fn, "pin_memory": dl.pin_memory,
        "timeout": dl.timeout, "worker_init_fn": dl.worker_init_fn, "generator": dl.generator,
        "persistent_workers": dl.persistent_workers, "pin_memory_device": dl.pin_memory_device,
    }
    if dl.num_workers > 0:
        kwargs.update(prefetch_factor=dl.prefetch_factor, multiprocessing_context=dl.multiprocessing_context)
    if dl.batch_sampler is not None:
        return DataLoader(dl.dataset, batch_sampler=_Recording(dl.batch_sampler, drawn, single=False), **kwargs)
    return DataLoader(dl.dataset, batch_size=None, sampler=_Recording(dl.sampler, drawn, single=True), **kwargs)


def dataset_indices(positions: list[int], batch_indices: list[int] | None) -> list[int] | None:
    """Batch positions → dataset indices (None when the batch's indices are unknown or do not fit)."""
    if batch_indices is None or any(p < 0 or p >= len(batch_indices) for p in positions):
        return None
    return [batch_indices[p] for p in positions]


__all__ = ["IndexedLoader", "dataset_indices"]
