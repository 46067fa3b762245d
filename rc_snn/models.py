"""The ALIF recurrent spiking network and the LSTM baseline, behind one step interface.

Both models expose

* ``forward(x_seq, state=None) -> (outputs [time, batch, classes], state)``: a full sequence;
* ``encode(x) -> currents``: the input projection of the first layer, for any leading axes, so a
  runner can project a chunk of steps in one matmul;
* ``step_encoded(current_t, state, params=None) -> (output_t, state)``: one step from an encoded
  input; ``params = step_params()`` (decays, fused biases) can be computed once per sequence and
  passed in, so a step-by-step runner does not recompute them (and their graph) every step;
* ``step(x_t, state)``, ``initial_state(batch_size)``.

State is a NamedTuple of ``[batch, ...]`` tensors owned by the caller (see :mod:`rc_snn.neuron.state`).
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from .neuron.alif import ALIFParams, ALIFState
from .neuron.layers import ALIFLayer, LeakyReadout
from .neuron.surrogate import SpikeFn, resolve
from .neuron.validation import check_sequence, check_step


class RSNNState(NamedTuple):
    layers: Tuple[ALIFState, ...]
    readout: Tensor  # m[t], [batch, classes]


class ALIFRSNN(nn.Module):
    """Stacked ALIF recurrent layers and a leaky readout (Yin et al. 2021's SRNN).

    Layer ``l+1`` receives layer ``l``'s spikes of the same step; the readout integrates the last
    layer's spikes. Its output ``m[t]`` is read as class scores (logits). Every layer shares
    ``params`` (:class:`~rc_snn.neuron.alif.ALIFParams`); the readout takes its ``tau_out``.
    """

    def __init__(
        self,
        n_inputs: int,
        n_hidden: Union[int, Sequence[int]],
        n_outputs: int,
        params: ALIFParams = ALIFParams(),
        *,
        spike_grad: Optional[SpikeFn] = None,
    ) -> None:
        super().__init__()
        sizes = [n_hidden] if isinstance(n_hidden, int) else list(n_hidden)
        if not sizes:
            raise ValueError("expected at least one hidden layer size")
        spike_fn = resolve(spike_grad)
        fan_in = [n_inputs] + sizes[:-1]
        self.layers = nn.ModuleList(
            ALIFLayer(n_in, n, params, spike_grad=spike_fn) for n_in, n in zip(fan_in, sizes)
        )
        self.readout = LeakyReadout(sizes[-1], n_outputs, tau=params.tau_out)
        self.n_inputs, self.n_outputs = n_inputs, n_outputs

    def initial_state(self, batch_size: int, *, device=None, dtype=None) -> RSNNState:
        layers = tuple(layer.initial_state(batch_size, device=device, dtype=dtype) for layer in self.layers)
        return RSNNState(layers, self.readout.initial_state(batch_size, device=device, dtype=dtype))

    def encode(self, x: Tensor) -> Tensor:
        return self.layers[0].w_in(x)

    def step_params(self):
        """Per-layer ``(alpha, rho)`` and the readout's ``alpha_o``: constant over a sequence."""
        return tuple(layer.decays() for layer in self.layers), self.readout.decay()

    def step_encoded(self, current: Tensor, state: RSNNState, params=None) -> Tuple[Tensor, RSNNState]:
        layer_decays, readout_alpha = params if params is not None else self.step_params()
        new_layers = []
        for index, (layer, layer_state) in enumerate(zip(self.layers, state.layers)):
            if index > 0:
                current = layer.w_in(new_layers[-1].s)
            new_layers.append(layer.step_current(current, layer_state, layer_decays[index]))
        m = self.readout.step(new_layers[-1].s, state.readout, readout_alpha)
        return m, RSNNState(tuple(new_layers), m)

    def step(self, x_t: Tensor, state: RSNNState) -> Tuple[Tensor, RSNNState]:
        check_step(x_t, self.n_inputs)
        return self.step_encoded(self.encode(x_t), state)

    def forward(self, x_seq: Tensor, state: Optional[RSNNState] = None) -> Tuple[Tensor, RSNNState]:
        """Layer by layer over the whole sequence (each input projection is one matmul)."""
        check_sequence(x_seq, self.n_inputs)
        if state is None:
            state = self.initial_state(x_seq.shape[1], device=x_seq.device, dtype=x_seq.dtype)
        spikes, final_layers = self.encode(x_seq), []
        for index, (layer, layer_state) in enumerate(zip(self.layers, state.layers)):
            currents = spikes if index == 0 else layer.w_in(spikes)
            spikes, layer_final = layer.forward_current(currents, layer_state)
            final_layers.append(layer_final)
        outputs, m = self.readout(spikes, state.readout)
        return outputs, RSNNState(tuple(final_layers), m)


class LSTMCellState(NamedTuple):
    h: Tensor
    c: Tensor


class LSTMState(NamedTuple):
    layers: Tuple[LSTMCellState, ...]


class LSTMBaseline(nn.Module):
    """``nn.LSTM`` with a linear readout of the last layer's ``h[t]``, usable step by step.

    ``forward`` calls ``nn.LSTM`` itself; ``step_encoded`` applies the same weights with the
    standard cell equations (PyTorch's gate order i, f, g, o), so early exit can stop anywhere.
    """

    def __init__(self, n_inputs: int, n_hidden: int, n_outputs: int, *, n_layers: int = 1) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"expected n_layers >= 1; got {n_layers}")
        self.lstm = nn.LSTM(n_inputs, n_hidden, num_layers=n_layers)
        self.readout = nn.Linear(n_hidden, n_outputs)
        self.n_inputs, self.n_hidden, self.n_outputs, self.n_layers = n_inputs, n_hidden, n_outputs, n_layers

    def _weights(self, layer: int):
        lstm = self.lstm
        return (getattr(lstm, f"weight_ih_l{layer}"), getattr(lstm, f"weight_hh_l{layer}"),
                getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}"))

    def initial_state(self, batch_size: int, *, device=None, dtype=None) -> LSTMState:
        weight = self.readout.weight
        zeros = torch.zeros(batch_size, self.n_hidden, device=device or weight.device, dtype=dtype or weight.dtype)
        return LSTMState(tuple(LSTMCellState(zeros, zeros) for _ in range(self.n_layers)))

    def encode(self, x: Tensor) -> Tensor:
        w_ih, _, bias = self._weights(0)
        return nn.functional.linear(x, w_ih, bias)

    def step_params(self):
        """Each layer's ``(W_ih, W_hh, b_ih + b_hh)``."""
        return tuple(self._weights(layer) for layer in range(self.n_layers))

    def step_encoded(self, gates_in: Tensor, state: LSTMState, params=None) -> Tuple[Tensor, LSTMState]:
        weights = params if params is not None else self.step_params()
        new_layers = []
        for layer, (h, c) in enumerate(state.layers):
            w_ih, w_hh, bias = weights[layer]
            if layer > 0:
                gates_in = nn.functional.linear(new_layers[-1].h, w_ih, bias)
            i, f, g, o = (gates_in + nn.functional.linear(h, w_hh)).chunk(4, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            new_layers.append(LSTMCellState(h, c))
        return self.readout(new_layers[-1].h), LSTMState(tuple(new_layers))

    def step(self, x_t: Tensor, state: LSTMState) -> Tuple[Tensor, LSTMState]:
        check_step(x_t, self.n_inputs)
        return self.step_encoded(self.encode(x_t), state)

    def forward(self, x_seq: Tensor, state: Optional[LSTMState] = None) -> Tuple[Tensor, LSTMState]:
        check_sequence(x_seq, self.n_inputs)
        if state is None:
            state = self.initial_state(x_seq.shape[1], device=x_seq.device, dtype=x_seq.dtype)
        h0 = torch.stack([layer.h for layer in state.layers])
        c0 = torch.stack([layer.c for layer in state.layers])
        hidden, (h_n, c_n) = self.lstm(x_seq, (h0, c0))
        final = LSTMState(tuple(LSTMCellState(h, c) for h, c in zip(h_n, c_n)))
        return self.readout(hidden), final
