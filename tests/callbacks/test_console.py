"""ProgressCallback, PrinterCallback and InfoCallback."""

import io

from arctic_like.callbacks import InfoCallback, PrinterCallback, ProgressCallback


def test_progress_bar_shows_steps_loss_and_eval(make_trainer):
    out = io.StringIO()
    trainer = make_trainer(max_steps=4, eval_steps=2, logging_steps=1)
    cb = trainer.add_callback(ProgressCallback(enabled=True, file=out))
    trainer.train()
    text = out.getvalue()
    assert "train" in text and "4/4" in text and "loss=" in text and "learning_rate=" in text
    assert "eval" in text
    assert cb.training_bar is None and cb.eval_bar is None


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
