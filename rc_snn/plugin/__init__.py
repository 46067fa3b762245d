"""rc-snn for snnTorch users: the ALIF neuron as snnTorch neurons, and rank coding for any snnTorch network.

* :class:`ALIF`, :class:`RALIF` (:mod:`.neurons`): ``snntorch.SpikingNeuron`` subclasses, stepped
  as snnTorch's ``Leaky`` and ``RLeaky`` are, over the same step function as
  :class:`rc_snn.neuron.layers.ALIFLayer`;
* :func:`ce_rank_loss`, :func:`accuracy_rank` (:mod:`.functional`): the rank-coded loss and
  accuracy in the shape of ``snntorch.functional``, on a recorded output sequence;
* :func:`run_to_last_decision` (:mod:`.runner`): steps any network (a callable, for example an
  ``init_hidden=True`` ``nn.Sequential``) until the batch's last decision.

snnTorch networks go to Lava through :func:`rc_snn.pipeline.snntorch_export.export_snntorch`.
"""

from .functional import accuracy_rank, ce_rank_loss
from .neurons import ALIF, RALIF
from .runner import RankCodedRun, run_to_last_decision

__all__ = ["ALIF", "RALIF", "ce_rank_loss", "accuracy_rank", "run_to_last_decision", "RankCodedRun"]
