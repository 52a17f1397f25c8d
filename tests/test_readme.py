"""The README's set-up commands are the ones CI runs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands(section: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    body = text.split(f"## {section}", 1)[1]
    return re.findall(r"```bash\n(.+?)\n```", body, flags=re.S)[0].splitlines()


def test_ci_runs_the_readme_install_and_test_commands():
    ci = (ROOT / ".ci" / "run").read_text()
    install = [c for c in _commands("Install")[0].split(" && ") if c.startswith("pip install")]
    assert " && ".join(install) in ci
    assert _commands("Tests")[0] in ci
