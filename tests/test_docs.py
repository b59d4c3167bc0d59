"""The README and docs cannot drift from what the project does."""

from __future__ import annotations

import re

from conftest import REPO, london

from nomina import Workspace


def readme_blocks() -> list[str]:
    return re.findall(r"```(?:python)?\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)


def test_readme_starts_with_the_install_and_test_commands_that_ci_runs():
    install, test = (block.strip() for block in readme_blocks()[:2])
    ci = (REPO / ".ci" / "run").read_text()
    assert "nomina demo" in install and "pytest" in test
    assert install in ci.splitlines()
    assert test in ci.splitlines()


def test_readme_python_example_runs(tmp_path, faces_dir, monkeypatch, capsys):
    example = next(b for b in readme_blocks() if "from nomina import" in b)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photo1.jpg").symlink_to(london(faces_dir, "001"))
    (tmp_path / "body_face.jpg").symlink_to(london(faces_dir, "001", "smiling"))
    names: dict[str, object] = {}
    exec(compile(example, "README.md", "exec"), names)
    # The example's program ends here, letting go of its workspace (on PostgreSQL, its open connections).
    for value in names.values():
        if isinstance(value, Workspace):
            value.close()
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split()[:2] == ["1", "MP-0001"]
    assert printed[-1] == "identified"  # verified by ben, through a view of the same open workspace


def test_every_cli_command_is_in_the_cli_doc():
    import typer.main

    from nomina.cli import app

    doc = (REPO / "docs" / "cli.md").read_text()
    group = typer.main.get_command(app)
    for name, cmd in group.commands.items():
        assert re.search(rf"`nomina {name}\b", doc), f"nomina {name} is not in docs/cli.md"
        for sub in getattr(cmd, "commands", {}):
            pattern = rf"`nomina {name} (?:[^`|]*/ )?{sub}\b" if sub != "run" else rf"nomina {name} run\b"
            assert re.search(pattern, doc), f"nomina {name} {sub} is not in docs/cli.md"
