"""Character-level language models for ``chainrule train --model lstm|transformer``.

The text (``--dataset text:FILE``, or ``text`` for the corpus that ships with chainrule: its own
documentation) is read as characters. Its vocabulary is the characters it uses (``vocab.json``
in the run folder). The text is cut into train, validation and test parts in reading order
(the test part last, the validation part before it, with the fractions of the run's config),
and each part into windows of ``SEQ_LEN`` characters whose target is the next character
(:class:`~chainrule.data.NextTokenDataset`). A model maps (N, L) character ids to (N, V, L)
logits, so the usual cross-entropy (class axis 1) is the mean next-character loss, and
exp(loss) is the perplexity.

``generate`` continues a prompt one character at a time: it reads the last ``SEQ_LEN``
characters, then draws the next one from softmax(logits / temperature) (temperature 0: the most
likely character).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import numpy as np

import chainrule as cr
from chainrule import nn
from chainrule.data import NextTokenDataset, Vocabulary
from chainrule.engine.errors import ChainruleError

__all__ = ["SEQ_LEN", "TEXT_MODELS", "read_text", "text_splits", "build_language_model",
           "generate", "CharLSTM", "CharTransformer"]

SEQ_LEN = 64
TEXT_MODELS = ("lstm", "transformer")
CORPUS = Path(__file__).with_name("corpus.txt")  # chainrule's own documentation
MAX_TEXT_BYTES = 64 << 20
MAX_VOCABULARY = 10_000


class TextError(ChainruleError, ValueError):
    """A text that cannot be trained on (unreadable, not UTF-8, too short)."""


def read_text(dataset: str) -> str:
    """The characters of ``text`` (the bundled corpus) or ``text:FILE``."""
    path = CORPUS if dataset == "text" else Path(dataset[len("text:"):])
    try:
        if path.stat().st_size > MAX_TEXT_BYTES:
            raise TextError(f"{path}: larger than {MAX_TEXT_BYTES >> 20} MB")
        return path.read_bytes().decode("utf-8")
    except OSError as error:
        raise TextError(f"cannot read the text {path} ({error.strerror or error})") from None
    except UnicodeDecodeError as error:
        raise TextError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None


def text_splits(text: str, test_fraction: float, val_fraction: float
                ) -> tuple[list, Vocabulary]:
    """(train, validation, test) windows of ``text`` in reading order, and its vocabulary."""
    vocab = Vocabulary.characters(text)
    if len(vocab) > MAX_VOCABULARY:
        raise TextError(f"the text uses {len(vocab):,} different characters, more than the "
                        f"{MAX_VOCABULARY:,} a character model allows")
    ids = vocab.encode(text)
    n_test = int(round(len(ids) * test_fraction))
    n_val = int(round((len(ids) - n_test) * val_fraction))
    bounds = [0, len(ids) - n_test - n_val, len(ids) - n_test, len(ids)]
    parts = []
    for name, start, stop in zip(("training", "validation", "test"), bounds, bounds[1:]):
        if stop - start < SEQ_LEN + 1:
            raise TextError(f"the text has {len(ids):,} characters: its {name} part "
                            f"({stop - start}) is shorter than one window of {SEQ_LEN + 1}")
        parts.append(NextTokenDataset(ids[start:stop], SEQ_LEN))
    return parts, vocab


class CharLSTM(nn.Module):
    """Embedding (64) -> 2-layer LSTM -> Linear to the vocabulary; (N, L) ids -> (N, V, L)."""

    def __init__(self, vocabulary: int, embedding: int = 64, hidden: int = 128,
                 layers: int = 2) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocabulary, embedding)
        self.lstm = nn.LSTM(embedding, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, vocabulary)

    def forward(self, ids: Any) -> Any:
        out, _ = self.lstm(self.embedding(ids))
        return cr.swapaxes(self.head(out), 1, 2)


class CharTransformer(nn.Module):
    """Token and position embeddings (d = 128) -> pre-norm causal transformer encoder (2
    layers, 4 heads, feed-forward 256, dropout 0.1) -> LayerNorm -> Linear; (N, L) -> (N, V, L)."""

    def __init__(self, vocabulary: int, d_model: int = 128, heads: int = 4, layers: int = 2,
                 feed_forward: int = 256, max_len: int = SEQ_LEN) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocabulary, d_model)
        self.position = nn.Embedding(max_len, d_model)
        layer = nn.TransformerEncoderLayer(d_model, heads, feed_forward, dropout=0.1,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d_model))
        self.head = nn.Linear(d_model, vocabulary)

    def forward(self, ids: Any) -> Any:
        length = ids.shape[1]
        h = self.embedding(ids) + self.position(cr.arange(length, device=ids.device))
        return cr.swapaxes(self.head(self.encoder(h, is_causal=True)), 1, 2)


def build_language_model(kind: str, vocabulary: int, seed: int) -> nn.Module:
    cr.manual_seed(seed)  # the initial weights follow from the seed
    return CharLSTM(vocabulary) if kind == "lstm" else CharTransformer(vocabulary)


def generate(model: nn.Module, vocab: Vocabulary, prompt: str, tokens: int,
             temperature: float = 1.0, seed: Optional[int] = None) -> str:
    """``prompt`` continued by ``tokens`` characters drawn from the model."""
    if tokens < 0:
        raise ValueError(f"tokens={tokens} must be >= 0")
    if not (math.isfinite(temperature) and temperature >= 0):
        raise ValueError(f"temperature={temperature} must be a finite number >= 0")
    unknown = sorted({c for c in prompt if c not in vocab})
    if unknown:
        raise TextError(f"the prompt uses characters the run's text never had: {unknown!r}")
    ids = list(vocab.encode(prompt)) or [0]
    rng = np.random.default_rng(seed)
    model.eval()
    with cr.no_grad():
        for _ in range(tokens):
            context = cr.tensor(np.asarray([ids[-SEQ_LEN:]], dtype=np.int64))
            logits = model(context)[0, :, -1].numpy().astype(np.float64)
            if temperature == 0:
                ids.append(int(np.argmax(logits)))
                continue
            scaled = logits / temperature
            p = np.exp(scaled - scaled.max())
            ids.append(int(rng.choice(len(p), p=p / p.sum())))
    start = len(vocab.encode(prompt)) if prompt else 1
    return prompt + vocab.decode(ids[start:])
