"""The moving average of weights: its arithmetic, its warm-up, and swapping it in and out."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from nerbatch.weight_averaging import WeightAverage  # noqa: E402


def _expected_average(initial: np.ndarray, steps: list[np.ndarray], momentum: float) -> np.ndarray:
    average = initial.astype(np.float64)
    for n, value in enumerate(steps, start=1):
        m = min(momentum, (1 + n) / (10 + n))
        average = m * average + (1 - m) * value
    return average


def test_average_follows_the_warm_up_then_the_momentum_and_swaps_back() -> None:
    rng = np.random.default_rng(0)
    initial = {"w": rng.normal(size=(3, 4)), "b": rng.normal(size=(4,))}
    variables = {k: keras.Variable(v.astype("float32"), name=k) for k, v in initial.items()}
    averaging = WeightAverage(list(variables.values()), momentum=0.9)
    assert averaging.every == 1
    seen: dict[str, list[np.ndarray]] = {k: [] for k in variables}
    for _ in range(150):  # past the warm-up: (1 + n) / (10 + n) reaches 0.9 at n = 80
        for name, variable in variables.items():
            value = rng.normal(size=variable.shape).astype("float32")
            variable.assign(value)
            seen[name].append(value)
        averaging.update()
    trained = {k: v.numpy().copy() for k, v in variables.items()}
    with averaging.applied():
        for name, variable in variables.items():
            expected = _expected_average(initial[name].astype("float32"), seen[name], 0.9)
            np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-4, atol=1e-5)
            assert not np.allclose(variable.numpy(), trained[name])
    for name, variable in variables.items():
        np.testing.assert_array_equal(variable.numpy(), trained[name])


def test_on_a_short_run_the_average_forgets_the_initial_weights() -> None:
    # A fixed momentum of 0.999 would keep 0.999 ** 100 = 90% of the initial weights here.
    variable = keras.Variable(np.zeros(5, dtype="float32"))
    averaging = WeightAverage([variable], momentum=0.999)
    for _ in range(100):
        variable.assign(np.ones(5, dtype="float32"))
        averaging.update()
    with averaging.applied():
        assert np.all(variable.numpy() > 0.99)


def test_folding_every_few_steps_uses_the_momentum_of_the_steps_folded() -> None:
    variable = keras.Variable(np.zeros(3, dtype="float32"))
    averaging = WeightAverage([variable], momentum=0.999)
    assert averaging.every == 10  # a window of ~1,000 steps in ~100 snapshots
    for step in range(1, 16):
        variable.assign(np.full(3, 1.0 if step <= 10 else 2.0, dtype="float32"))
        averaging.update()
    # Folded at step 10 (10 steps at the momentum of step 10), then at validation (5 steps).
    m10 = (11 / 20) ** 10
    m5 = (16 / 25) ** 5
    expected = m5 * (m10 * 0.0 + (1 - m10) * 1.0) + (1 - m5) * 2.0
    with averaging.applied():
        np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-6)
    np.testing.assert_array_equal(variable.numpy(), [2.0, 2.0, 2.0])


def test_the_trained_values_come_back_even_after_an_error() -> None:
    variable = keras.Variable(np.zeros(2, dtype="float32"))
    averaging = WeightAverage([variable], momentum=0.5)
    variable.assign(np.full(2, 4.0, dtype="float32"))
    averaging.update()
    with pytest.raises(RuntimeError), averaging.applied():
        assert not np.allclose(variable.numpy(), 4.0)
        raise RuntimeError("validation failed")
    np.testing.assert_array_equal(variable.numpy(), [4.0, 4.0])


@pytest.mark.parametrize("momentum", [0.0, 1.0, -0.5, 1.5])
def test_momentum_must_be_strictly_between_0_and_1(momentum: float) -> None:
    with pytest.raises(ValueError, match="momentum"):
        WeightAverage([keras.Variable(np.zeros(1, dtype="float32"))], momentum=momentum)
