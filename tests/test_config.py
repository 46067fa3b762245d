import pytest

from rc_snn.training.config import TrainConfig


def test_json_round_trip(tmp_path):
    config = TrainConfig(model="lstm", loss="full", tau_m=(10, 2), limit_train=5)
    config.save(tmp_path / "c.json")
    assert TrainConfig.load(tmp_path / "c.json") == config


@pytest.mark.parametrize("changes, message", [
    ({"model": "transformer"}, "model"),
    ({"bits": 0}, "'bits'"),
    ({"dead_zone": 1.5}, "'dead_zone'"),
    ({"bits": 2, "dead_zone": 1}, "'bits/dead_zone': expected dead_zone as an integer 0 <= d < 1"),
    ({"lr": float("inf")}, "'lr': expected a finite learning rate > 0; got inf"),
    ({"beta": float("nan")}, "'beta'"),
    ({"b0": float("nan")}, "'b0'"),
    ({"tau_m": (float("nan"), 1.0)}, "'tau_m'"),
    ({"entropy_weight": float("nan")}, "'entropy_weight'"),
    ({"decision_threshold": 7}, "softmax probability"),
    ({"decision_threshold": "0.9"}, "got '0.9'"),
    ({"hidden": None}, "'hidden': expected an integer >= 1; got None"),
    ({"hidden": 1.5}, "'hidden'"),
    ({"tau_m": 5}, "'tau_m': expected \\[mean, sd\\] in steps with 0 < mean"),
    ({"download": 1}, "'download': expected true or false"),
    ({"bin_ms": 0.0}, "'bin_ms'"),
    ({"dataset": "no-such-set"}, "'dataset'"),
    ({"decision_threshold": 1.5}, "decision_threshold"),
    ({"hidden": 0}, "hidden"),
    ({"entropy_weight": -1}, "entropy_weight"),
    ({"lr_decay": 0.0}, "lr_decay"),
    ({"lr_decay": 1.5}, "lr_decay"),
    ({"lr_schedule": "step"}, "'lr_schedule'"),
    ({"lr_schedule": "cosine", "lr_decay": 0.9}, "lr_decay.*exponential schedule's factor"),
    ({"weight_decay": -1e-4}, "'weight_decay'"),
    ({"label_smoothing": 1.0}, "'label_smoothing'"),
])
def test_bad_values_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**changes)


def test_a_config_file_must_hold_an_object(tmp_path):
    (tmp_path / "config.json").write_text("[]")
    with pytest.raises(ValueError, match="expected a config as a JSON object of fields; got list"):
        TrainConfig.load(tmp_path / "config.json")


def test_unknown_fields_are_refused():
    with pytest.raises(ValueError, match="unknown config fields"):
        TrainConfig.from_dict({"modle": "alif"})


def test_the_old_threshold_key_is_refused_by_name():
    legacy = {**TrainConfig().to_dict(), "threshold": 0.8}
    del legacy["decision_threshold"]
    with pytest.raises(ValueError, match="unknown config fields \\['threshold'\\]"):
        TrainConfig.from_dict(legacy)


def test_neuron_defaults_come_from_alif_params():
    from rc_snn.neuron.alif import ALIFParams

    assert TrainConfig().alif_params() == ALIFParams()
    assert TrainConfig(beta=0.5, tau_out=(9, 1)).alif_params() == ALIFParams(beta=0.5, tau_out=(9.0, 1.0))


def test_shipped_recipes_are_the_package_recipe_and_share_their_data_settings():
    from pathlib import Path

    from rc_snn.training.config import MODELS, recipe

    folder = Path(__file__).resolve().parents[1] / "configs"
    recipes = [TrainConfig.load(folder / f"nmnist-{model}.json") for model in MODELS]
    assert recipes == [recipe(model) for model in MODELS]
    data = ("dataset", "window", "bin_ms", "shift_px", "rotate_deg", "zoom", "drop_events", "epochs", "batch_size",
            "decision_threshold")
    assert len({tuple(getattr(r, name) for name in data) for r in recipes}) == 1
    assert recipe("alif").hidden == 256 and recipe("lstm").lr == 5e-3
    with pytest.raises(ValueError, match="expected a model among"):
        recipe("transformer")
    for variant in ("efficient", "full"):
        assert TrainConfig.load(folder / f"nmnist-alif-{variant}.json") == recipe("alif", variant)
    assert recipe("alif", "efficient").input_encoding == "binary" and recipe("alif", "full").epochs == 20
    with pytest.raises(ValueError, match="recipe variant"):
        recipe("alif", "tiny")


@pytest.mark.parametrize("changes, expected", [
    (dict(model="lstm", activity_weight=0.1), "spike penalty is the ALIF network's"),
    (dict(activity_weight=0.1, backward="autograd", loss="full"), "full-sequence run"),
    (dict(input_encoding="spikes"), "'input_encoding'"),
])
def test_energy_options_are_validated(changes, expected):
    with pytest.raises(ValueError, match=expected):
        TrainConfig(**changes)
