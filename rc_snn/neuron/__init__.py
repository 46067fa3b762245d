"""The neuron models' equations: pure step functions with typed state, surrogates, thin layers.

- :mod:`.alif`: the ALIF neuron and the leaky readout (step functions, :class:`~.alif.ALIFParams`);
- :mod:`.surrogate`: spike functions (Heaviside forward, surrogate backward);
- :mod:`.layers`: modules that hold parameters and loop over time by calling the step functions;
- :mod:`.state`: helpers on caller-owned state; :mod:`.validation`: input checks.

A new neuron model goes here as one module with its step function, its state and its parameters.
"""
