"""The one place ``deploy`` reaches into Lava below its public API, with the version it was tested on.

Lava 0.10.0 is final (its repositories are archived), and setup.cfg pins it; :func:`check_lava`
still refuses another version, so that a change of Lava shows as one clear error here rather
than as a run that never ends.

- :func:`request_pause`: a process model asks the runtime to pause after the current step by
  setting ``_req_pause``, which ``AbstractPyProcessModel`` declares and Lava's runtime service reads
  at the end of each step (Lava's own tutorials end runs this way; there is no public call). The
  stream of :class:`deploy.lava_procs.process.DecisionReadout` uses it to end a run once every
  sample has decided (``tests/test_lava_simulate.py`` checks that a stream ends early).
"""

from __future__ import annotations

from importlib import metadata

#: The Lava release the private attributes below were read from and tested against.
LAVA_VERSION = "0.10.0"


def check_lava(installed: str | None = None) -> None:
    """Raise ``RuntimeError`` unless the installed ``lava-nc`` (or ``installed``) is :data:`LAVA_VERSION`."""
    installed = metadata.version("lava-nc") if installed is None else installed
    if installed != LAVA_VERSION:
        raise RuntimeError(f"deploy/private_api.py was written against lava-nc {LAVA_VERSION}; lava-nc {installed} "
                           "is installed (install the version setup.cfg pins)")


def request_pause(process_model) -> None:
    """Ask Lava's runtime to pause after the step ``process_model`` is running (module docstring)."""
    process_model._req_pause = True
