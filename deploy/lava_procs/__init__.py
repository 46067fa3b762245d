"""Lava Processes of the network file (interfaces in ``process.py``; ProcessModels in ``models.py``
and, the readout's, ``readout_models.py``).

Kept isolated on purpose: when Lava looks for the ProcessModels of a Process it imports and executes
every sibling module of the Process's package, so this package holds only those modules, with
no torch imports, scripts or side effects. ``deploy.simulate`` wires them together.
"""
