"""Calling a script as its command line does, in-process: `main(parse_opt([...]))`."""
import pytest


def cli_error(module, argv, capsys):
    """Run a script's main on argv; returns its one stderr line (it must exit 2 with `error: ...`)."""
    with pytest.raises(SystemExit) as exit_info:
        module.main(module.parse_opt([str(a) for a in argv]))
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2, err
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]
