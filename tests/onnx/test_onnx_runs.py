"""ONNX export of ``chainrule train``'s models: the digits MLP and CNN after one epoch, the
character LSTM and transformer, and ``chainrule export RUN --onnx FILE``."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import chainrule as cr  # noqa: E402
import chainrule.onnx as cx  # noqa: E402
from chainrule.cli import main  # noqa: E402
from chainrule.data import load_digits, write_idx  # noqa: E402
from chainrule.training.checkpoint import load_model  # noqa: E402
from chainrule.training.language import SEQ_LEN, build_language_model  # noqa: E402
from chainrule.training.runs import RunConfig, build_model, train_run  # noqa: E402

RTOL, ATOL = 1e-5, 1e-6  # as in test_onnx_export.py (ATOL: outputs near 0 only)
TEXT = ("the quick brown fox jumps over the lazy dog. " * 20).strip()  # 3 windows or more


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run folders of the digits MLP and CNN after one epoch on 300 of the digits (as IDX files,
    like MNIST's: a short epoch, the same networks)."""
    folder = tmp_path_factory.mktemp("runs")
    images, labels = load_digits()
    write_idx(folder / "images.idx", (images.numpy()[:300, 0] * 255).round().astype(np.uint8))
    write_idx(folder / "labels.idx", labels.numpy()[:300].astype(np.uint8))
    dataset = f"idx:{folder / 'images.idx'},{folder / 'labels.idx'}"
    for model in ("mlp", "cnn"):
        train_run(RunConfig(dataset=dataset, model=model, epochs=1, batch_size=64),
                  folder / model, progress=False, log=lambda *_: None)
    return folder


def _trained(folder, kind):
    model = build_model(kind, (1, 8, 8), 10, 0)
    load_model(model, folder / kind / "model.safetensors")
    return model.eval()


def _compare(model, path, inputs):
    """onnxruntime on the file vs chainrule's forward, for each batch of ``inputs``."""
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    runner = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for x in inputs:
        got = runner.run(None, {"input": x})[0]
        with cr.no_grad():
            want = model(cr.tensor(x)).numpy()
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def _digits(*batches):
    images = load_digits()[0].numpy().astype(np.float32)
    return [images[:b] for b in batches]


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_trained_digits_models_match_onnxruntime(runs, kind, tmp_path):
    model = _trained(runs, kind)
    path = tmp_path / f"{kind}.onnx"
    cx.export(model, _digits(2)[0], path)
    _compare(model, path, _digits(1, 7))


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_cli_export_writes_the_run_model(runs, kind, tmp_path, capsys):
    path = tmp_path / "model.onnx"
    assert main(["export", str(runs / kind), "--onnx", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith(f"wrote {path} (ONNX opset 17: the {kind}")
    assert "after epoch 1" in out and "input [batchx1x8x8] -> output [batchx10]" in out
    _compare(_trained(runs, kind), path, _digits(1, 7))


def test_cli_export_subprocess(runs, tmp_path):
    path = tmp_path / "cnn.onnx"
    result = subprocess.run([sys.executable, "-m", "chainrule.cli", "export", str(runs / "cnn"),
                             "--onnx", str(path), "--opset", "18"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"wrote {path} (ONNX opset 18")
    assert onnx.load(str(path)).opset_import[0].version == 18
    _compare(_trained(runs, "cnn"), path, _digits(7))


def test_cli_static_batch(runs, tmp_path, capsys):
    path = tmp_path / "mlp.onnx"
    assert main(["export", str(runs / "mlp"), "--onnx", str(path), "--static-batch"]) == 0
    assert "input [1x1x8x8] -> output [1x10]" in capsys.readouterr().out
    _compare(_trained(runs, "mlp"), path, _digits(1))


@pytest.mark.parametrize("argv, message", [
    (["export", "NOFOLDER", "--onnx", "m.onnx"], "NOFOLDER is not a run folder"),
    (["export", "RUN"], "the following arguments are required: --onnx"),
    (["export", "RUN", "--onnx", "m.onnx", "--opset", "12"], "opset=12: must be an integer from "
                                                            "17 to 21"),
    (["export", "RUN", "--onnx", ""], "--onnx: give the file to write"),
    (["export", "RUN", "--onnx", "RUN"], "must name a file"),
])
def test_cli_errors_are_one_line(runs, argv, message, capsys, monkeypatch):
    monkeypatch.chdir(runs)
    argv = [str(runs / "mlp") if a == "RUN" else a for a in argv]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("chainrule export: error: ") and err.count("\n") == 1
    assert message in err


def test_cli_refuses_a_run_without_a_commit(tmp_path, capsys):
    (tmp_path / "config.json").write_text(
        '{"dataset": "digits", "model": "mlp", "epochs": 1, "batch_size": 32, "lr": 0.001, '
        '"optimizer": "adam", "weight_decay": 0.0, "seed": 0, "test_fraction": 0.2, '
        '"val_fraction": 0.1}')
    assert main(["export", str(tmp_path), "--onnx", str(tmp_path / "m.onnx")]) == 2
    assert "no epoch is committed yet" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_cli_without_onnx_says_how_to_install(runs, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    assert main(["export", str(runs / "mlp"), "--onnx", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install -e '.[onnx]'" in err
    with pytest.raises(ImportError):  # OnnxMissingError is an ImportError too
        cx.export(cr.nn.Linear(2, 2), np.zeros((1, 2), np.float32), None)


@pytest.mark.parametrize("kind", ["lstm", "transformer"])
def test_character_models_match_onnxruntime(kind, tmp_path):
    model = build_language_model(kind, 23, seed=0).eval()
    rng = np.random.default_rng(0)
    path = tmp_path / f"{kind}.onnx"
    cx.export(model, rng.integers(0, 23, (2, SEQ_LEN)), path)
    runner = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 7):
        ids = rng.integers(0, 23, (batch, SEQ_LEN))
        got = runner.run(None, {"input": ids})[0]
        with cr.no_grad():
            want = model(cr.tensor(ids)).numpy()
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_cli_exports_a_text_run(tmp_path, capsys):
    text = tmp_path / "fox.txt"
    text.write_text(TEXT, encoding="utf-8")
    folder = tmp_path / "run"
    train_run(RunConfig(dataset=f"text:{text}", model="lstm", epochs=1, batch_size=64), folder,
              progress=False, log=lambda *_: None)
    path = tmp_path / "lstm.onnx"
    assert main(["export", str(folder), "--onnx", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"input [batchx{SEQ_LEN}] -> output [batchx" in out and "the lstm of" in out
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
