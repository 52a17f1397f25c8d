import hashlib

import pytest
from typer.testing import CliRunner

from socialav import hub
from socialav.cli import app


def test_registry_matches_shared_files(weights_dir, monkeypatch):
    monkeypatch.setenv("SOCIALAV_WEIGHTS_DIR", str(weights_dir))
    for name, entry in hub.REGISTRY.items():
        path = hub.resolve_weights(name, download=False)
        if entry.package_file:  # shipped inside another installed wheel
            assert path == hub.installed_package_file(entry.package_file)
        elif entry.url is None:  # trained by socialav, shipped inside the package
            assert path == hub.PACKAGE_WEIGHTS_DIR / entry.relative_path
        else:
            assert path == weights_dir / entry.relative_path


def test_wrong_sha256_is_refused(tmp_path, monkeypatch):
    entry = hub.get_entry("light-asd-ava")
    bad = tmp_path / entry.relative_path
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not the weights")
    monkeypatch.setenv("SOCIALAV_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(hub.WeightsError, match=f"expected {entry.sha256}, found "):
        hub.resolve_weights("light-asd-ava")


def test_missing_in_weights_dir_does_not_download(tmp_path, monkeypatch):
    monkeypatch.setenv("SOCIALAV_WEIGHTS_DIR", str(tmp_path))

    def fail(*args):
        raise AssertionError("must not download when SOCIALAV_WEIGHTS_DIR is set")

    with pytest.raises(hub.WeightsError, match="does not exist"):
        hub.resolve_weights("light-asd-ava", downloader=fail)


def test_download_into_cache_is_verified_and_atomic(tmp_path, monkeypatch, weights_dir):
    monkeypatch.delenv("SOCIALAV_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("SOCIALAV_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(hub, "PACKAGE_WEIGHTS_DIR", tmp_path / "none")
    payload = (weights_dir / "ultra-light-face/version-slim-320.onnx").read_bytes()
    calls = []

    def fake_urlopen(url, timeout):
        calls.append(url)
        import io

        return io.BytesIO(payload)

    monkeypatch.setattr(hub.urllib.request, "urlopen", fake_urlopen)
    path = hub.resolve_weights("ultra-light-face-slim-320")
    assert (
        hashlib.sha256(path.read_bytes()).hexdigest()
        == hub.REGISTRY["ultra-light-face-slim-320"].sha256
    )
    assert calls == [hub.REGISTRY["ultra-light-face-slim-320"].url]
    # a corrupted download leaves nothing behind
    monkeypatch.setattr(
        hub.urllib.request, "urlopen", lambda url, timeout: __import__("io").BytesIO(b"x")
    )
    with pytest.raises(hub.WeightsError, match="expected"):
        hub.resolve_weights("ultra-light-face-rfb-320")
    leftovers = list((tmp_path / "cache" / "weights" / "ultra-light-face").iterdir())
    assert [p.name for p in leftovers] == ["version-slim-320.onnx"]


def test_unknown_name():
    with pytest.raises(hub.WeightsError, match="expected one of"):
        hub.get_entry("nope")


def test_cli_list_and_verify(weights_dir, monkeypatch):
    monkeypatch.setenv("SOCIALAV_WEIGHTS_DIR", str(weights_dir))
    runner = CliRunner()
    result = runner.invoke(app, ["weights", "list"])
    assert result.exit_code == 0 and "light-asd-ava" in result.output
    result = runner.invoke(app, ["weights", "verify"])
    assert result.exit_code == 0, result.output
    assert result.output.count("ok ") == len(hub.REGISTRY)


def test_package_file_is_found_without_import_and_missing_one_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("SOCIALAV_WEIGHTS_DIR", str(tmp_path))
    path = hub.resolve_weights("silero-vad", download=False)
    assert path.name == "silero_vad.onnx" and path.parent.name == "data"
    assert hub.installed_package_file("no_such_package_xyz:a.bin") is None
    entry = hub.WeightsEntry(
        "x",
        "vad",
        "x",
        "x/x.onnx",
        None,
        "0" * 64,
        "MIT",
        "s",
        package_file="no_such_package_xyz:x.onnx",
    )
    monkeypatch.setitem(hub.REGISTRY, "x", entry)
    with pytest.raises(hub.WeightsError, match="no_such_package_xyz"):
        hub.resolve_weights("x", download=False)
