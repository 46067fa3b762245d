"""The spiking networks (ALIF, IR-SNN) and the LSTM and GRU baselines, behind one step interface.

Every model exposes

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

from .neuron.alif import ALIFParams, ALIFState, TauInit
from .neuron.irsnn import IRParams, IRState
from .neuron.layers import AdaptiveReadout, ALIFLayer, IRLayer, LeakyReadout
from .neuron.surrogate import SpikeFn, resolve
from .neuron.validation import check_sequence, check_step


class SteppedModel(nn.Module):
    """The step interface's one shared piece: ``step`` is ``step_encoded`` of ``encode``."""

    def step(self, x_t: Tensor, state):
        check_step(x_t, self.n_inputs)
        return self.step_encoded(self.encode(x_t), state)


def hidden_sizes(n_hidden: Union[int, Sequence[int]]) -> list:
    """Layer sizes from one size or a sequence of them (at least one)."""
    sizes = [n_hidden] if isinstance(n_hidden, int) else list(n_hidden)
    if not sizes:
        raise ValueError("expected at least one hidden layer size")
    return sizes


class RSNNState(NamedTuple):
    layers: Tuple[ALIFState, ...]
    readout: Union[Tensor, ALIFState]  # m[t], [batch, classes]; the output neurons' state for an adaptive output


#: What an ALIF network's outputs are: the leaky readout's ``m[t]``, or the membrane of adaptive
#: spiking output neurons (Yin et al.'s ECG network; :class:`~rc_snn.neuron.layers.AdaptiveReadout`).
OUTPUT_LAYERS = ("leaky", "adaptive")


class ALIFRSNN(SteppedModel):
    """Stacked ALIF recurrent layers and a leaky readout (Yin et al. 2021's SRNN).

    Layer ``l+1`` receives layer ``l``'s spikes of the same step; the readout integrates the last
    layer's spikes. Its output ``m[t]`` is read as class scores (logits). Every layer shares
    ``params`` (:class:`~rc_snn.neuron.alif.ALIFParams`); the readout takes its ``tau_out``.
    ``output_layer="adaptive"`` replaces the readout by adaptive spiking output neurons read by
    their membrane (:class:`~rc_snn.neuron.layers.AdaptiveReadout`, with ``output_params``), as in
    Yin et al.'s ECG network; only autograd trains it (the hand-written engines are the leaky
    readout's) and the network file does not hold it.
    """

    def __init__(
        self,
        n_inputs: int,
        n_hidden: Union[int, Sequence[int]],
        n_outputs: int,
        params: ALIFParams = ALIFParams(),
        *,
        spike_grad: Optional[SpikeFn] = None,
        output_layer: str = "leaky",
        output_params: Optional[ALIFParams] = None,
    ) -> None:
        super().__init__()
        if output_layer not in OUTPUT_LAYERS:
            raise ValueError(f"expected output_layer among {OUTPUT_LAYERS}; got {output_layer!r}")
        sizes = hidden_sizes(n_hidden)
        spike_fn = resolve(spike_grad)
        fan_in = [n_inputs] + sizes[:-1]
        self.layers = nn.ModuleList(
            ALIFLayer(n_in, n, params, spike_grad=spike_fn) for n_in, n in zip(fan_in, sizes)
        )
        self.output_layer = output_layer
        self.readout = (LeakyReadout(sizes[-1], n_outputs, tau=params.tau_out) if output_layer == "leaky" else
                        AdaptiveReadout(sizes[-1], n_outputs, output_params or params, spike_grad=spike_fn))
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
        return (m if self.output_layer == "leaky" else m.u), RSNNState(tuple(new_layers), m)

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


class IRSNNState(NamedTuple):
    layers: Tuple[IRState, ...]
    readout: Tensor  # m[t], [batch, classes]


class IRSNN(SteppedModel):
    """Stacked IR-SNN layers (Ponghiran and Roy 2022; :mod:`rc_snn.neuron.irsnn`) and a leaky readout.

    Layer ``l+1`` receives layer ``l``'s outputs ``s`` of the same step. The paper reads each frame
    through ``Linear + BN`` (frame labels, TIMIT); a whole-sequence label read at an early decision
    needs evidence that accumulates, so the readout here is the ALIF network's leaky integrator
    ``m[t]`` (:class:`~rc_snn.neuron.layers.LeakyReadout`, ``tau_out``) over the last layer's ``s``.

    ``needs_full_sequence``: the layers' batch norm takes its training statistics over time and
    batch, so training runs whole sequences (the rank-coded loss is still taken at each sample's
    t*); in evaluation the norm is a fixed affine map and the model exits early like the others.
    """

    needs_full_sequence = True

    def __init__(self, n_inputs: int, n_hidden: Union[int, Sequence[int]], n_outputs: int,
                 params: IRParams = IRParams(), *, tau_out: TauInit = ALIFParams.tau_out) -> None:
        super().__init__()
        sizes = hidden_sizes(n_hidden)
        fan_in = [n_inputs] + sizes[:-1]
        self.layers = nn.ModuleList(IRLayer(n_in, n, params) for n_in, n in zip(fan_in, sizes))
        self.readout = LeakyReadout(sizes[-1], n_outputs, tau=tau_out)
        self.n_inputs, self.n_outputs = n_inputs, n_outputs

    def initial_state(self, batch_size: int, *, device=None, dtype=None) -> IRSNNState:
        layers = tuple(layer.initial_state(batch_size, device=device, dtype=dtype) for layer in self.layers)
        return IRSNNState(layers, self.readout.initial_state(batch_size, device=device, dtype=dtype))

    def encode(self, x: Tensor) -> Tensor:
        return self.layers[0].encode(x)

    def step_params(self):
        """The readout's ``alpha_o`` (the layers have no per-sequence constants)."""
        return self.readout.decay()

    def step_encoded(self, current: Tensor, state: IRSNNState, params=None) -> Tuple[Tensor, IRSNNState]:
        new_layers = []
        for index, (layer, layer_state) in enumerate(zip(self.layers, state.layers)):
            if index > 0:
                current = layer.encode(new_layers[-1].s)
            new_layers.append(layer.step_current(current, layer_state))
        m = self.readout.step(new_layers[-1].s, state.readout, params)
        return m, IRSNNState(tuple(new_layers), m)

    def forward(self, x_seq: Tensor, state: Optional[IRSNNState] = None) -> Tuple[Tensor, IRSNNState]:
        """Layer by layer over the whole sequence (each layer's ``BN(W x)`` over all steps at once)."""
        check_sequence(x_seq, self.n_inputs)
        if state is None:
            state = self.initial_state(x_seq.shape[1], device=x_seq.device, dtype=x_seq.dtype)
        outputs, final_layers = x_seq, []
        for layer, layer_state in zip(self.layers, state.layers):
            outputs, layer_final = layer(outputs, layer_state)
            final_layers.append(layer_final)
        readout, m = self.readout(outputs, state.readout)
        return readout, IRSNNState(tuple(final_layers), m)


class LSTMCellState(NamedTuple):
    h: Tensor
    c: Tensor


class LSTMState(NamedTuple):
    layers: Tuple[LSTMCellState, ...]


class GRUState(NamedTuple):
    layers: Tuple[Tensor, ...]  # h[t] per layer


class RecurrentBaseline(SteppedModel):
    """A ``torch.nn`` recurrent network (``rnn_class``) with a linear readout of the last layer's
    ``h[t]``, usable step by step.

    ``forward`` calls the ``torch.nn`` module itself; ``step_encoded`` applies the same weights with
    its documented cell equations (:meth:`cell`), so early exit can stop anywhere.
    """

    rnn_class: type = nn.RNNBase
    rnn_name = "rnn"  # the module's attribute name, hence its checkpoint keys ("lstm.weight_ih_l0")

    def __init__(self, n_inputs: int, n_hidden: int, n_outputs: int, *, n_layers: int = 1) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"expected n_layers >= 1; got {n_layers}")
        setattr(self, self.rnn_name, self.rnn_class(n_inputs, n_hidden, num_layers=n_layers))
        self.readout = nn.Linear(n_hidden, n_outputs)
        self.n_inputs, self.n_hidden, self.n_outputs, self.n_layers = n_inputs, n_hidden, n_outputs, n_layers

    @property
    def rnn(self) -> nn.RNNBase:
        return getattr(self, self.rnn_name)

    def _weights(self, layer: int):
        rnn = self.rnn
        return tuple(getattr(rnn, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    def encode(self, x: Tensor) -> Tensor:
        w_ih, _, b_ih, _ = self._weights(0)
        return nn.functional.linear(x, w_ih, b_ih)

    def step_params(self):
        """Each layer's ``(W_ih, W_hh, b_ih, b_hh)``."""
        return tuple(self._weights(layer) for layer in range(self.n_layers))

    def cell(self, gates_in: Tensor, gates_h: Tensor, layer_state):
        """One layer's new state from ``W_ih x + b_ih`` and ``W_hh h + b_hh``."""
        raise NotImplementedError

    def step_encoded(self, gates_in: Tensor, state, params=None):
        weights = params if params is not None else self.step_params()
        new_layers = []
        for layer, layer_state in enumerate(state.layers):
            w_ih, w_hh, b_ih, b_hh = weights[layer]
            if layer > 0:
                gates_in = nn.functional.linear(self.hidden(new_layers[-1]), w_ih, b_ih)
            h = self.hidden(layer_state)
            new_layers.append(self.cell(gates_in, nn.functional.linear(h, w_hh, b_hh), layer_state))
        return self.readout(self.hidden(new_layers[-1])), type(state)(tuple(new_layers))


class LSTMBaseline(RecurrentBaseline):
    """``nn.LSTM`` + readout; the cell in PyTorch's gate order i, f, g, o::

        c = sigmoid(f) * c + sigmoid(i) * tanh(g);   h = sigmoid(o) * tanh(c)
    """

    rnn_class, rnn_name = nn.LSTM, "lstm"

    @staticmethod
    def hidden(layer_state: LSTMCellState) -> Tensor:
        return layer_state.h

    def initial_state(self, batch_size: int, *, device=None, dtype=None) -> LSTMState:
        weight = self.readout.weight
        zeros = torch.zeros(batch_size, self.n_hidden, device=device or weight.device, dtype=dtype or weight.dtype)
        return LSTMState(tuple(LSTMCellState(zeros, zeros) for _ in range(self.n_layers)))

    def cell(self, gates_in: Tensor, gates_h: Tensor, layer_state: LSTMCellState) -> LSTMCellState:
        i, f, g, o = (gates_in + gates_h).chunk(4, dim=-1)
        c = torch.sigmoid(f) * layer_state.c + torch.sigmoid(i) * torch.tanh(g)
        return LSTMCellState(torch.sigmoid(o) * torch.tanh(c), c)

    def forward(self, x_seq: Tensor, state: Optional[LSTMState] = None) -> Tuple[Tensor, LSTMState]:
        check_sequence(x_seq, self.n_inputs)
        if state is None:
            state = self.initial_state(x_seq.shape[1], device=x_seq.device, dtype=x_seq.dtype)
        h0 = torch.stack([layer.h for layer in state.layers])
        c0 = torch.stack([layer.c for layer in state.layers])
        hidden, (h_n, c_n) = self.rnn(x_seq, (h0, c0))
        final = LSTMState(tuple(LSTMCellState(h, c) for h, c in zip(h_n, c_n)))
        return self.readout(hidden), final


class GRUBaseline(RecurrentBaseline):
    """``nn.GRU`` + readout (Ponghiran and Roy's comparison); the cell in PyTorch's gate order r, z, n::

        r = sigmoid(i_r + h_r);   z = sigmoid(i_z + h_z);   n = tanh(i_n + r * h_n)
        h = (1 - z) * n + z * h[t-1]

    with ``[i_r, i_z, i_n] = W_ih x + b_ih`` and ``[h_r, h_z, h_n] = W_hh h[t-1] + b_hh``.
    """

    rnn_class, rnn_name = nn.GRU, "gru"

    @staticmethod
    def hidden(layer_state: Tensor) -> Tensor:
        return layer_state

    def initial_state(self, batch_size: int, *, device=None, dtype=None) -> GRUState:
        weight = self.readout.weight
        zeros = torch.zeros(batch_size, self.n_hidden, device=device or weight.device, dtype=dtype or weight.dtype)
        return GRUState(tuple(zeros for _ in range(self.n_layers)))

    def cell(self, gates_in: Tensor, gates_h: Tensor, h: Tensor) -> Tensor:
        i_r, i_z, i_n = gates_in.chunk(3, dim=-1)
        h_r, h_z, h_n = gates_h.chunk(3, dim=-1)
        r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        return (1 - z) * torch.tanh(i_n + r * h_n) + z * h

    def forward(self, x_seq: Tensor, state: Optional[GRUState] = None) -> Tuple[Tensor, GRUState]:
        check_sequence(x_seq, self.n_inputs)
        if state is None:
            state = self.initial_state(x_seq.shape[1], device=x_seq.device, dtype=x_seq.dtype)
        hidden, h_n = self.rnn(x_seq, torch.stack(state.layers))
        return self.readout(hidden), GRUState(tuple(h_n))
