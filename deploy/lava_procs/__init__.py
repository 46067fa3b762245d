"""Lava Processes of the ALIF network (interfaces in ``process.py``, ProcessModels in ``models.py``).

Kept isolated on purpose: when Lava looks for the ProcessModels of a Process it imports and executes
every sibling module of the Process's package, so this package holds only those two modules, with
no torch imports, scripts or side effects. ``deploy.simulate`` wires them together.
"""
