"""The console: one bar on a terminal with log lines above it, plain lines elsewhere; and the HF-style
ProgressCallback, PrinterCallback and InfoCallback."""

import fcntl
import io
import logging
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
import warnings
from pathlib import Path

import pytest

from arctic_like.callbacks import InfoCallback, PrinterCallback, ProgressCallback
from arctic_like.trainer.console import Console, _Bar, compact
from tests.callbacks.screen import render

BAR = re.compile(r"^\d+/\d+ ")


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_compact_numbers():
    assert [compact(v) for v in (0.67691234, 0.0029412, 3e-7, 1234.5678, 12, float("nan"), True)] == [
        "0.6769",
        "0.002941",
        "3e-7",
        "1235",
        "12",
        "nan",
        "True",
    ]


def test_bar_leaves_out_the_graphic_rather_than_a_figure():
    figures = "loss=0.677 lr=0.00294 eval: loss=0.101 accuracy=0.96"
    meter = {"n": 500, "total": 1000, "elapsed": 20.0, "figures": figures}
    wide = _Bar.format_meter(**meter, ncols=120)
    medium = _Bar.format_meter(**meter, ncols=90)
    narrow = _Bar.format_meter(**{**meter, "n": 1000}, ncols=80)
    assert re.fullmatch(r"500/1000 \|█+ +\| eta 00:20 25\.00it/s " + re.escape(figures), wide)
    assert len(wide) == 120
    assert medium == f"500/1000 eta 00:20 25.00it/s {figures}"
    assert narrow == f"1000/1000 <00:00 50.00it/s {figures}" and len(narrow) <= 80


def test_plain_lines_off_a_terminal(make_trainer):
    out = io.StringIO()
    trainer = make_trainer(max_steps=4, logging_steps=1, eval_steps=2, progress=True)
    trainer.console = Console(file=out)
    trainer.train()
    lines = out.getvalue().splitlines()
    assert trainer.console.mode == "lines" and trainer.console.bar is None
    assert [line.split(" | ")[0].split(" eta ")[0] for line in lines] == [
        "step 1/4",
        "step 2/4",
        "step 2/4",
        "step 3/4",
        "step 4/4",
        "step 4/4",
    ]
    train, evaluation = lines[1], lines[2]
    assert re.match(r"step 2/4 eta \d\d:\d\d \| loss=[\d.]+ grad_norm=[\d.]+ learning_rate=[\d.e-]+ ", train)
    for key in ("tokens_per_second", "samples_per_second", "step_time", "peak_memory_gib"):
        assert f" {key}=" in train
    assert re.match(r"step 2/4 \| eval_loss=[\d.]+ eval_accuracy=[\d.]+ eval_runtime=", evaluation)


def test_progress_false_means_no_console(make_trainer, capsys):
    trainer = make_trainer(max_steps=2, logging_steps=1, progress=False)
    trainer.train()
    assert trainer.console is None
    assert "step 1/2" not in capsys.readouterr().err


def test_bar_with_logs_and_warnings_above_it(make_trainer, monkeypatch, request):
    """In-process terminal: log records and warnings go above the bar, never onto it; the bar is
    drawn once at the end, and its figures include every evaluation metric."""
    screen = FakeTTY()
    monkeypatch.setattr(sys, "stderr", screen)
    monkeypatch.setenv("COLUMNS", "80")
    package = logging.getLogger("arctic_like")
    handler = logging.StreamHandler()  # writes to sys.stderr, i.e. the fake terminal
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    monkeypatch.setattr(package, "handlers", [handler])
    request.addfinalizer(lambda level=package.level: package.setLevel(level))
    package.setLevel(logging.INFO)
    quiet = logging.getLogger("tests.quiet")  # another library's logger, its handler set to WARNING
    quiet_handler = logging.StreamHandler()
    quiet_handler.setLevel(logging.WARNING)
    monkeypatch.setattr(quiet, "handlers", [quiet_handler])
    monkeypatch.setattr(quiet, "propagate", False)
    request.addfinalizer(lambda level=quiet.level: quiet.setLevel(level))
    quiet.setLevel(logging.INFO)
    trainer = make_trainer(max_steps=4, logging_steps=1, eval_steps=2, progress=True)

    def speak(self):
        if self.state.global_step == 3:
            logging.getLogger("arctic_like.test").info("a log record at step 3")
            warnings.warn("a warning at step 3", UserWarning, stacklevel=1)
            quiet.info("below its handler's level")
            quiet.warning("a library warning")

    trainer.callbacks.append(("post-optimizer-step", speak))
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        trainer.train()
    lines = render(screen.getvalue())
    bars = [line for line in lines if BAR.match(line)]
    assert len(bars) == 1 and bars[0].startswith("4/4 ")
    assert re.search(r"loss=[\d.]+ lr=[\d.e-]+ eval: loss=[\d.]+ accuracy=[\d.]+$", bars[0])
    assert lines[-1] == bars[0]
    assert "INFO arctic_like.test: a log record at step 3" in lines
    assert "a library warning" in lines and "below its handler's level" not in screen.getvalue()
    screen_text = "".join(lines).replace(" ", "")  # the warning wraps: its file path is long
    assert "UserWarning:awarningatstep3" in screen_text
    assert any(line.startswith("INFO arctic_like.trainer: training done: 4 steps") for line in lines)
    assert package.handlers == [handler] and quiet.handlers == [quiet_handler]
    assert logging.lastResort is not None
    assert warnings.showwarning.__module__ == "warnings"


def test_an_error_gives_the_console_back(make_trainer, monkeypatch):
    monkeypatch.setattr(sys, "stderr", FakeTTY())
    root_handlers = list(logging.root.handlers)
    last_resort, showwarning = logging.lastResort, warnings.showwarning
    trainer = make_trainer(max_steps=4, progress=True)

    def fail(self):
        raise RuntimeError("boom")

    trainer.callbacks.append(("post-optimizer-step", fail))
    with pytest.raises(RuntimeError, match="boom"):
        trainer.train()
    assert trainer.console.bar is None and trainer.console.mode == "bar"
    assert logging.root.handlers == root_handlers
    assert logging.lastResort is last_resort and warnings.showwarning is showwarning


TINY_RECIPE = """\
type: causal
tokenizer: {type: char}
data:
  sources: [{type: addition, digits: 1, num_samples: 16, eval_samples: 8}]
  max_length: 16
  packing: false
  eval_batch_size: 4
  use_cache: false
model:
  config: {model_type: llama, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1,
           num_attention_heads: 2, num_key_value_heads: 2, max_position_embeddings: 32}
micro_batch_size: 2
max_steps: 12
logging_steps: 3
eval_steps: 6
checkpoint: [{type: torch, save_every_n_steps: 6}]
output_dir: out
device: cpu
"""


def run_in_pty(argv: list[str], cwd: Path, columns: int = 80, timeout: float = 120.0) -> str:
    """Run ``argv`` with stdin/stdout/stderr on a pseudo-terminal ``columns`` wide; return what it wrote."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {**os.environ, "COLUMNS": str(columns), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(argv, cwd=cwd, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        else:
            pytest.fail(f"{argv} did not finish within {timeout}s")
    finally:
        proc.kill() if proc.poll() is None else None
        proc.wait()
        os.close(master)
    assert proc.returncode == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode()


@pytest.mark.slow
def test_cli_on_a_terminal_shows_one_bar_and_clean_log_lines(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY_RECIPE)
    raw = run_in_pty([str(Path(sys.executable).with_name("arctic-like")), "train", "tiny.yaml"], tmp_path)
    lines = render(raw, width=80)
    bars = [line for line in lines if BAR.match(line)]
    assert len(bars) == 1, lines
    assert re.match(r"12/12 (\|.*\| )?(eta |<)\d\d:\d\d [\d.]+it/s loss=[\d.]+ lr=[\d.e-]+ ", bars[0])
    assert re.search(r"eval: loss=[\d.]+ accuracy=[\d.]+$", bars[0])
    assert lines[-1] == bars[0]  # drawn once, last
    logical = render(raw, width=10_000)  # long log records wrap on the 80-column screen; unwrap them
    assert logical[-1] == bars[0]
    logs = [line for line in logical if not BAR.match(line)]
    assert logs and all(re.match(r"(INFO|WARNING) arctic_like\.\w+: ", line) for line in logs), logs
    assert sum("saved checkpoint" in line for line in logs) == 2
    assert any("training done: 12 steps" in line for line in logs)


def test_progress_callback_yields_to_the_console(make_trainer):
    out = FakeTTY()
    trainer = make_trainer(max_steps=2, logging_steps=1, progress=True)
    trainer.console = Console(file=io.StringIO())
    cb = trainer.add_callback(ProgressCallback(enabled=True, file=out))
    trainer.train()
    assert out.getvalue() == "" and cb.console is None


def test_progress_callback_draws_the_bar_when_the_console_is_off(make_trainer):
    out = io.StringIO()
    trainer = make_trainer(max_steps=4, eval_steps=2, logging_steps=1)
    cb = trainer.add_callback(ProgressCallback(enabled=True, file=out))
    trainer.train()
    final = render(out.getvalue(), width=200)[-1]
    assert re.match(r"4/4 (\|[█#]+\| )?eta 00:00 [\d.]+it/s loss=[\d.]+ lr=[\d.e-]+ eval: loss=", final)
    assert "accuracy=" in final and cb.console is None


def test_progress_bar_off_when_not_a_tty(make_trainer):
    out = io.StringIO()
    trainer = make_trainer(max_steps=2)
    trainer.add_callback(ProgressCallback(file=out))
    trainer.train()
    assert out.getvalue() == ""


def test_printer_prints_each_log_without_total_flos(make_trainer):
    out = io.StringIO()
    trainer = make_trainer(max_steps=2, logging_steps=1)
    trainer.add_callback(PrinterCallback(file=out))
    trainer.log({"loss": 1.0, "total_flos": 5.0})
    trainer.train()
    lines = out.getvalue().splitlines()
    assert len(lines) == 4  # the manual log, two steps, the final train summary
    assert "total_flos" not in lines[0] and "'loss': '1'" in lines[0]


def test_info_reports_parameters_data_and_batch(make_trainer):
    out = io.StringIO()
    trainer = make_trainer(max_steps=1, gradient_accumulation_steps=2)
    cb = trainer.add_callback(InfoCallback(file=out))
    trainer.train()
    info = cb.info
    assert info["parameters"] == sum(p.numel() for p in trainer.model.parameters())
    assert info["trainable_parameters"] == info["parameters"]
    assert info["effective_batch_size"] == 2 * 2 * 1
    assert info["device"] == "cpu" and info["world_size"] == 1
    assert "parameters" in out.getvalue()
