"""rc-snn: adaptive multi-timescale spiking RNNs with rank-coded early exit."""

__version__ = "0.2.0"
