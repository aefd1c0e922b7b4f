"""Train the SimSong audio–lyrics model: `uv run train.py --config wns.yaml [--config trainer/gpu.yaml] [--model.temperature=0.05]`.

Without `--data.root` it trains on the embedded demo world, which is built on first use.
"""

import logging

from configs.errors import run_entry_point, settings_errors
from datamodules.music import MusicDataModule
from lightning_modules.cli import SimSongCLI
from lightning_modules.simsong import SimSongModule
from prepare.default_dataset import dataset_root


def main(args: list[str] | None = None) -> SimSongCLI:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    with settings_errors("train.py settings"):
        cli = SimSongCLI(
            SimSongModule,
            MusicDataModule,
            args=args,
            run=False,
            dataset_root=dataset_root,
            seed_everything_default=0,
            save_config_kwargs={"overwrite": True},
            parser_kwargs={"exit_on_error": False},
        )
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=cli.config.ckpt_path, weights_only=True)
    return cli


if __name__ == "__main__":
    run_entry_point(main)
