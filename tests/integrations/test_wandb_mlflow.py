"""Optional loggers that need no server: wandb offline, MLflow with a local file store (skipped if absent)."""

import importlib.util

import pytest

wandb_missing = importlib.util.find_spec("wandb") is None
mlflow_missing = importlib.util.find_spec("mlflow") is None


@pytest.mark.slow
@pytest.mark.skipif(wandb_missing, reason="wandb is not installed (optional extra: arctic-like[wandb])")
def test_wandb_offline_run_is_written(make_trainer, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    trainer = make_trainer(
        max_steps=2,
        logging_steps=1,
        callbacks=[{"path": "arctic_like.integrations.wandb.WandbCallback", "kwargs": {"project": "t"}}],
    )
    trainer.train()
    runs = list((tmp_path / "out" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert list(runs[0].glob("*.wandb"))


@pytest.mark.skipif(mlflow_missing, reason="mlflow is not installed (optional extra: arctic-like[mlflow])")
def test_mlflow_local_file_store(make_trainer, tmp_path):
    import mlflow

    trainer = make_trainer(
        max_steps=2,
        logging_steps=1,
        callbacks=[{"path": "arctic_like.integrations.mlflow.MLflowCallback", "kwargs": {"experiment": "t"}}],
    )
    trainer.train()
    client = mlflow.tracking.MlflowClient((tmp_path / "out" / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("t")
    (run,) = client.search_runs([experiment.experiment_id])
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == [1, 2]
    assert run.info.status == "FINISHED"
