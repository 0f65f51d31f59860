from click.testing import CliRunner

import gcahng
from gcahng.cli.main import cli


def test_version_prints_package_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert gcahng.__version__ in result.output


def test_unknown_command_fails():
    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code != 0
