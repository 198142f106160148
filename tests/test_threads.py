"""State is per thread: traces, no_grad and open Tape blocks of one thread never touch another thread's work."""
import threading

import numpy as np

import gpuad
import gpuad.numpy as gnp


def _f(x):
    return gnp.sum(gnp.sin(x) * x)


def _df(x):
    return np.cos(x) * x + np.sin(x)


def _run_in_thread(fn):
    result, error = {}, []

    def target():
        try:
            result["value"] = fn()
        except BaseException as e:  # surfaced in the main thread
            error.append(e)

    thread = threading.Thread(target=target)
    thread.start()
    return thread, result, error


def test_no_grad_and_open_tape_in_one_thread_do_not_touch_another_threads_gradients():
    x = np.linspace(0.1, 1.0, 7)
    holding, release = threading.Event(), threading.Event()

    def holder():
        # Holds no_grad and an open Tape (with a watched value) while the other thread differentiates.
        with gpuad.Tape() as tape:
            a = tape.watch(np.ones(3))
            with gpuad.no_grad():
                holding.set()
                release.wait(10)
                b = a * 2.0  # not recorded: no_grad in this thread
            c = a * 3.0
            return tape.gradient(gnp.sum(c), a), type(b) is not gpuad.Tensor and not isinstance(b, gpuad.Tensor)

    thread, result, error = _run_in_thread(holder)
    assert holding.wait(10)
    try:
        for _ in range(3):  # the other thread's no_grad and open Tape are in force meanwhile
            np.testing.assert_allclose(gpuad.grad(_f)(x), _df(x), rtol=1e-13)
            with gpuad.Tape() as tape:
                t = tape.watch(x)
                y = _f(t)
            np.testing.assert_allclose(tape.gradient(y, t), _df(x), rtol=1e-13)
            np.testing.assert_allclose(gpuad.jvp(_f, (x,), (np.ones_like(x),))[1], np.sum(_df(x)), rtol=1e-13)
    finally:
        release.set()
        thread.join(10)
    assert not error, error
    grad_a, b_untraced = result["value"]
    np.testing.assert_allclose(grad_a, 3.0 * np.ones(3))
    assert b_untraced


def test_an_open_tape_does_not_record_other_threads_operations():
    x = np.linspace(0.1, 1.0, 5)
    with gpuad.Tape() as tape:
        t = tape.watch(x)
        before = len(tape.entries)

        def other():  # uses the tape's value from another thread: a constant there
            return gpuad.grad(lambda w: gnp.sum(w * t))(x)

        thread, result, error = _run_in_thread(other)
        thread.join(10)
        assert not error, error
        assert len(tape.entries) == before
        np.testing.assert_allclose(result["value"], x)  # d/dw sum(w * t) = t, with t a constant
        y = gnp.sum(t * t)
    np.testing.assert_allclose(tape.gradient(y, t), 2 * x)


def test_many_threads_compute_gradients_at_once():
    xs = [np.linspace(0.1 * k, 1.0 + k, 9) for k in range(1, 7)]
    barrier = threading.Barrier(len(xs))

    def work(x):
        def run():
            barrier.wait(10)
            out = []
            for _ in range(20):
                with gpuad.Tape() as tape:
                    t = tape.watch(x)
                    y = _f(t)
                out.append(tape.gradient(y, t))
                out.append(gpuad.grad(gpuad.grad(lambda v: gnp.sin(v)))(x[0]))
            return out
        return run

    runs = [_run_in_thread(work(x)) for x in xs]
    for (thread, result, error), x in zip(runs, xs):
        thread.join(30)
        assert not error, error
        for k, value in enumerate(result["value"]):
            if k % 2 == 0:
                np.testing.assert_allclose(value, _df(x), rtol=1e-13)
            else:
                np.testing.assert_allclose(value, -np.sin(x[0]), rtol=1e-13)


def test_watch_leaves_the_callers_tensor_unchanged():
    x = gpuad.tensor(np.array([1.0, 2.0]))
    with gpuad.Tape() as tape:
        same = tape.watch(x)
        y = gnp.sum(x * x)
    assert same is x and x._trace is None  # watched by identity, not boxed in place
    np.testing.assert_allclose(tape.gradient(y, x), [2.0, 4.0])
    with gpuad.Tape() as other:  # a second tape can watch the same tensor independently
        z = gnp.sum(x * 3.0)
    np.testing.assert_allclose(other.gradient(z, x), [3.0, 3.0])


def test_a_tensor_made_before_the_block_is_watched_at_its_first_use():
    x = gpuad.tensor(2.0)
    with gpuad.Tape() as tape:
        y = x * x * x
    assert float(tape.gradient(y, x)) == 12.0


def test_nested_tapes_watch_outer_values_without_changing_them():
    x = gpuad.tensor(1.5)
    with gpuad.Tape() as outer:
        with gpuad.Tape() as inner:
            y = gnp.sin(x) * x
        dy = inner.gradient(y, x)
    d2y = outer.gradient(dy, x)
    np.testing.assert_allclose(float(d2y), -np.sin(1.5) * 1.5 + 2 * np.cos(1.5))
