"""chainrule.ops.buffers: host buffers (the tensor's own memory when possible), write_back, and
the flat buckets of pack/unpack."""

import numpy as np
import pytest

import chainrule as cr
from chainrule.ops import buffers

STRICT = "array_api_strict"


def test_host_buffer_is_the_tensors_own_memory_when_c_contiguous_and_writeable():
    t = cr.tensor(np.arange(6.0).reshape(2, 3))
    buffer = buffers.host_buffer(t)
    assert buffer is t.data
    buffer[0, 0] = 42.0  # a collective writing here changes the tensor with no copy
    assert t.data[0, 0] == 42.0


@pytest.mark.parametrize("make", [
    pytest.param(lambda: cr.tensor(np.arange(6.0).reshape(2, 3)).T, id="transposed"),
    pytest.param(lambda: cr.tensor(np.arange(12.0).reshape(3, 4))[:, ::2], id="strided"),
    pytest.param(lambda: cr.Tensor._from_array(np.asfortranarray(np.arange(6.0).reshape(2, 3))),
                 id="fortran"),
])
def test_host_buffer_copies_a_non_contiguous_array(make):
    t = make()
    buffer = buffers.host_buffer(t)
    assert buffer is not t.data and not np.shares_memory(buffer, t.data)
    assert buffer.flags.c_contiguous and buffer.flags.writeable
    np.testing.assert_array_equal(buffer, t.data)


def test_host_buffer_refuses_read_only_memory_for_writing_and_reads_it_for_sending():
    array = np.arange(4.0)
    array.flags.writeable = False
    t = cr.Tensor._from_array(array)
    with pytest.raises(ValueError, match="read-only"):
        buffers.host_buffer(t)
    assert buffers.host_buffer(t, write=False) is array  # all_gather only reads it


def test_write_back_into_the_own_buffer_only_bumps_the_version():
    t = cr.tensor(np.arange(3.0))
    before = t.version
    buffer = buffers.host_buffer(t)
    buffer *= 2
    assert buffers.write_back(t, buffer) is t
    assert t.version == before + 1
    np.testing.assert_array_equal(t.data, [0.0, 2.0, 4.0])


def test_write_back_into_a_view_changes_its_base_and_bumps_the_shared_version():
    base = cr.tensor(np.arange(6.0).reshape(2, 3))
    view = base.T
    before = base.version
    buffer = buffers.host_buffer(view)
    buffer[...] = -buffer
    buffers.write_back(view, buffer)
    np.testing.assert_array_equal(base.data, -np.arange(6.0).reshape(2, 3))
    assert view.version == base.version == before + 1


def test_write_back_on_array_api_strict():
    t = cr.tensor(np.arange(6.0).reshape(2, 3), device=STRICT)
    before = t.version
    buffer = buffers.host_buffer(t)
    assert type(buffer) is np.ndarray and buffer.flags.c_contiguous
    buffer += 10
    out = buffers.write_back(t, buffer)
    assert out is t and t.device.type == STRICT and t.version == before + 1
    np.testing.assert_array_equal(np.asarray(t.to("cpu").data),
                                  np.arange(6.0).reshape(2, 3) + 10)


@pytest.mark.parametrize("device", ["cpu", STRICT])
def test_pack_unpack_round_trip_with_none_as_zeros(device):
    shapes = [(2, 3), (), (4,), (1, 2, 2)]
    rng = np.random.default_rng(0)
    values = [rng.standard_normal(shape).astype(np.float32) for shape in shapes]
    tensors = [cr.tensor(v, device=device) for v in values]
    sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes]
    grads = [tensors[0], None, tensors[2], None]  # None: a parameter that got no gradient
    flat = buffers.pack(grads, sizes, np.float32)
    assert flat.shape == (sum(sizes),) and flat.dtype == np.float32
    want = np.concatenate([values[0].ravel(), np.zeros(1), values[2].ravel(), np.zeros(4)])
    np.testing.assert_array_equal(flat, want.astype(np.float32))
    out = buffers.unpack(flat, tensors)
    assert [tuple(t.shape) for t in out] == shapes
    assert all(t.device.type == tensors[0].device.type for t in out)
    for t, value, grad in zip(out, values, grads):
        host = np.asarray(t.to("cpu").data)
        np.testing.assert_array_equal(host, value if grad is not None else np.zeros_like(value))


def test_pack_casts_to_the_bucket_dtype():
    flat = buffers.pack([cr.tensor(np.array([1, 2], dtype=np.int64))], [2], np.float64)
    assert flat.dtype == np.float64
    np.testing.assert_array_equal(flat, [1.0, 2.0])


def test_unpack_gives_views_of_the_flat_buffer_on_the_host():
    like = [cr.zeros(2, 2), cr.zeros(3)]
    flat = np.arange(7.0)
    out = buffers.unpack(flat, like)
    assert all(np.shares_memory(t.data, flat) for t in out)
    flat[:] = -1.0  # writing the bucket (the reduction's result) is seen through the views
    assert all((t.data == -1.0).all() for t in out)
    np.testing.assert_array_equal(out[1].data, [-1.0, -1.0, -1.0])


def test_host_array_and_empty():
    array = np.arange(3)
    assert buffers.host_array(array) is array
    strict = cr.tensor(np.arange(3.0), device=STRICT).data
    assert type(buffers.host_array(strict)) is np.ndarray
    np.testing.assert_array_equal(buffers.host_array(strict), [0.0, 1.0, 2.0])
    receive = buffers.empty((2, 3), np.int32)
    assert receive.shape == (2, 3) and receive.dtype == np.int32 and type(receive) is np.ndarray
