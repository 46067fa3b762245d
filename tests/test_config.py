import pytest

from rc_snn.config import TrainConfig


def test_json_round_trip(tmp_path):
    config = TrainConfig(model="lstm", loss="full", tau_m=(10, 2), limit_train=5)
    config.save(tmp_path / "c.json")
    assert TrainConfig.load(tmp_path / "c.json") == config


@pytest.mark.parametrize("changes, message", [
    ({"model": "gru"}, "model"),
    ({"threshold": 1.5}, "threshold"),
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
