"""The one place ``rc_snn`` leans on snnTorch below its public API, with the versions it was tested on.

- :func:`drop_membrane_decay`: :class:`~rc_snn.plugin.neurons.ALIF` subclasses ``snn.Leaky`` (so that
  ``snntorch.utils.reset`` recognises it) but has per-neuron time constants instead of ``Leaky``'s
  one membrane decay ``beta``, which ``Leaky.__init__`` registers as a buffer. The buffer is deleted so
  that no ``beta`` (snnTorch's decay, a different idea from the ALIF's adaptation strength) sits in
  the layer's ``state_dict``. That relies on snnTorch reading ``self.beta`` only in the methods the
  subclass replaces (``forward`` and the state functions), true of the versions below; on another
  version a warning says so once (``tests/test_plugin.py`` runs the layers through snnTorch's own
  utilities).

``deploy/private_api.py`` is the same for Lava (``deploy`` may not import ``rc_snn``).
"""

from __future__ import annotations

import warnings

import snntorch

#: snnTorch releases (major.minor) whose ``Leaky`` internals were read and tested.
SNNTORCH_VERSIONS = ("0.9", "1.0")


def snntorch_tested(version: str | None = None) -> bool:
    """Whether ``version`` (default: the installed snnTorch's) is among :data:`SNNTORCH_VERSIONS`."""
    version = snntorch.__version__ if version is None else version
    return ".".join(version.split(".")[:2]) in SNNTORCH_VERSIONS


def drop_membrane_decay(layer: snntorch.Leaky) -> None:
    """Delete ``Leaky``'s ``beta`` buffer from ``layer`` (module docstring)."""
    if not snntorch_tested():
        warnings.warn(f"rc_snn.plugin was tested with snnTorch {', '.join(SNNTORCH_VERSIONS)}; snnTorch "
                      f"{snntorch.__version__} is installed (see rc_snn/plugin/private_api.py)", stacklevel=3)
    del layer.beta
