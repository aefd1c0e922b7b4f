"""W&B sweeps (configs/sweeps/): valid sweep files whose every value parses through the real command
line of its program, and agent-style runs that land in their own folders and log the sweep's target."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml
from wandb.sdk.launch.sweeps.utils import create_sweep_command, create_sweep_command_args

import evaluate
import train
from callbacks.recommendation import RecommendationEvaluation
from configs import CONFIG_DIR, resolve_config_args
from datamodules.music import MusicDataModule
from lightning_modules.cli import SimSongCLI
from lightning_modules.simsong import SimSongModule
from tests.conftest import wandb_records

SWEEPS = sorted((CONFIG_DIR / "sweeps").glob("*.yaml"))
METHODS = {"grid", "random", "bayes"}
DISTRIBUTIONS = {"uniform", "int_uniform", "log_uniform_values", "q_uniform", "q_log_uniform_values"}
AGENT_ENV = {"WANDB_SWEEP_ID": "testsweep", "WANDB_RUN_ID": "run0001"}


class ParsedTrainingCLI(SimSongCLI):
    """train.py's command line up to its parsed config: no model, data or trainer is built."""

    def instantiate_classes(self) -> None:
        pass


def load_sweep(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def value_rows(parameters: dict) -> list[dict]:
    """Parameter settings that together use every categorical value and both ends of every range."""
    choices = {}
    for name, spec in parameters.items():
        if "value" in spec:
            choices[name] = [spec["value"]]
        elif "values" in spec:
            choices[name] = list(spec["values"])
        else:
            choices[name] = [spec["min"], spec["max"]]
    rows = max(len(values) for values in choices.values())
    return [{name: values[i % len(values)] for name, values in choices.items()} for i in range(rows)]


def agent_argv(sweep: dict, params: dict) -> list[str]:
    """The arguments after the program that `wandb agent` passes, expanded by W&B's own functions."""
    command = create_sweep_command(list(sweep["command"]))
    args = create_sweep_command_args({"args": {k: {"value": v} for k, v in params.items()}})["args"]
    rest = command[command.index("${program}") + 1 :]
    argv = [a for chunk in rest for a in (args if chunk == "${args}" else [chunk])]
    assert not [a for a in argv if "${" in a], f"unexpanded macro in {argv}"
    return argv


def offline_run(run_dir: Path) -> tuple[str, dict]:
    """(sweep id, summary) of an offline W&B run, read from its `.wandb` file as `wandb sync` reads it."""
    def has_run_and_summary(records: list) -> bool:
        return {"run", "summary"} <= {r.WhichOneof("record_type") for r in records}

    records = wandb_records(run_dir, has_run_and_summary)
    sweep_id, summary = None, {}
    for record in records:
        if record.WhichOneof("record_type") == "run":
            sweep_id = record.run.sweep_id
        elif record.WhichOneof("record_type") == "summary":
            summary.update({item.key: json.loads(item.value_json) for item in record.summary.update if item.key})
    return sweep_id, summary


def parse_training(argv: list[str]):
    return ParsedTrainingCLI(SimSongModule, MusicDataModule, args=resolve_config_args(argv), run=False).config


@pytest.fixture
def agent_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """What `wandb agent` sets for the process of one sweep run; the dataset the cluster sweep reads.

    W&B reads the sweep's variables once per process: its state is torn down around the test, as if
    the run were the fresh process an agent starts.
    """
    import wandb

    for key, value in {**AGENT_ENV, "SIMSONG_DATA": "data/cluster_set"}.items():
        monkeypatch.setenv(key, value)
    wandb.teardown()
    yield AGENT_ENV
    if wandb.run is not None:
        wandb.finish()
    wandb.teardown()


def test_sweep_files_exist_for_training_and_each_baseline_family() -> None:
    programs = {load_sweep(p)["program"] for p in SWEEPS}
    names = {p.stem for p in SWEEPS}
    assert programs == {"train.py", "evaluate.py"}
    assert {"train_wns", "als", "bpr", "bpr_torch", "warp", "word2vec", "itemknn", "rp3beta", "ease"} <= names


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_sweep_file_is_valid(path: Path) -> None:
    sweep = load_sweep(path)
    assert sweep["method"] in METHODS and sweep["program"] in ("train.py", "evaluate.py")
    assert sweep["metric"]["name"] and sweep["metric"]["goal"] in ("minimize", "maximize")
    assert sweep["parameters"]
    for name, spec in sweep["parameters"].items():
        given = [spec[key] for key in ("value", "min", "max") if key in spec] + list(spec.get("values", []))
        assert not [v for v in given if v is None or str(v) in ("None", "null")], f"{name}: no None values"
        if "min" in spec:
            assert spec["min"] < spec["max"] and spec.get("distribution", "uniform") in DISTRIBUTIONS, name
            assert spec.get("distribution") != "log_uniform_values" or spec["min"] > 0, name
        else:
            assert ("value" in spec) != ("values" in spec), name
    if sweep["method"] == "grid":
        assert all("min" not in spec for spec in sweep["parameters"].values()), "grid needs discrete values"
    if "early_terminate" in sweep:
        stop = sweep["early_terminate"]
        assert stop["type"] == "hyperband" and ("min_iter" in stop or "max_iter" in stop)
    command = sweep["command"]
    assert "${program}" in command and "${interpreter}" in command
    configs = [i for i, chunk in enumerate(command) if chunk == "--config"]
    assert configs and command[-1] == "${args}" and command.index("${args}") > max(configs)


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_every_value_parses_through_the_program_cli(path: Path, agent_env) -> None:
    """A misspelt key or a value of the wrong type fails here, not hours into a sweep."""
    sweep = load_sweep(path)
    for params in value_rows(sweep["parameters"]):
        argv = agent_argv(sweep, params)
        if sweep["program"] == "train.py":
            config = parse_training(argv)
            assert config.run_name.endswith("-run0001")
            for key, value in params.items():
                assert config[key] == value, key
        else:
            parser = evaluate.build_parser()
            config = parser.parse_args(resolve_config_args(argv))
            for key, value in params.items():
                assert config.baselines[-1].init_args[key.removeprefix("baselines.init_args.")] == value, key
            init = parser.instantiate(config)
            model = sweep["metric"]["name"].split("/")[0]
            assert [b.name for b in init.baselines] == [model], "the target must be the only baseline"
            assert init.split == "val" and not init.generative.enabled and not init.run_dirs


def test_cluster_sweep_trains_with_ddp_on_the_agents_dataset(agent_env) -> None:
    sweep = load_sweep(CONFIG_DIR / "sweeps" / "train_wns_ddp.yaml")
    config = parse_training(agent_argv(sweep, value_rows(sweep["parameters"])[0]))
    assert config.trainer.strategy == "ddp" and config.trainer.devices == -1
    assert config.data.root == "data/cluster_set" and config.trainer.max_epochs == 48
    assert config.trainer.plugins.class_path.endswith(".LightningEnvironment")  # not SLURM's, whose srun it lacks


def test_agent_run_trains_in_its_own_folder_and_logs_the_target(tiny_dataset: Path, tmp_path: Path, agent_env) -> None:
    """A training sweep run as the agent starts it (shrunk to seconds), shards streamed through a `pipe:`
    URL as from object storage: its own run folder and W&B run, and the target metric in W&B."""
    import wandb

    bucket = tmp_path / "bucket"
    bucket.mkdir()
    for shard in (tiny_dataset / "shards").glob("*.tar"):
        shutil.move(shard, bucket / shard.name)  # only index.json stays in the dataset folder
    sweep = load_sweep(CONFIG_DIR / "sweeps" / "train_wns.yaml")
    params = value_rows(sweep["parameters"])[1]
    assert params["model.loss"] == "ns"
    tiny = [
        "--data.root", str(tiny_dataset), f"--data.shard_url_template=pipe:cat {bucket}/{{name}}",
        "--trainer.default_root_dir", str(tmp_path / "runs"), "--trainer.accelerator=cpu",
        "--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=2",
        "--trainer.callbacks.init_args.every_n_epochs=1",  # the last callback: RecommendationEvaluation
        "--model.embed_dim=32", "--model.audio_channels=8", "--model.audio_layers=2", "--model.n_mels=64",
        "--model.lyrics_max_length=32", "--model.warmup_steps=1",
        "--data.batch_size=4", "--data.num_workers=0", "--data.segment_seconds=1.0",
    ]
    cli = train.main(agent_argv(sweep, params) + tiny)

    run_dir = tmp_path / "runs" / "simsong-wns-run0001"
    assert (run_dir / "checkpoints" / "last.ckpt").exists()
    assert cli.model.hparams.loss == "ns" and cli.model.hparams.lr == params["model.lr"]
    target = sweep["metric"]["name"]
    assert wandb.run.id == "run0001" and 0 <= wandb.run.summary[target] <= 1
    assert list((run_dir / "wandb").glob("offline-run-*-run0001"))
    assert pd.read_csv(run_dir / "csv" / "metrics.csv")[target].notna().sum() == 1
    callback = next(c for c in cli.trainer.callbacks if isinstance(c, RecommendationEvaluation))
    data = cli.datamodule.dataset.interactions
    warm = data.n_songs - len(data.cold_songs)
    assert sum(len(songs) for songs, _, _ in callback.embedder._cache) == warm  # every warm song read through the pipe


@pytest.mark.parametrize("family", ["als", "word2vec", "ease"])
def test_agent_run_evaluates_a_baseline_on_validation_in_its_own_folder(
    family: str, tiny_dataset: Path, tmp_path: Path, agent_env
) -> None:
    sweep = load_sweep(CONFIG_DIR / "sweeps" / f"{family}.yaml")
    params = value_rows(sweep["parameters"])[0]
    out = tmp_path / "report"
    report = evaluate.main(agent_argv(sweep, params) + [
        "--data.root", str(tiny_dataset), "--out", str(out), "--show_progress", "false",
    ])
    assert report.out == tmp_path / "report-run0001" and not out.exists()
    assert {row["model"] for row in report.rows} == {family}
    run = json.loads((report.out / "run.json").read_text())
    assert run["settings"]["split"] == "val" and "validation split" in report.markdown
    sweep_id, summary = offline_run(Path(run["wandb"]))
    warm = next(row for row in report.rows if row["slice"] == "warm")
    assert sweep_id == "testsweep" and Path(run["wandb"]).name.endswith("-run0001")
    assert summary[sweep["metric"]["name"]] == warm["metrics"]["ndcg@10"]
