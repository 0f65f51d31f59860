"""The ``gcahng`` click group.

Subcommands live in their own modules and are imported only when invoked, so that
``gcahng retrieve`` does not pay for importing the training stack. To add a command,
add an entry to ``COMMANDS``.
"""
from __future__ import annotations

import importlib
import sys
import warnings

import click

from gcahng import __version__
from gcahng.errors import GcahngError

# command name -> "module:attribute" of a click.Command
COMMANDS: dict[str, str] = {
    "index": "gcahng.cli.index:index_command",
    "retrieve": "gcahng.cli.retrieve:retrieve_command",
    "plot": "gcahng.cli.plot:plot_group",
    "data": "gcahng.cli.data:data",
    "fit": "gcahng.cli.fit:fit_command",
    "eval": "gcahng.cli.eval:eval_command",
    "ablate": "gcahng.cli.ablate:ablate",
    "export": "gcahng.cli.export:export_command",
    "serve": "gcahng.cli.serve:serve_command",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def __init__(self, *args, lazy_commands: dict[str, str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy_commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands:
            module_name, attr = self.lazy_commands[cmd_name].split(":")
            return getattr(importlib.import_module(module_name), attr)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except GcahngError as err:
            raise click.ClickException(str(err)) from err


@click.group(cls=LazyGroup, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gcahng")
def cli() -> None:
    """GCA-HNG: train metric-learning embeddings with globally correlation-aware hard negatives."""


def main() -> None:
    """Console-script entry point."""
    # printed by torch when torch_geometric is imported; nothing a user can act on
    warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=FutureWarning)
    cli(prog_name="gcahng")


if __name__ == "__main__":
    sys.exit(main())
