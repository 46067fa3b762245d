"""The private APIs rc-snn leans on, one test each (rc_snn/plugin/private_api.py, deploy/private_api.py)."""

import subprocess
import sys
import warnings

import pytest
import torch

from deploy import private_api as lava_api
from rc_snn.plugin import private_api as snntorch_api
from rc_snn.plugin.neurons import ALIF


def test_the_installed_lava_is_the_one_read_and_another_is_refused():
    lava_api.check_lava()
    with pytest.raises(RuntimeError, match="lava-nc 0.10.0; lava-nc 0.11.0 is installed"):
        lava_api.check_lava("0.11.0")


def test_snntorchs_decay_leaves_the_layer_and_an_untested_version_warns(monkeypatch):
    assert snntorch_api.snntorch_tested() and not snntorch_api.snntorch_tested("2.3.1")
    layer = ALIF(5)
    assert not hasattr(layer, "beta") and "beta" not in layer.state_dict()
    net = torch.nn.Sequential(ALIF(5, init_hidden=True))
    net(torch.ones(2, 5))
    snntorch_api.snntorch.utils.reset(net)  # snnTorch's own reset still works without the buffer
    assert all(float(t.abs().sum()) == 0 for t in net[0].state)
    monkeypatch.setattr(snntorch_api.snntorch, "__version__", "2.3.1")
    with pytest.warns(UserWarning, match="snnTorch 2.3.1 is installed"):
        ALIF(5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        monkeypatch.setattr(snntorch_api.snntorch, "__version__", "1.0.2")
        ALIF(5)


@pytest.mark.lava
@pytest.mark.parametrize("method, ok", [("fork", True), ("spawn", False)])
def test_lava_imports_after_the_start_method_was_fixed_to_fork_and_refuses_another(method, ok):
    """Lava's import calls set_start_method('fork'), which raises once anything fixed a method."""
    code = ("import multiprocessing; multiprocessing.set_start_method(%r)\n"
            "from deploy.lava_run import _import_lava_runtime\n"
            "try:\n    _import_lava_runtime()\nexcept RuntimeError as error:\n    print('refused:', error)\n"
            "print(multiprocessing.get_start_method())" % method)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    if ok:
        assert result.stdout.strip() == "fork"
    else:
        assert "refused: Lava needs the 'fork' start method" in result.stdout
