"""Surrogate spike functions: Heaviside forward, documented backward, snnTorch interchangeability."""

import math

import pytest
import torch

from rc_snn.neuron.surrogate import multi_gaussian, multi_gaussian_grad, multi_gaussian_primitive, resolve

PARAM_SETS = [
    dict(sigma=0.5, height=0.15, scale=6.0, gamma=0.5),  # the reference code's defaults
    dict(sigma=0.3, height=0.4, scale=2.0, gamma=1.0),
]


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


def finite_difference(fn, x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    return (fn(x + eps) - fn(x - eps)) / (2 * eps)


def surrogate_backward(spike_fn, x: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    spike_fn(x).sum().backward()
    return x.grad


def test_forward_is_strict_heaviside():
    x = torch.tensor([-1.0, -1e-7, 0.0, 1e-7, 2.0])
    assert torch.equal(multi_gaussian()(x), torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0]))


@pytest.mark.parametrize("params", PARAM_SETS)
def test_backward_equals_finite_difference_of_primitive(params):
    x = torch.cat([torch.linspace(-6.0, 6.0, 241, dtype=torch.float64), torch.randn(200, dtype=torch.float64) * 2])
    grad = surrogate_backward(multi_gaussian(**params), x)
    numeric = finite_difference(lambda z: multi_gaussian_primitive(z, **params), x)
    torch.testing.assert_close(grad, numeric, rtol=1e-6, atol=1e-9)
    # The surrogate has the documented negative side lobes (the "multi" in multi-Gaussian).
    assert grad.min() < 0 < grad.max()


def test_backward_scales_the_incoming_gradient():
    x = torch.randn(50, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(50, dtype=torch.float64)
    (multi_gaussian()(x) * weights).sum().backward()
    torch.testing.assert_close(x.grad, weights * multi_gaussian_grad(x.detach(), 0.5, 0.15, 6.0, 0.5))


def test_finite_difference_check_has_teeth():
    """A primitive with other constants does not match: the comparison above can fail."""
    x = torch.linspace(-3.0, 3.0, 61, dtype=torch.float64)
    grad = surrogate_backward(multi_gaussian(**PARAM_SETS[0]), x)
    wrong = finite_difference(lambda z: multi_gaussian_primitive(z, **PARAM_SETS[1]), x)
    assert not torch.allclose(grad, wrong, rtol=1e-3, atol=1e-6)


def test_gradient_at_zero_has_closed_form():
    sigma, height, scale, gamma = 0.5, 0.15, 6.0, 0.5
    wide = scale * sigma
    peak = (1 + height) / (math.sqrt(2 * math.pi) * sigma)
    lobes = 2 * height * math.exp(-(sigma**2) / (2 * wide**2)) / (math.sqrt(2 * math.pi) * wide)
    grad = surrogate_backward(multi_gaussian(), torch.zeros(1, dtype=torch.float64))
    assert grad.item() == pytest.approx(gamma * (peak - lobes), rel=1e-12)


def test_dtype_is_kept():
    for dtype in (torch.float32, torch.float64):
        assert multi_gaussian()(torch.randn(3, dtype=dtype)).dtype == dtype


def test_snntorch_surrogate_is_accepted_and_gives_its_own_gradient():
    from snntorch import surrogate as snn_surrogate

    atan = snn_surrogate.atan(alpha=2.0)
    assert resolve(atan) is atan
    x = torch.linspace(-2.0, 2.0, 41)
    grad = surrogate_backward(resolve(atan), x)
    # snnTorch's ATan: dS/dx = (alpha / 2) / (1 + (pi / 2 * alpha * x)^2)
    expected = 1.0 / (1.0 + (math.pi * x) ** 2)
    torch.testing.assert_close(grad, expected)
    assert not torch.allclose(grad, surrogate_backward(multi_gaussian(), x), atol=1e-3)
    assert torch.equal(resolve(atan)(x), multi_gaussian()(x))


def test_resolve_names_and_default():
    x = torch.linspace(-2.0, 2.0, 41)
    default = surrogate_backward(resolve(None), x)
    torch.testing.assert_close(default, multi_gaussian_grad(x, 0.5, 0.15, 6.0, 0.5))
    torch.testing.assert_close(surrogate_backward(resolve("multi_gaussian"), x), default)
    torch.testing.assert_close(surrogate_backward(resolve("atan"), x), 1.0 / (1.0 + (math.pi * x) ** 2))


def test_bad_surrogates_raise_value_error():
    with pytest.raises(ValueError, match="unknown surrogate"):
        resolve("no_such_surrogate")
    with pytest.raises(ValueError, match="callable"):
        resolve(3)
    with pytest.raises(ValueError, match="sigma > 0"):
        multi_gaussian(sigma=0.0)
    with pytest.raises(ValueError, match="scale > 0"):
        multi_gaussian(scale=-1.0)


def test_ours_is_a_surrogate_with_a_derivative_and_snntorchs_goes_through_autograd():
    from snntorch import surrogate as snn_surrogate

    from rc_snn.neuron.surrogate import Surrogate

    x = torch.linspace(-1, 1, 9, dtype=torch.float64)
    ours = multi_gaussian()
    assert isinstance(ours, Surrogate) and not isinstance(snn_surrogate.atan(), Surrogate)
    torch.testing.assert_close(ours.derivative(x), surrogate_backward(ours, x))
