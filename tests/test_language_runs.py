"""Character language models in run folders: chainrule train --model lstm|transformer on a text,
exact resume, perplexity, chainrule sample, and the errors a user can cause."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from chainrule.training.language import SEQ_LEN, generate, read_text, text_splits
from chainrule.training.runs import RunConfig, RunError, load_vocabulary, sample_run, train_run

TEXT = ("the quick brown fox jumps over the lazy dog. " * 80).strip()


@pytest.fixture()
def text_file(tmp_path):
    path = tmp_path / "fox.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def test_text_splits_cut_in_reading_order(text_file):
    (train, val, test), vocab = text_splits(read_text(f"text:{text_file}"), 0.2, 0.1)
    n = len(TEXT)
    assert len(vocab) == len(set(TEXT))
    assert len(test) == (round(n * 0.2) - 1 - SEQ_LEN) // SEQ_LEN + 1
    x, y = train[0]
    assert vocab.decode(x) == TEXT[:SEQ_LEN] and vocab.decode(y) == TEXT[1:SEQ_LEN + 1]
    assert read_text("text").startswith("# chainrule")  # the bundled documentation
    with pytest.raises(ValueError, match="shorter than one window"):
        text_splits("short text", 0.2, 0.1)


@pytest.mark.parametrize("model", ["lstm", "transformer"])
def test_resume_ends_with_the_weights_of_an_uninterrupted_run(tmp_path, text_file, model):
    config = RunConfig(dataset=f"text:{text_file}", model=model, epochs=2, batch_size=16,
                       lr=3e-3)
    whole = train_run(config, tmp_path / "whole", progress=False, log=lambda *a: None)
    train_run(RunConfig(**{**config.__dict__, "epochs": 1}), tmp_path / "cut", progress=False,
              log=lambda *a: None)
    resumed = train_run(config, tmp_path / "cut", resume=True, progress=False,
                        log=lambda *a: None)
    assert (tmp_path / "whole" / "model.safetensors").read_bytes() == \
        (tmp_path / "cut" / "model.safetensors").read_bytes()
    assert resumed["test_loss"] == whole["test_loss"]
    assert whole["history"][1]["train_loss"] < whole["history"][0]["train_loss"]
    assert json.loads((tmp_path / "whole" / "vocab.json").read_text())["itos"] == \
        load_vocabulary(tmp_path / "whole").itos
    assert not (tmp_path / "whole" / "confusion.png").exists()
    assert math.isfinite(math.exp(whole["test_loss"]))


def test_sample_continues_the_prompt(tmp_path, text_file):
    folder = tmp_path / "run"
    train_run(RunConfig(dataset=f"text:{text_file}", model="lstm", epochs=1, batch_size=16),
              folder, progress=False, log=lambda *a: None)
    text = sample_run(folder, "the ", tokens=30, temperature=0.8, seed=1, log=lambda *a: None)
    assert text.startswith("the ") and len(text) == 34
    assert set(text) <= set(TEXT)
    again = sample_run(folder, "the ", tokens=30, temperature=0.8, seed=1, log=lambda *a: None)
    assert again == text  # the seed decides the draws
    greedy = sample_run(folder, "the ", tokens=10, temperature=0, log=lambda *a: None)
    assert greedy == sample_run(folder, "the ", tokens=10, temperature=0, seed=5,
                                log=lambda *a: None)
    with pytest.raises(RunError, match="never had"):
        sample_run(folder, "Zebra", log=lambda *a: None)
    with pytest.raises(RunError, match="temperature"):
        sample_run(folder, "the", temperature=-1, log=lambda *a: None)


def test_generate_with_temperature_zero_takes_the_argmax():
    class Fixed:  # always prefers the character with id 2
        def eval(self):
            return self

        def __call__(self, ids):
            import chainrule as cr

            logits = np.zeros((1, 3, ids.shape[1]))
            logits[:, 2] = 5.0
            return cr.tensor(logits)

    from chainrule.data import Vocabulary

    vocab = Vocabulary.characters("abc")
    assert generate(Fixed(), vocab, "ab", 3, temperature=0) == "abccc"


def test_cli_errors_are_one_line(tmp_path, text_file):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "chainrule", *args], capture_output=True,
                              text=True, cwd=tmp_path, timeout=120)

    mismatch = run("train", "--model", "lstm", "--out", "x")
    assert mismatch.returncode == 2
    assert "model=lstm does not fit dataset='digits'" in mismatch.stderr
    missing = run("train", "--model", "lstm", "--dataset", "text:nope.txt", "--out", "x")
    assert missing.returncode == 2 and "cannot read the text nope.txt" in missing.stderr
    not_text = tmp_path / "bad.txt"
    not_text.write_bytes(b"\xff\xfe" * 100)
    bad = run("train", "--model", "transformer", "--dataset", f"text:{not_text}", "--out", "x")
    assert bad.returncode == 2 and "not UTF-8" in bad.stderr
    assert all("Traceback" not in r.stderr for r in (mismatch, missing, bad))
    assert run("sample", "nowhere").returncode == 2
