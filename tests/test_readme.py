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


def test_the_python_api_example_runs(tmp_path, videos_dir, weights_dir):
    """The README's Python API example, on a real clip, writes the detect outputs."""
    text = (ROOT / "README.md").read_text()
    body = text.split("## Python API", 1)[1]
    code = re.findall(r"```python\n(.+?)\n```", body, flags=re.S)[0]
    assert '"video.mp4"' in code and '"out/"' in code
    clip = videos_dir / "grid_bbaf2n.mpg"
    code = code.replace('"video.mp4"', repr(str(clip))).replace('"out/"', repr(str(tmp_path)))
    exec(compile(code, "README.md", "exec"), {})
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(
        f"grid_bbaf2n{suffix}"
        for suffix in (
            ".ava.csv",
            ".rttm",
            ".json",
            ".timeline.png",
            ".annotated.mp4",
            ".report.html",
        )
    )
