"""Direct (graded) input and affine augmentation: encoding, config, and Lava agreement."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_MLP

from gradr_deploy.errors import InputError
from gradr_deploy.simulation.encoding import DirectEncoding, RateEncoding, encoding_from_dict
from gradr_lava.augment import RandomAffine, affine_of, apply_affine
from gradr_lava.cli import main
from gradr_lava.config import parse_model_config


def test_direct_encoding_sends_rounded_intensities_at_every_step() -> None:
    encoding = DirectEncoding(time_steps=3, levels=15)
    images = np.array([[[0.0, 0.5], [1.0, 0.2]]], dtype=np.float32)
    payload = encoding.encode(images)
    assert payload.dtype == np.uint8 and payload.shape == (1, 4, 3)
    assert payload[0, :, 0].tolist() == [0, 8, 15, 3]  # rint(15 * x)
    assert (payload == payload[:, :, :1]).all()
    assert (encoding.message_bits, encoding.input_scale) == (4, 15)
    assert encoding_from_dict(encoding.to_dict()) == encoding
    assert encoding_from_dict(RateEncoding(4).to_dict()) == RateEncoding(4)
    with pytest.raises(ValueError, match="levels"):
        DirectEncoding(time_steps=3, levels=128)
    with pytest.raises(InputError, match="unknown keys"):
        encoding_from_dict({"name": "direct", "time_steps": 3, "max_rate": 1.0})


def test_config_accepts_direct_input_and_refuses_unknown_values() -> None:
    doc = {"input": {"encoding": "direct", "levels": 7}, "layers": [{"type": "dense",
                                                                    "features": 10}],
           "training": {"augment": "affine"}}
    config = parse_model_config(doc, "m.toml")
    assert (config.input.encoding, config.input.levels, config.training.augment) == (
        "direct", 7, "affine")
    for section, key, value, allowed in (("input", "encoding", "poisson", "rate, direct"),
                                         ("training", "augment", "elastic", "none, affine")):
        bad = json.loads(json.dumps(doc))
        bad[section][key] = value
        with pytest.raises(InputError, match=allowed):
            parse_model_config(bad, "m.toml")


def test_config_sets_the_affine_ranges_and_refuses_them_without_affine() -> None:
    layers = [{"type": "dense", "features": 10}]
    narrow = {"augment": "affine", "affine_degrees": 8, "affine_translate": 0.05,
              "affine_scale_min": 0.95, "affine_scale_max": 1.05}
    config = parse_model_config({"layers": layers, "training": narrow}, "m.toml")
    affine = affine_of(config.training)
    assert affine == RandomAffine(8.0, 0.05, (0.95, 1.05))
    table = affine.epoch_parameters(seed=0, epoch=0, samples=2000)
    assert np.abs(table[:, 0]).max() <= math.radians(8) + 1e-6
    assert np.abs(table[:, 0]).max() > math.radians(7)  # the range is used, not only bounded
    assert np.abs(table[:, 1:3]).max() <= 0.05 + 1e-6
    assert 0.95 <= table[:, 3].min() and table[:, 3].max() <= 1.05
    assert affine_of(parse_model_config({"layers": layers}, "m.toml").training) is None
    for training, message in (
            ({"affine_degrees": 8}, r"sets affine_degrees but augment = 'none'"),
            ({**narrow, "affine_scale_min": 1.2}, "affine_scale_min = 1.2 is above"),
            ({**narrow, "affine_degrees": 200}, r"affine_degrees = 200.0 must be .* \[0, 180\]"),
            ({**narrow, "affine_translate": -0.1}, "affine_translate = -0.1 must be"),
            ({"augment_until": 0.8}, r"sets augment_until but augment = 'none'"),
            ({**narrow, "augment_until": 0}, r"augment_until = 0.0 must be .* \(0, 1\]")):
        with pytest.raises(InputError, match=message):
            parse_model_config({"layers": layers, "training": training}, "m.toml")


def test_augment_until_trains_the_last_epochs_on_the_original_images(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gradr_lava.trainer as trainer

    warped: list[int] = []  # images warped, per call

    def counting(images: np.ndarray, parameters: np.ndarray) -> np.ndarray:
        warped.append(len(images))
        return apply_affine(images, parameters)

    monkeypatch.setattr(trainer, "apply_affine", counting)
    seen = {}
    for until in (1.0, 0.5):
        config = tmp_path / f"until{until}.toml"
        config.write_text(TINY_MLP.replace("epochs = 2", "epochs = 4").replace(
            "learning_rate = 0.003", f'learning_rate = 0.003\naugment = "affine"\n'
                                     f"augment_until = {until}"))
        warped.clear()
        trainer.train(trainer.TrainOptions(dataset="digits", out=tmp_path / str(until),
                                           model=str(config), progress=False))
        seen[until] = sum(warped)
    train_images = seen[1.0] // 4
    assert train_images > 1000  # every training image of every epoch, with 1.0
    assert seen[0.5] == 2 * train_images  # epochs 1-2 warped, 3-4 not


def test_affine_identity_rotation_direction_and_per_sample_parameters() -> None:
    image = np.zeros((1, 8, 8), np.float32)
    image[0, 1, 2] = 1.0
    same = apply_affine(image, np.array([[0.0, 0.0, 0.0, 1.0]], np.float32))
    assert np.allclose(same, image, atol=1e-5)
    turned = apply_affine(image, np.array([[math.pi / 2, 0.0, 0.0, 1.0]], np.float32))
    assert np.allclose(turned[0], np.rot90(image[0], 1), atol=1e-5)  # counter-clockwise
    moved = apply_affine(image, np.array([[0.0, 0.25, 0.0, 1.0]], np.float32))
    assert moved[0, 1, 4] == pytest.approx(1.0)  # 2 pixels right on an 8-pixel row
    table = RandomAffine().epoch_parameters(seed=3, epoch=1, samples=100)
    assert np.array_equal(table, RandomAffine().epoch_parameters(3, 1, 100))
    assert not np.array_equal(table, RandomAffine().epoch_parameters(3, 2, 100))
    assert np.abs(table[:, 0]).max() <= math.radians(30) + 1e-6
    assert np.abs(table[:, 1:3]).max() <= 0.15 + 1e-6
    assert 0.85 <= table[:, 3].min() and table[:, 3].max() <= 1.11


def test_direct_input_trains_and_runs_spike_exactly_in_lava(tmp_path: Path) -> None:
    config = tmp_path / "direct.toml"
    config.write_text(TINY_MLP.replace("time_steps = 6", 'encoding = "direct"\ntime_steps = 6\n'
                                       "levels = 15").replace(
        "learning_rate = 0.003", 'learning_rate = 0.003\naugment = "affine"'))
    out = tmp_path / "run"
    assert main(["train", "--dataset", "digits", "--model", str(config), "--out", str(out),
                 "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["encoding"] == {"name": "direct", "time_steps": 6, "levels": 15}
    assert metrics["lava_agreement"]["output_spike_agreement"] == 1.0
    assert main(["deploy", str(out / "model.net"), "--target", "lava-sim", "--samples", "64",
                 "--quiet"]) == 0
    report = json.loads((out / "deploy.json").read_text())
    assert report["spike_agreement"] == 1.0
    assert report["lava_accuracy"] == report["torch_accuracy"]
    assert report["lava_accuracy"] > 0.3  # it learned something in 2 epochs
