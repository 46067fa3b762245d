import pytest

from rc_snn.training.config import TrainConfig


def test_json_round_trip(tmp_path):
    config = TrainConfig(model="lstm", loss="full", tau_m=(10, 2), limit_train=5)
    config.save(tmp_path / "c.json")
    assert TrainConfig.load(tmp_path / "c.json") == config


@pytest.mark.parametrize("changes, message", [
    ({"model": "gru"}, "model"),
    ({"decision_threshold": 1.5}, "decision_threshold"),
    ({"hidden": 0}, "hidden"),
    ({"entropy_weight": -1}, "entropy_weight"),
    ({"lr_decay": 0.0}, "lr_decay"),
    ({"lr_decay": 1.5}, "lr_decay"),
])
def test_bad_values_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**changes)


def test_unknown_fields_are_refused():
    with pytest.raises(ValueError, match="unknown config fields"):
        TrainConfig.from_dict({"modle": "alif"})


def test_run_folders_written_before_the_rename_still_load(tmp_path):
    legacy = {**TrainConfig().to_dict(), "threshold": 0.8}
    del legacy["decision_threshold"], legacy["tau_out"]
    assert TrainConfig.from_dict(legacy) == TrainConfig(decision_threshold=0.8)


def test_neuron_defaults_come_from_alif_params():
    from rc_snn.neuron.alif import ALIFParams

    assert TrainConfig().alif_params() == ALIFParams()
    assert TrainConfig(beta=0.5, tau_out=(9, 1)).alif_params() == ALIFParams(beta=0.5, tau_out=(9.0, 1.0))
