"""Threads: convolution, pooling and whole networks give bitwise the results of a serial run.

Every thread works on its own inputs, all of one shape (so any scratch buffer shared between
threads, which is keyed by shape, would be shared), the threads started together by a barrier.
Each case runs under ``no_grad`` and with grad on (then the gradients are compared too, taken
with ``autograd_grad`` so that the shared parameters' ``.grad`` is never written).
"""

import sys
import threading
import weakref

import numpy as np
import pytest
from threadpoolctl import threadpool_limits  # installed with scikit-learn

import chainrule as cr

THREADS, CALLS = 4, 16


def _in_threads(work, n_threads: int) -> list:
    """``work(t)`` for t in range(n_threads), each in its own thread, all at once; their results."""
    barrier = threading.Barrier(n_threads)
    results, errors = [None] * n_threads, []

    def run(t):
        try:
            barrier.wait()
            results[t] = work(t)
        except BaseException as error:  # re-raised below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(n_threads)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often (default 5 ms), so races show up every run
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    if errors:
        raise errors[0]
    return results


def _float32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------- the cases
# Each case: make(rng) -> (shared parameters, function of (params, one call's inputs) -> arrays,
# inputs(rng) -> one call's inputs). With grad on the function also returns the gradients.
def _op_case(op, param_shapes, x_shape, out_shape):
    """A functional op f(x, *params) with a random output gradient per call."""

    def make(rng):
        params = [cr.tensor(_float32(rng, *s), requires_grad=True) for s in param_shapes]

        def inputs(rng):
            return _float32(rng, *x_shape), _float32(rng, *out_shape)

        def call(params, grad, x, g):
            x = cr.tensor(x, requires_grad=grad)
            out = op(x, *params)
            if not grad:
                return [out.numpy()]
            grads = cr.autograd_grad(out, [x, *params], grad_outputs=cr.tensor(g))
            return [out.numpy()] + [grad.numpy() for grad in grads]

        return params, call, inputs

    return make


def _net_case(build, x_shape, n_classes):
    """A network with a cross-entropy loss; its parameters are shared by the threads."""

    def make(rng):
        cr.manual_seed(int(rng.integers(1 << 30)))
        net = build()

        def inputs(rng):
            return _float32(rng, *x_shape), rng.integers(0, n_classes, x_shape[0])

        def call(params, grad, x, labels):
            x = cr.tensor(x, requires_grad=grad)
            logits = net(x)
            loss = cr.cross_entropy(logits, cr.tensor(labels))
            if not grad:
                return [logits.numpy(), loss.numpy()]
            grads = cr.autograd_grad(loss, [x, *params])
            return [logits.numpy(), loss.numpy()] + [grad.numpy() for grad in grads]

        return list(net.parameters()), call, inputs

    return make


def _mlp():
    nn = cr.nn
    return nn.Sequential(nn.Linear(48, 64), nn.ReLU(), nn.Linear(64, 64), nn.Tanh(),
                         nn.Linear(64, 10))


def _cnn():
    nn = cr.nn
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                         nn.Flatten(), nn.Linear(16 * 4 * 4, 10))


CASES = {
    "conv2d": _op_case(lambda x, w, b: cr.conv2d(x, w, b, padding=1),
                       [(16, 8, 3, 3), (16,)], (4, 8, 16, 16), (4, 16, 16, 16)),
    "conv2d_strided": _op_case(lambda x, w: cr.conv2d(x, w, stride=2, padding=(1, 2)),
                               [(8, 8, 3, 3)], (8, 8, 20, 20), (8, 8, 10, 11)),
    "conv_transpose2d": _op_case(lambda x, w: cr.conv_transpose2d(x, w, padding=1),
                                 [(8, 6, 3, 3)], (4, 8, 16, 16), (4, 6, 16, 16)),
    "conv_transpose2d_strided": _op_case(
        lambda x, w: cr.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1),
        [(8, 6, 3, 3)], (8, 8, 10, 10), (8, 6, 20, 20)),
    "max_pool2d": _op_case(lambda x: cr.max_pool2d(x, 3, stride=2, padding=1), [], (8, 16, 20, 20),
                           (8, 16, 10, 10)),
    "avg_pool2d": _op_case(lambda x: cr.avg_pool2d(x, 3, stride=1, padding=1), [], (8, 16, 20, 20),
                           (8, 16, 20, 20)),
    "mlp": _net_case(_mlp, (32, 48), 10),
    "cnn": _net_case(_cnn, (4, 3, 16, 16), 10),
}


def _calls(case: str, grad: bool, n_threads: int, calls: int):
    """(serial results, threaded results): per thread, per call, a list of arrays."""
    rng = np.random.default_rng(sorted(CASES).index(case))
    params, call, make_inputs = CASES[case](rng)
    inputs = [[make_inputs(rng) for _ in range(calls)] for _ in range(n_threads)]  # all distinct

    def work(t):
        with cr.set_grad_enabled(grad):  # grad mode is per thread: set it in each one
            return [call(params, grad, *args) for args in inputs[t]]

    # one BLAS thread: 4 threads each running 2-thread OpenBLAS calls on 2 cores take 5x longer
    with threadpool_limits(1, user_api="blas"):
        serial = [work(t) for t in range(n_threads)]
        return serial, _in_threads(work, n_threads)


@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "grad"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_threads_give_the_serial_results_bitwise(case, grad):
    serial, threaded = _calls(case, grad, THREADS, CALLS)
    wrong = [(t, i) for t in range(THREADS) for i in range(CALLS)
             if not all(np.array_equal(a, b) for a, b in zip(serial[t][i], threaded[t][i]))]
    assert not wrong, f"{len(wrong)} of {THREADS * CALLS} calls differ from serial: {wrong[:8]}"


def test_a_threads_caches_go_when_it_ends():
    """A finished thread's workspace and saved columns are freed, even if its inputs live on."""
    import gc

    from chainrule.ops import conv

    x = cr.tensor(np.ones((2, 3, 8, 8), np.float32), requires_grad=True)
    w = cr.tensor(np.ones((4, 3, 3, 3), np.float32), requires_grad=True)
    held, caches = [], []

    def work(_):
        out = cr.conv2d(x, w, padding=1)  # keeps x's columns, in this thread's caches
        held.append(out)  # the graph, and so x's columns, would stay useful
        caches.extend(weakref.ref(cache) for cache in (conv._caches.workspace,
                                                      conv._caches.saved_columns))
        return conv._held_nbytes()

    (workspace, columns), = _in_threads(work, 1)
    assert workspace > 0 and columns > 0
    gc.collect()
    assert [cache() for cache in caches] == [None, None]
