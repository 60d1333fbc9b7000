"""Knowledge distillation: the teacher is the trained file, its counts shape the loss, and a
teacher that does not fit the student is refused by name."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gradr_deploy.datasets import load_dataset
from gradr_deploy.errors import InputError
from gradr_deploy.netx import read_netx
from gradr_deploy.netx.metadata import NetworkMetadata, recorded_metadata
from gradr_deploy.simulation.encoding import encoding_from_dict
from gradr_deploy.simulation.reference import ReferenceNetwork
from gradr_deploy.simulation.stimulus import present
from gradr_lava.config import load_model_config, parse_model_config
from gradr_lava.distill import Teacher, distillation_loss, file_sha256, teacher_path
from gradr_lava.trainer import Trainer, TrainOptions, train


def _recorded(path: Path) -> NetworkMetadata:
    recorded = recorded_metadata(read_netx(path).attrs, str(path))
    assert recorded is not None, f"{path} records no gradr-lava metadata"
    return recorded


def _test_spikes(model: Path) -> tuple[torch.Tensor, np.ndarray, NetworkMetadata]:
    meta = _recorded(model)
    split = load_dataset("digits").test
    ids = np.arange(len(split.labels))
    spikes = present(encoding_from_dict(meta.encoding), split.images, ids, meta.seed,
                     meta.drain_steps)
    return torch.from_numpy(spikes).to(torch.float32), split.labels, meta


def test_teacher_is_the_trained_network(tiny_run: Path) -> None:
    model = tiny_run / "model.net"
    spikes, labels, meta = _test_spikes(model)
    teacher = Teacher(model, 64, 10, meta.encoding, spikes.shape[-1])
    counts = teacher.counts(spikes)
    assert teacher.engine == "fast"
    reference = ReferenceNetwork(read_netx(model))
    with torch.no_grad():
        assert torch.equal(counts, reference(spikes).sum(dim=-1))
    trained = json.loads((tiny_run / "metrics.json").read_text())["test_accuracy"]
    assert float((counts.argmax(dim=1).numpy() == labels).mean()) == trained


def test_teacher_current_is_the_summed_input_of_its_output_layer(tiny_run: Path) -> None:
    model = tiny_run / "model.net"
    spikes, _, meta = _test_spikes(model)
    current = Teacher(model, 64, 10, meta.encoding, spikes.shape[-1], signal="current")
    reference = ReferenceNetwork(read_netx(model))
    with torch.no_grad():
        hidden = reference.blocks[0](spikes).sum(dim=-1)  # (N, 24) hidden spike counts
        weight = reference.blocks[1].synapse.weight.reshape(10, -1)
        # integer counts times weights on the 1/32 grid: exact in float32, in any order
        assert torch.equal(current.targets(spikes), hidden @ weight.t())
    assert current.describe()["signal"] == "current"


def test_a_teacher_that_does_not_fit_is_refused(tiny_run: Path, tmp_path: Path) -> None:
    model = tiny_run / "model.net"
    encoding = _recorded(model).encoding
    with pytest.raises(InputError, match="not found"):
        Teacher(tmp_path / "none.net", 64, 10, encoding, 8)
    with pytest.raises(InputError, match=r"layer 1 has 10 output neurons.* 5 classes"):
        Teacher(model, 64, 5, encoding, 8)
    with pytest.raises(InputError, match="takes 64 inputs, the student's input has 784"):
        Teacher(model, 784, 10, encoding, 8)
    other = {**encoding, "time_steps": encoding["time_steps"] + 2}
    with pytest.raises(InputError, match="input encoding"):
        Teacher(model, 64, 10, other, 10)


def test_a_deeper_teacher_gets_drain_steps(tiny_run: Path) -> None:
    model = tiny_run / "model.net"
    encoding = _recorded(model).encoding
    steps = encoding["time_steps"]
    assert Teacher(model, 64, 10, encoding, steps + 2).extra_steps == 0
    assert Teacher(model, 64, 10, encoding, steps).extra_steps == 2


def test_config_needs_teacher_and_weight_together() -> None:
    base = {"layers": [{"type": "dense", "features": 10}]}
    with pytest.raises(InputError, match=r"names a teacher but distill_weight = 0.0"):
        parse_model_config({**base, "training": {"teacher": "t.net"}}, "c.toml")
    with pytest.raises(InputError, match="sets distill_weight but names no teacher"):
        parse_model_config({**base, "training": {"distill_weight": 0.5}}, "c.toml")
    with pytest.raises(InputError, match=r"distill_signal = 'voltage': use one of counts"):
        parse_model_config({**base, "training": {"teacher": "t.net", "distill_weight": 0.5,
                                                 "distill_signal": "voltage"}}, "c.toml")
    with pytest.raises(InputError, match="sets teacher_temperature but names no teacher"):
        parse_model_config({**base, "training": {"teacher_temperature": 5.0}}, "c.toml")
    with pytest.raises(InputError, match=r"distill_weight = 1.5 must be"):
        parse_model_config({**base, "training": {"teacher": "t.net", "distill_weight": 1.5}},
                           "c.toml")


def test_loss_terms() -> None:
    student = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 5.0]], requires_grad=True)
    labels = torch.tensor([0, 2])
    hard = F.cross_entropy(student, labels, reduction="sum")
    assert torch.equal(distillation_loss(student, None, labels, 0.5, 2.0), hard)
    same = distillation_loss(student, student.detach(), labels, 1.0, 3.0)
    assert float(same.detach()) == pytest.approx(0.0, abs=1e-6)
    teacher = torch.tensor([[0.0, 4.0, 0.0], [0.0, 4.0, 0.0]])
    distillation_loss(student, teacher, labels, 1.0, 2.0).backward()
    # T^2 * KL differentiates to T * (softmax(s / T) - softmax(t / T)): toward the teacher
    expected = 2.0 * (torch.softmax(student.detach() / 2, 1) - torch.softmax(teacher / 2, 1))
    torch.testing.assert_close(student.grad, expected)
    student.grad = None
    distillation_loss(student, teacher, labels, 1.0, 2.0, teacher_temperature=8.0).backward()
    expected = 2.0 * (torch.softmax(student.detach() / 2, 1) - torch.softmax(teacher / 8, 1))
    torch.testing.assert_close(student.grad, expected)


def _student_config(folder: Path, teacher: str) -> Path:
    config = folder / "student.toml"
    text = (Path(__file__).parent / "conftest.py").read_text()
    tiny = text.split('TINY_MLP = """', 1)[1].split('"""', 1)[0]
    config.write_text(tiny.replace("epochs = 2", "epochs = 1") + f'teacher = "{teacher}"\n'
                      "distill_weight = 0.7\ndistill_temperature = 2.0\n")
    return config


def test_training_learns_from_the_teacher(tiny_run: Path, tiny_conv_run: Path,
                                          tmp_path: Path) -> None:
    folder = tmp_path / "configs"
    folder.mkdir()
    shutil.copy(tiny_run / "model.net", folder / "teacher.net")
    config = _student_config(folder, "teacher.net")  # read from the config's folder
    loaded = load_model_config(config)
    assert teacher_path(loaded.training.teacher, loaded.source) == folder / "teacher.net"
    options = {"dataset": "digits", "progress": False, "seed": 3}
    taught = train(TrainOptions(out=tmp_path / "taught", model=str(config), **options))
    assert taught["teacher"]["sha256"] == file_sha256(folder / "teacher.net")
    assert taught["teacher"]["encoding_checked"] is True
    outputs = (Path(__file__).resolve().parents[1] / "docs" / "outputs.md").read_text()
    assert {f"teacher.{key}" for key in taught["teacher"]} == set(
        re.findall(r"^\| `(teacher\.[a-z_0-9]+)` \|", outputs, re.MULTILINE))
    plain_config = tmp_path / "plain.toml"
    plain_config.write_text(config.read_text().split('teacher = ')[0])
    plain = train(TrainOptions(out=tmp_path / "plain", model=str(plain_config), **options))
    assert "teacher" not in plain
    assert taught["history"][0]["loss"] != plain["history"][0]["loss"]
    # the same path with other contents: not the run the checkpoint belongs to
    shutil.copy(tiny_conv_run / "model.net", folder / "teacher.net")
    with pytest.raises(InputError, match="different run"):
        train(TrainOptions(out=tmp_path / "taught", model=str(config), resume=True, epochs=1,
                           **options))


def test_an_edited_config_object_reads_its_teacher_beside_its_file(
        tiny_run: Path, tmp_path: Path) -> None:
    """The benchmark edits the config it read (lr_hold) and passes the object."""
    shutil.copy(tiny_run / "model.net", tmp_path / "teacher.net")
    loaded = load_model_config(_student_config(tmp_path, "teacher.net"))
    edited = dataclasses.replace(loaded, training=dataclasses.replace(
        loaded.training, lr_schedule="cosine", lr_hold=0.5))
    trainer = Trainer(TrainOptions(dataset="digits", out=tmp_path / "run", model=edited,
                                   progress=False))
    assert trainer.teacher is not None and trainer.teacher.path == tmp_path / "teacher.net"
