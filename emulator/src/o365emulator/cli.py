"""``o365emulator`` (also ``python -m o365emulator`` and ``o365collector emulator``)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import click
import yaml

from .server import Emulator
from .settings import EmulatorSettingsError, default_settings, settings_from_mapping


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8400, show_default=True)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="YAML emulator settings (tenants, rows, delays, quota); default: the demo tenant.",
)
@click.option("--seed", type=int, default=None, help="Override the settings' seed.")
def main(host: str, port: int, config_path: Path | None, seed: int | None) -> None:
    """Serve the Microsoft emulator: Entra ID tokens, Graph message trace, the RWS reports."""
    try:
        if config_path is not None:
            text = config_path.read_text(encoding="utf-8")
            settings = settings_from_mapping(yaml.safe_load(text) or {})
        else:
            settings = default_settings()
    except (EmulatorSettingsError, yaml.YAMLError) as exc:
        click.echo(f"o365emulator: error: {config_path}: {exc}", err=True)
        sys.exit(2)
    if seed is not None:
        settings = dataclasses.replace(settings, seed=seed)
    click.echo(f"Emulator listening on http://{host}:{port}", err=True)
    Emulator(settings).serve_forever(host, port)
