"""Surrogate gradients for the Heaviside spike function.

The forward pass of every surrogate here is the Heaviside step ``H(x) = 1 if x > 0 else 0``
(strictly greater, as in Yin et al.'s reference code and Lava's LIF); only the backward pass
differs. Any ``snntorch.surrogate`` function (for example ``snntorch.surrogate.atan()``) has the
same call signature ``spike_fn(x) -> spikes`` and can be passed wherever ``spike_grad`` is taken.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Protocol, runtime_checkable

import torch
from torch import Tensor

SpikeFn = Callable[[Tensor], Tensor]


def multi_gaussian_grad(x: Tensor, sigma: float, height: float, scale: float, gamma: float) -> Tensor:
    """Derivative used in the backward pass (Yin, Corradi and Bohte 2021, eq. 9)::

        dS/dx = gamma * [ (1 + h) N(x; 0, sigma) - h N(x; sigma, s*sigma) - h N(x; -sigma, s*sigma) ]

    with N(x; mu, sd) the normal density, h = ``height`` and s = ``scale``.
    """
    # The same sum with its constants folded into Python floats: this runs in every backward step,
    # and folding halves its tensor operations (N(x; mu, sd) = exp(-(x - mu)^2 / (2 sd^2)) / (sqrt(2 pi) sd)).
    wide = scale * sigma
    narrow_peak = gamma * (1.0 + height) / (math.sqrt(2.0 * math.pi) * sigma)
    wide_peak = gamma * height / (math.sqrt(2.0 * math.pi) * wide)
    narrow_rate, wide_rate = -0.5 / sigma**2, -0.5 / wide**2
    # In place on fresh temporaries: this is elementwise over every neuron and step of a batch, and
    # each pass over the array costs about as much as its arithmetic.
    side_lobes = (x - sigma).square_().mul_(wide_rate).exp_().add_((x + sigma).square_().mul_(wide_rate).exp_())
    return x.square().mul_(narrow_rate).exp_().mul_(narrow_peak).sub_(side_lobes.mul_(wide_peak))


def multi_gaussian_primitive(x: Tensor, sigma: float, height: float, scale: float, gamma: float) -> Tensor:
    """Smooth primitive of :func:`multi_gaussian_grad` (sums of normal CDFs), for gradient tests."""

    def cdf(z: Tensor, mu: float, sd: float) -> Tensor:
        return 0.5 * (1.0 + torch.erf((z - mu) / (sd * math.sqrt(2.0))))

    wide = scale * sigma
    return gamma * (
        (1.0 + height) * cdf(x, 0.0, sigma) - height * cdf(x, sigma, wide) - height * cdf(x, -sigma, wide)
    )


class _MultiGaussianSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, sigma: float, height: float, scale: float, gamma: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.constants = (sigma, height, scale, gamma)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (x,) = ctx.saved_tensors
        return grad_output * multi_gaussian_grad(x, *ctx.constants), None, None, None, None


@runtime_checkable
class Surrogate(Protocol):
    """A spike function the hand-written engines differentiate without autograd: ``__call__`` is the
    Heaviside forward (with its autograd backward), ``derivative(x)`` the surrogate gradient
    ``dS/dx`` itself (``rc_snn.training.bptt`` and the compiled kernels read it). Other spike
    functions (snnTorch's) are differentiated through autograd there."""

    def __call__(self, x: Tensor) -> Tensor: ...

    def derivative(self, x: Tensor) -> Tensor: ...


@dataclass(frozen=True)
class MultiGaussian:
    """Heaviside forward, multi-Gaussian backward (:func:`multi_gaussian_grad`); a :class:`Surrogate`."""

    sigma: float = 0.5
    height: float = 0.15
    scale: float = 6.0
    gamma: float = 0.5

    def __post_init__(self) -> None:
        if self.sigma <= 0 or self.scale <= 0:
            raise ValueError(f"expected sigma > 0 and scale > 0; got sigma={self.sigma}, scale={self.scale}")

    def __call__(self, x: Tensor) -> Tensor:
        return _MultiGaussianSpike.apply(x, self.sigma, self.height, self.scale, self.gamma)

    def derivative(self, x: Tensor) -> Tensor:
        return multi_gaussian_grad(x, self.sigma, self.height, self.scale, self.gamma)


def multi_gaussian(sigma: float = 0.5, height: float = 0.15, scale: float = 6.0, gamma: float = 0.5) -> MultiGaussian:
    """Heaviside forward, multi-Gaussian backward; defaults are the reference code's values.

    Callable with snnTorch's surrogate signature, so it is interchangeable with
    ``snntorch.surrogate.atan()`` and friends.
    """
    return MultiGaussian(sigma, height, scale, gamma)


def resolve(spike_grad: SpikeFn | str | None) -> SpikeFn:
    """A spike function from a callable, a name of an ``snntorch.surrogate`` factory, or None (default)."""
    if spike_grad is None or spike_grad == "multi_gaussian":
        return multi_gaussian()
    if callable(spike_grad):
        return spike_grad
    if isinstance(spike_grad, str):
        from snntorch import surrogate as snn_surrogate

        factory = getattr(snn_surrogate, spike_grad, None)
        if factory is None or not callable(factory):
            raise ValueError(f"unknown surrogate {spike_grad!r}: expected 'multi_gaussian' or an snntorch.surrogate name")
        return factory()
    raise ValueError(f"expected a callable spike_grad or a surrogate name; got {type(spike_grad).__name__}")


def surrogate_vjp(spike_fn, v: Tensor, grad: Tensor) -> Tensor:
    """``grad * sigma'(v)``: from the spike function's ``derivative`` if it is a
    :class:`~rc_snn.neuron.surrogate.Surrogate` (rc-snn's own), else autograd
    (any snnTorch surrogate)."""
    if isinstance(spike_fn, Surrogate):
        return grad * spike_fn.derivative(v)
    with torch.enable_grad():
        v = v.detach().requires_grad_(True)
        (result,) = torch.autograd.grad(spike_fn(v), v, grad)
    return result


def surrogate_derivative(spike_fn, v: Tensor) -> Tensor:
    """``sigma'(v)`` itself: the spike function's ``derivative`` if it is a ``Surrogate``, else autograd."""
    return spike_fn.derivative(v) if isinstance(spike_fn, Surrogate) else surrogate_vjp(spike_fn, v, torch.ones_like(v))
