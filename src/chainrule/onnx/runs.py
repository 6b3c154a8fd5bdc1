"""``chainrule export RUN --onnx FILE``: the committed model of a run folder as an ONNX file.

The model is rebuilt as ``chainrule evaluate`` and ``chainrule sample`` rebuild it (the run's
config.json, then the model.safetensors that commit.json names) and exported with an example
input of the run's input shape: (1, C, H, W) images for mlp and cnn, (1, 64) character ids for
lstm and transformer.
"""

from __future__ import annotations

import os
from typing import Any, Union

import numpy as np

from chainrule.onnx.graph import ExportError

__all__ = ["export_run"]


def export_run(folder: Union[str, os.PathLike], path: Union[str, os.PathLike],
               opset: int = 17, dynamic_batch: bool = True) -> tuple[Any, str]:
    """Export the run's committed model to ``path``; (ModelProto, one line saying what was
    written). A folder that is no run, or has no committed epoch, raises RunError."""
    from chainrule.onnx import _require_onnx, describe, export
    from chainrule.training.checkpoint import load_model
    from chainrule.training.language import SEQ_LEN
    from chainrule.training.runs import (
        RunConfig,
        RunError,
        _folder,
        _locate,
        _read_commit,
        build_model,
        load_splits,
        load_vocabulary,
    )

    _require_onnx()  # before reading the dataset: the missing package is the first thing to say
    folder = _folder(folder)
    config = RunConfig.load(folder)
    record = _read_commit(folder)
    if record is None:
        raise RunError(f"{folder}: no epoch is committed yet (no commit.json): nothing to export")
    weights = _locate(folder, record)["model.safetensors"]
    if config.is_text:
        vocabulary = len(load_vocabulary(folder))
        model = build_model(config.model, (SEQ_LEN,), vocabulary, config.seed)
        example: Any = np.zeros((1, SEQ_LEN), dtype=np.int64)
    else:
        _, input_shape, n_classes = load_splits(config)
        model = build_model(config.model, input_shape, n_classes, config.seed)
        example = np.zeros((1, *input_shape), dtype=np.float32)
    load_model(model, weights)
    if os.fspath(path) == "" or str(path).strip() == "":
        raise ExportError("--onnx: give the file to write, like --onnx model.onnx")
    proto = export(model, example, path, opset=opset, dynamic_batch=dynamic_batch)
    return proto, (f"wrote {path} (ONNX opset {opset}: the {config.model} of {folder} after "
                   f"epoch {record['epoch']}; {describe(proto)})")
