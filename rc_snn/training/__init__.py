"""Training: the config, the early-exit rule, the losses, the gradient engines and the loop.

- :mod:`.config`: :class:`~.config.TrainConfig`, everything that defines a run;
- :mod:`.early_exit`: the decision rule and the runner that stops each sample at its decision;
- :mod:`.losses`: rank-coded, full-sequence and per-step losses;
- :mod:`.bptt`: hand-written BPTT of the ALIF network in torch; :mod:`.compiled`: the same in
  numba kernels (any depth, CPU);
- :mod:`.run`: a run folder (files, checkpoint, :func:`~.run.load_run`);
- :mod:`.step`: one training step (:func:`~.step.training_step`) and the checks that a config fits its task;
- :mod:`.loop`: :func:`~.loop.train` (restore, run an epoch, checkpoint); :mod:`.evaluation`:
  :func:`~.evaluation.evaluate_model`.
"""
