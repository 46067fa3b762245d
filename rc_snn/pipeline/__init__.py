"""The main job's stages from a trained model to a report; the only part of rc_snn that uses deploy.

- :mod:`.export`: trained ALIF network -> the network file (``deploy.ir``);
- :mod:`.recording`: what a PyTorch run did, for counting;
- :mod:`.lava_parity`: Lava versus PyTorch on the same frames;
- :mod:`.compare`: runs and Lava results -> ``deploy.report.ModelResult`` -> report;
- :mod:`.demo`: every stage in order; :mod:`.cli`: the ``rc-snn`` command (argparse only).
"""
