"""Text for sequence models: a vocabulary, next-token windows, and padding of variable lengths.

>>> vocab = Vocabulary.characters("hello world")
>>> ids = vocab.encode("hello")                  # int64 ids, one per character
>>> data = NextTokenDataset(vocab.encode(text), seq_len=64)   # (x, y): y is x shifted by one
>>> padded, lengths = pad_sequences([a, b, c])    # (N, L_max) and (N,), as torch's pad_sequence

A :class:`Vocabulary` maps tokens (characters, words, any hashable) to ids and back, in a fixed
order: the ``specials`` first (e.g. ``"<pad>"`` = 0), then the tokens sorted by decreasing count
and, within a count, by first appearance, so the same text always gives the same ids. Tokens
never seen map to ``unk`` when the vocabulary has one, and raise KeyError otherwise.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Hashable, Iterable, Optional, Sequence

import numpy as np

from chainrule.data.dataset import Dataset
from chainrule.engine.tensor import Tensor

__all__ = ["Vocabulary", "NextTokenDataset", "pad_sequences", "padding_mask", "pad_collate"]


class Vocabulary:
    """Ids for tokens: ``specials`` first, then tokens by decreasing count (ties: first seen)."""

    def __init__(self, tokens: Iterable[Hashable], specials: Sequence[Hashable] = (),
                 min_freq: int = 1, unk: Optional[Hashable] = None) -> None:
        if min_freq < 1:
            raise ValueError(f"Vocabulary: min_freq={min_freq} must be >= 1")
        if unk is not None and unk not in specials:
            raise ValueError(f"Vocabulary: unk={unk!r} must be one of the specials {specials!r}")
        counts = Counter(tokens)  # insertion order = first appearance
        ranked = sorted(counts, key=lambda token: -counts[token])  # stable: ties keep first-seen
        self.itos: list = list(specials) + [t for t in ranked
                                            if counts[t] >= min_freq and t not in specials]
        self.stoi: dict = {token: i for i, token in enumerate(self.itos)}
        self.unk = unk

    @classmethod
    def characters(cls, text: str, specials: Sequence[str] = ()) -> "Vocabulary":
        """One token per character of ``text``."""
        return cls(text, specials)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    def encode(self, tokens: Iterable[Hashable]) -> np.ndarray:
        """The ids of ``tokens`` (a string is its characters), int64."""
        unk_id = None if self.unk is None else self.stoi[self.unk]
        ids = []
        for token in tokens:
            i = self.stoi.get(token, unk_id)
            if i is None:
                raise KeyError(f"Vocabulary.encode: {token!r} is not in the vocabulary (build it "
                               f"with unk= to map unknown tokens)")
            ids.append(i)
        return np.asarray(ids, dtype=np.int64)

    def decode(self, ids: Any, join: str = "") -> str:
        """The tokens of ``ids`` joined by ``join`` (characters: ``""``; words: ``" "``)."""
        values = ids.tolist() if isinstance(ids, (Tensor, np.ndarray)) else list(ids)
        if any(not 0 <= i < len(self.itos) for i in values):
            raise IndexError(f"Vocabulary.decode: ids must be in [0, {len(self.itos)})")
        return join.join(str(self.itos[i]) for i in values)

    def to_json(self) -> str:
        return json.dumps({"itos": self.itos, "unk": self.unk})

    @classmethod
    def from_json(cls, text: str) -> "Vocabulary":
        data = json.loads(text)
        vocab = cls(())
        vocab.itos = list(data["itos"])
        vocab.stoi = {token: i for i, token in enumerate(vocab.itos)}
        vocab.unk = data.get("unk")
        return vocab

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens: {self.itos[:8]!r}{'...' if len(self) > 8 else ''})"


class NextTokenDataset(Dataset):
    """Windows of a token sequence: item i is (ids[s:s+L], ids[s+1:s+L+1]) with s = i * stride.

    The target is the input shifted by one token (language modelling). ``len`` is the number of
    full windows, (n - 1 - L) // stride + 1; ``stride`` defaults to ``seq_len`` (no overlap).
    """

    def __init__(self, ids: Any, seq_len: int, stride: Optional[int] = None) -> None:
        data = ids.numpy() if isinstance(ids, Tensor) else np.asarray(ids)
        if data.ndim != 1 or data.dtype.kind not in "iu":
            raise ValueError(f"NextTokenDataset: ids must be a 1-D integer sequence, got "
                             f"{data.dtype} of shape {data.shape}")
        stride = seq_len if stride is None else stride
        if seq_len < 1 or stride < 1:
            raise ValueError(f"NextTokenDataset: seq_len={seq_len} and stride={stride} must be "
                             f">= 1")
        if len(data) < seq_len + 1:
            raise ValueError(f"NextTokenDataset: {len(data)} tokens are too few for one window "
                             f"of {seq_len} plus its next token")
        self.ids, self.seq_len, self.stride = data.astype(np.int64), seq_len, stride

    def __len__(self) -> int:
        return (len(self.ids) - 1 - self.seq_len) // self.stride + 1

    def __getitem__(self, index: int) -> tuple:
        if not -len(self) <= index < len(self):
            raise IndexError(f"NextTokenDataset: index {index} out of range for {len(self)} "
                             f"windows")
        start = (index % len(self)) * self.stride
        window = self.ids[start:start + self.seq_len + 1]
        return Tensor._from_array(window[:-1].copy()), Tensor._from_array(window[1:].copy())


def pad_sequences(sequences: Sequence[Any], padding_value: float = 0,
                  batch_first: bool = True) -> tuple[Tensor, Tensor]:
    """Stack sequences of different lengths (each ``(L_i, *rest)``) into ``(N, L_max, *rest)``
    (``batch_first=False``: ``(L_max, N, *rest)``, torch's ``pad_sequence`` default), filled with
    ``padding_value``; also the lengths (N,) int64."""
    arrays = [s.numpy() if isinstance(s, Tensor) else np.asarray(s) for s in sequences]
    if not arrays:
        raise ValueError("pad_sequences: no sequences given")
    rest = {a.shape[1:] for a in arrays}
    if len(rest) > 1 or min(a.ndim for a in arrays) < 1:
        raise ValueError(f"pad_sequences: every sequence must be (L_i, *rest) with the same "
                         f"rest, got shapes {[a.shape for a in arrays]}")
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    dtype = np.result_type(*arrays)
    out = np.full((len(arrays), int(lengths.max())) + arrays[0].shape[1:], padding_value,
                  dtype=dtype)
    for row, a in zip(out, arrays):
        row[:len(a)] = a
    if not batch_first:
        out = np.ascontiguousarray(np.swapaxes(out, 0, 1))
    return Tensor._from_array(out), Tensor._from_array(lengths)


def padding_mask(lengths: Any, max_len: Optional[int] = None) -> Tensor:
    """(N, L) bool, True at the padded positions (t >= length): ``key_padding_mask``'s
    convention in ``nn.MultiheadAttention``; ``~mask`` marks the real tokens."""
    values = lengths.numpy() if isinstance(lengths, Tensor) else np.asarray(lengths)
    longest = int(values.max()) if max_len is None else max_len
    return Tensor._from_array(np.arange(longest)[None, :] >= values[:, None])


def pad_collate(batch: Sequence[Any], padding_value: float = 0) -> tuple:
    """A ``collate_fn`` for samples of different lengths: each sample a tuple of fields; a field
    whose items are sequences of different lengths is padded to (N, L_max, ...) with
    ``padding_value``, the others are stacked as usual. Returns the fields, then the lengths of
    the first field (N,) int64: ``x, y, lengths = batch`` (``padding_mask(lengths)`` gives the
    mask)."""
    from chainrule.data.loader import default_collate

    if not batch:
        raise ValueError("pad_collate: empty batch")
    samples = [s if isinstance(s, (tuple, list)) else (s,) for s in batch]
    fields, lengths = [], None
    for column in zip(*samples):
        arrays = [c.numpy() if isinstance(c, Tensor) else np.asarray(c) for c in column]
        ragged = all(a.ndim >= 1 for a in arrays) and len({a.shape for a in arrays}) > 1
        if ragged:
            padded, field_lengths = pad_sequences(arrays, padding_value)
            fields.append(padded)
        else:
            fields.append(default_collate(list(column)))
            field_lengths = Tensor._from_array(np.array([len(a) if a.ndim else 1 for a in arrays],
                                                        dtype=np.int64))
        if lengths is None:
            lengths = field_lengths
    return (*fields, lengths)
