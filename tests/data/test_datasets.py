"""load_digits, the IDX reader/writer (round trips and corrupt files) and the synthetic sets."""

import gzip
import os

import numpy as np
import pytest

import chainrule as cr
from chainrule.data import (
    DatasetError,
    datasets,
    four_points,
    load_digits,
    load_idx,
    read_idx,
    two_spirals,
    write_idx,
    xor,
)


# ------------------------------------------------------------------------------------ digits
def test_load_digits():
    images, labels = load_digits()
    assert isinstance(images, cr.Tensor) and isinstance(labels, cr.Tensor)
    assert images.shape == (1797, 1, 8, 8) and images.dtype == np.float32
    assert labels.shape == (1797,) and labels.dtype == np.int64
    assert images.data.min() == 0.0 and images.data.max() == 1.0
    assert sorted(set(labels.data.tolist())) == list(range(10))
    np.testing.assert_array_equal(images.data * 16, np.round(images.data * 16))  # grey levels 0..16


def _sklearn_digits():
    from sklearn.datasets import load_digits as sklearn_load_digits

    bunch = sklearn_load_digits()
    return bunch.images[:, None] / 16, bunch.target


def test_load_digits_reads_the_file_scikit_learn_reads():
    # the direct read (no sklearn import) gives exactly scikit-learn's arrays
    assert datasets._digits_table() is not None
    images, labels = load_digits()
    expected_images, expected_labels = _sklearn_digits()
    np.testing.assert_array_equal(images.numpy(), expected_images.astype(np.float32))
    np.testing.assert_array_equal(labels.numpy(), expected_labels)


@pytest.mark.parametrize("content", [None, b"not a table", b"1,2,3\n4,5,6\n"])
def test_load_digits_falls_back_to_scikit_learn(tmp_path, monkeypatch, content):
    # a scikit-learn whose file moved (None) or changed: sklearn.datasets.load_digits reads it
    path = tmp_path / "digits.csv.gz"
    if content is not None:
        path.write_bytes(gzip.compress(content))
    monkeypatch.setattr(datasets, "_digits_file", lambda: str(path))
    assert datasets._digits_table() is None
    images, labels = load_digits()
    expected_images, expected_labels = _sklearn_digits()
    np.testing.assert_array_equal(images.numpy(), expected_images.astype(np.float32))
    np.testing.assert_array_equal(labels.numpy(), expected_labels)


# ------------------------------------------------------------------------------------ IDX
def sample(n=5, h=4, w=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, h, w), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_load_idx_round_trip(tmp_path, suffix):
    pixels, digits = sample()
    write_idx(tmp_path / f"images{suffix}", pixels)
    write_idx(tmp_path / f"labels{suffix}", digits)
    if suffix:
        assert (tmp_path / "images.gz").read_bytes()[:2] == b"\x1f\x8b"
    images, labels = load_idx(tmp_path / f"images{suffix}", str(tmp_path / f"labels{suffix}"))
    assert images.shape == (5, 1, 4, 3) and images.dtype == np.float32
    assert labels.shape == (5,) and labels.dtype == np.int64
    np.testing.assert_allclose(images.data[:, 0], pixels / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(labels.data, digits)
    assert 0.0 <= images.data.min() and images.data.max() <= 1.0


def test_idx_header_is_the_mnist_one(tmp_path):
    pixels, digits = sample(n=2, h=28, w=28)
    write_idx(tmp_path / "i", pixels)
    write_idx(tmp_path / "l", cr.tensor(digits.astype(np.int64)), dtype="uint8")
    raw = (tmp_path / "i").read_bytes()
    assert raw[:16] == bytes.fromhex("00000803" "00000002" "0000001c" "0000001c")
    assert len(raw) == 16 + 2 * 28 * 28
    assert (tmp_path / "l").read_bytes()[:8] == bytes.fromhex("00000801" "00000002")


def test_gzip_detected_by_magic_bytes_and_uncompressed_gz_accepted(tmp_path):
    pixels, digits = sample()
    write_idx(tmp_path / "images.idx", pixels, compress=True)  # gzip without the suffix
    write_idx(tmp_path / "labels.gz", digits, compress=False)  # a .gz name on a raw file
    images, labels = load_idx(tmp_path / "images.idx", tmp_path / "labels.gz")
    np.testing.assert_array_equal(labels.data, digits)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
def test_read_idx_round_trips_every_type(tmp_path, dtype):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    if dtype == "uint8":
        array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", array)
    back = read_idx(tmp_path / "a.gz")
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, array)


def test_write_idx_is_atomic_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "labels"
    write_idx(target, np.arange(3, dtype=np.uint8))
    write_idx(target, np.arange(4, dtype=np.uint8))  # replaces the file
    assert os.listdir(target.parent) == ["labels"]
    assert read_idx(target).tolist() == [0, 1, 2, 3]


def test_write_idx_failure_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "labels"
    write_idx(target, np.arange(3, dtype=np.uint8))

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_idx(target, np.arange(9, dtype=np.uint8))
    assert os.listdir(tmp_path) == ["labels"] and read_idx(target).tolist() == [0, 1, 2]


def test_write_idx_errors(tmp_path):
    with pytest.raises(TypeError, match="IDX cannot store int64.*dtype='uint8'"):
        write_idx(tmp_path / "x", np.arange(3))
    with pytest.raises(ValueError, match="do not fit in uint8"):
        write_idx(tmp_path / "x", np.array([0, 300]), dtype="uint8")
    with pytest.raises(ValueError, match="non-integer"):
        write_idx(tmp_path / "x", np.array([0.5]), dtype="uint8")
    with pytest.raises(ValueError, match="1 to 255 dimensions"):
        write_idx(tmp_path / "x", np.uint8(3))
    assert not (tmp_path / "x").exists()


def header(magic, *dims):
    return magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)


def write_pair(tmp_path, image_bytes, label_bytes, gz=False):
    images = tmp_path / ("images.gz" if gz else "images")
    labels = tmp_path / ("labels.gz" if gz else "labels")
    images.write_bytes(gzip.compress(image_bytes) if gz else image_bytes)
    labels.write_bytes(gzip.compress(label_bytes) if gz else label_bytes)
    return images, labels


GOOD_IMAGES = header(0x803, 2, 2, 2) + bytes(range(8))
GOOD_LABELS = header(0x801, 2) + bytes([3, 7])


def test_hand_made_files_load(tmp_path):
    images, labels = load_idx(*write_pair(tmp_path, GOOD_IMAGES, GOOD_LABELS))
    assert images.data.reshape(-1).tolist() == pytest.approx([v / 255 for v in range(8)])
    assert labels.data.tolist() == [3, 7]


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("images, labels, which, message", [
    (b"\x1f\x00\x08\x03" + GOOD_IMAGES[4:], GOOD_LABELS, "images",
     "bad magic number 0x1F000803: not an IDX file"),
    (GOOD_IMAGES, b"PK\x03\x04" + GOOD_LABELS[4:], "labels", "bad magic number 0x504B0304"),
    (GOOD_LABELS, GOOD_IMAGES, "images", "bad magic number 0x00000801.*swapped"),
    (header(0x0503, 2, 2, 2) + bytes(8), GOOD_LABELS, "images", "bad dtype code 0x05"),
    (header(0x0D03, 2, 2, 2) + bytes(32), GOOD_LABELS, "images",
     "bad magic number 0x00000D03 \\(float32"),
    (GOOD_IMAGES[:-1], GOOD_LABELS, "images",
     "truncated data: .*\\(2, 2, 2\\) \\(8 bytes\\).* only 7"),
    (GOOD_IMAGES, GOOD_LABELS[:6], "labels", "truncated header"),
    (GOOD_IMAGES, b"\x00\x00", "labels", "truncated: 2 bytes"),
    (GOOD_IMAGES + b"\x00", GOOD_LABELS, "images", "1 unexpected bytes after the data"),
])
def test_corrupt_files_are_refused(tmp_path, gz, images, labels, which, message):
    paths = write_pair(tmp_path, images, labels, gz)
    with pytest.raises(DatasetError, match=message) as info:
        load_idx(*paths)
    assert str(paths[0] if which == "images" else paths[1]) in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, cr.ChainruleError)


def test_count_mismatch_is_refused(tmp_path):
    images, labels = write_pair(tmp_path, GOOD_IMAGES, header(0x801, 3) + bytes(3))
    with pytest.raises(DatasetError,
                       match="count mismatch: .*images holds 2 images but .*labels holds 3 labels"):
        load_idx(images, labels)


def test_corrupt_gzip_is_refused(tmp_path):
    images, labels = write_pair(tmp_path, GOOD_IMAGES, GOOD_LABELS, gz=True)
    images.write_bytes(images.read_bytes()[:-6])
    with pytest.raises(DatasetError, match="images.gz: corrupt gzip data"):
        load_idx(images, labels)


def test_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_idx(tmp_path / "nope", tmp_path / "nope")


# ------------------------------------------------------------------------------------ synthetic
def test_xor():
    X, y = xor()
    assert X.dtype == np.float32 and y.dtype == np.int64
    assert X.data.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert y.data.tolist() == [0, 1, 1, 0]
    assert (X.data[:, 0].astype(int) ^ X.data[:, 1].astype(int)).tolist() == y.data.tolist()


def test_four_points():
    X, y = four_points()
    assert X.dtype == np.float32 and y.dtype == np.float32
    assert X.data.tolist() == [[-2, 0], [2, 0], [0, 2], [0, -2]]
    assert y.data.tolist() == [1, 1, -1, -1]
    np.testing.assert_array_equal(np.sign(X.data[:, 0] ** 2 - X.data[:, 1] ** 2), y.data)


def test_two_spirals():
    X, y = two_spirals()
    assert X.shape == (200, 2) and X.dtype == np.float32
    assert y.shape == (200,) and y.dtype == np.int64
    assert y.data.tolist() == [0] * 100 + [1] * 100
    # the second spiral is the first turned 180 degrees
    np.testing.assert_array_equal(X.data[100:], -X.data[:100])
    radius = np.hypot(*X.data[:100].T)
    assert radius[0] == pytest.approx(1) and radius[-1] == pytest.approx(1 / 13)
    assert np.all(np.diff(radius) < 0)
    angle = np.unwrap(np.arctan2(X.data[:100, 0], X.data[:100, 1]).astype(np.float64))
    assert angle[-1] - angle[0] == pytest.approx(6 * np.pi, abs=1e-5)  # three turns
    assert len({tuple(p) for p in X.data.tolist()}) == 200  # no point shared by the two classes


def test_two_spirals_noise_is_seeded():
    a, _ = two_spirals(50, noise=0.1, seed=3)
    b, _ = two_spirals(50, noise=0.1, seed=3)
    c, _ = two_spirals(50, noise=0.1, seed=4)
    clean, _ = two_spirals(50)
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(a.data, c.data) and not np.array_equal(a.data, clean.data)
    assert 0.05 < np.std(a.data - clean.data) < 0.15
    # no noise: the seed is unused
    np.testing.assert_array_equal(two_spirals(50, seed=9)[0].data, clean.data)
    assert two_spirals(1)[0].shape == (2, 2)


def test_two_spirals_errors():
    with pytest.raises(ValueError, match="n must be a positive int"):
        two_spirals(0)
    with pytest.raises(ValueError, match="noise"):
        two_spirals(10, noise=-1)
    with pytest.raises(ValueError, match="seed"):
        two_spirals(10, seed=-1)


# ------------------------------------------------------------------------------------ hostile files
def good_labels(tmp_path):
    (tmp_path / "labels").write_bytes(GOOD_LABELS)
    return tmp_path / "labels"


def test_files_that_are_not_regular_are_refused_unread(tmp_path):
    os.mkfifo(tmp_path / "fifo")  # opening it would block forever
    for path in ("/dev/zero", tmp_path / "fifo", tmp_path):
        with pytest.raises(DatasetError, match="not a regular file"):
            load_idx(path, good_labels(tmp_path))


def bounded(function, seconds=5.0, megabytes=64):
    """Run ``function``; assert it took at most ``seconds`` and allocated at most ``megabytes``."""
    import time
    import tracemalloc

    tracemalloc.start()
    started = time.perf_counter()
    try:
        function()
    finally:
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert elapsed < seconds and peak < megabytes << 20, (elapsed, peak)


def test_a_gzip_bomb_is_not_inflated(tmp_path):
    zeros = gzip.compress(bytes(16 << 20), compresslevel=9)  # 16 MiB in about 16 KiB
    bomb = tmp_path / "images.gz"
    one_image = header(0x803, 1, 8, 8) + bytes(64)
    bomb.write_bytes(gzip.compress(one_image) + zeros * 64)  # inflates to 1 GiB
    assert bomb.stat().st_size < 2 << 20

    def load():
        with pytest.raises(DatasetError, match="more than 1,048,576 unexpected bytes after"):
            load_idx(bomb, good_labels(tmp_path))

    bounded(load)


@pytest.mark.parametrize("gz", [False, True])
def test_a_header_claiming_huge_sizes_is_refused_before_allocating(tmp_path, gz):
    huge = header(0x803, 60_000, 60_000, 60_000) + bytes(100)
    big = header(0x803, 1_000, 1_000, 1_000) + bytes(100)  # 1 GB: under the cap, not in the file
    for data, message in ((huge, "more than the 1,073,741,824 bytes"), (big, "truncated data")):
        path = tmp_path / "images"
        path.write_bytes(gzip.compress(data) if gz else data)

        def load(path=path, message=message):
            with pytest.raises(DatasetError, match=message):
                load_idx(path, good_labels(tmp_path))

        bounded(load)
