"""Vocabulary, NextTokenDataset, pad_sequences, padding_mask."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import chainrule as cr
from chainrule.data import DataLoader, NextTokenDataset, Vocabulary, pad_sequences, padding_mask


def test_character_vocabulary_orders_by_count_then_first_appearance():
    vocab = Vocabulary.characters("abracadabra", specials=("<pad>",))
    assert vocab.itos == ["<pad>", "a", "b", "r", "c", "d"]  # a:5, b:2, r:2 (b first), c, d
    assert vocab.encode("cab").tolist() == [4, 1, 2]
    assert vocab.decode(vocab.encode("abracadabra")) == "abracadabra"
    with pytest.raises(KeyError, match="'z' is not in the vocabulary"):
        vocab.encode("z")
    words = Vocabulary("the cat the dog".split(), specials=("<unk>",), unk="<unk>")
    assert words.encode(["the", "bird"]).tolist() == [1, 0]
    assert words.decode([1, 2], join=" ") == "the cat"
    again = Vocabulary.from_json(words.to_json())
    assert again.itos == words.itos and again.unk == "<unk>"


@given(st.text(min_size=1, max_size=60))
def test_encode_decode_round_trip(text):
    vocab = Vocabulary.characters(text)
    assert vocab.decode(vocab.encode(text)) == text
    assert len(vocab) == len(set(text))


def test_next_token_windows_shift_by_one():
    ids = np.arange(20)
    data = NextTokenDataset(ids, seq_len=6)
    assert len(data) == 3  # starts 0, 6, 12: the last needs ids up to 18
    x, y = data[2]
    assert x.tolist() == list(range(12, 18)) and y.tolist() == list(range(13, 19))
    assert len(NextTokenDataset(ids, seq_len=6, stride=2)) == 7
    batches = list(DataLoader(data, batch_size=2))
    assert batches[0][0].shape == (2, 6) and batches[0][0].dtype == np.int64
    with pytest.raises(ValueError, match="too few"):
        NextTokenDataset(np.arange(4), seq_len=4)
    with pytest.raises(IndexError):
        data[3]


def test_pad_sequences_matches_torch_and_the_mask_marks_the_padding():
    rng = np.random.default_rng(0)
    seqs = [rng.standard_normal((n, 3)) for n in (4, 1, 6)]
    padded, lengths = pad_sequences(seqs, padding_value=-1.0)
    expected = torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s in seqs],
                                               batch_first=True, padding_value=-1.0)
    np.testing.assert_array_equal(padded.numpy(), expected.numpy())
    assert lengths.tolist() == [4, 1, 6]
    time_major, _ = pad_sequences(seqs, batch_first=False)
    assert time_major.shape == (6, 3, 3)
    mask = padding_mask(lengths)
    assert mask.shape == (3, 6) and mask.dtype == np.bool_
    assert mask.numpy().sum(axis=1).tolist() == [2, 5, 0]
    with pytest.raises(ValueError, match="same rest"):
        pad_sequences([np.zeros((2, 3)), np.zeros((2, 4))])


def test_a_padded_batch_trains_an_lstm_with_the_mask():
    """Variable lengths by mask: the loss over real tokens only does not see the padding."""
    cr.manual_seed(0)
    lstm, head = cr.nn.LSTM(3, 5, batch_first=True), cr.nn.Linear(5, 2)
    seqs = [np.ones((n, 3)) * n for n in (2, 4)]
    padded, lengths = pad_sequences(seqs, padding_value=7.0)
    real = ~padding_mask(lengths).numpy()
    out = head(lstm(padded)[0])
    loss = cr.sum(cr.sum(out, axis=-1) * cr.tensor(real.astype(np.float32)))
    loss.backward()
    # the padding's value does not change the loss (outputs at t < length come before it)
    other, _ = pad_sequences(seqs, padding_value=-3.0)
    again = cr.sum(cr.sum(head(lstm(other)[0]), axis=-1) * cr.tensor(real.astype(np.float32)))
    assert again.item() == pytest.approx(loss.item(), rel=1e-6)


def test_pad_collate_pads_ragged_fields_for_a_data_loader():
    from chainrule.data import pad_collate

    samples = [(np.arange(n), np.int64(n % 2)) for n in (3, 5, 2, 4)]
    batches = list(DataLoader(samples, batch_size=2, collate_fn=pad_collate))
    x, y, lengths = batches[0]
    assert x.shape == (2, 5) and x.numpy()[0].tolist() == [0, 1, 2, 0, 0]
    assert y.tolist() == [1, 1] and lengths.tolist() == [3, 5]
    assert padding_mask(lengths).numpy()[0].tolist() == [False] * 3 + [True] * 2
    with pytest.raises(ValueError, match="empty"):
        pad_collate([])
