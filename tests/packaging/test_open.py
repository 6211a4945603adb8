"""Opening: hooks run around predict, and no plaintext outlives ``open``.

The temporary directory is pointed at a tmp dir with ``AME_PACKAGE_TMPDIR``;
a pre hook, imported while the package is being loaded, records what the
private directory looked like at that moment (its mode, its files' modes).
"""

from __future__ import annotations

import json
import os
import stat
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ame.packaging
from ame.errors import PackageError

PRE = textwrap.dedent(
    """
    import json
    import os
    import stat
    from pathlib import Path

    import helper  # a module shipped beside the hook, in hooks/

    _here = Path(__file__).resolve().parent
    _root = _here.parent
    _files = [p for p in _root.rglob("*") if p.is_file()]
    with open(os.environ["PKG_TEST_REPORT"], "w") as fh:
        json.dump(
            {
                "root": str(_root),
                "root_mode": stat.S_IMODE(_root.stat().st_mode),
                "file_modes": sorted({stat.S_IMODE(p.stat().st_mode) for p in _files}),
                "has_mlmodel": (_root / "models" / "MLmodel").is_file(),
                "scale": helper.SCALE,
            },
            fh,
        )


    def preprocess(inputs):
        return inputs * helper.SCALE
    """
)

POST = textwrap.dedent(
    """
    def postprocess(outputs):
        return {"predictions": [float(x) for x in outputs], "hooked": True}
    """
)


@pytest.fixture
def hooks_dir(tmp_path: Path) -> Path:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "pre.py").write_text(PRE)
    (hooks / "post.py").write_text(POST)
    (hooks / "helper.py").write_text("SCALE = 2.0\n")
    return hooks


def test_hooks_run_and_plaintext_is_gone_after_open(
    files_model: Any, hooks_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "hooked.amepkg"
    ame.packaging.build_package(
        files_model.ref,
        out,
        hooks_dir=hooks_dir,
        key=bytes(32),
        tracking_uri=files_model.tracking_uri,
        project_root=files_model.project,
    )
    manifest = ame.packaging.inspect_package(out)
    assert manifest["hooks"] == {"pre": "hooks/pre.py", "post": "hooks/post.py"}
    assert {"hooks/helper.py", "hooks/pre.py", "hooks/post.py"} <= {
        f["path"] for f in manifest["files"]
    }

    private_root = tmp_path / "private"
    report = tmp_path / "report.json"
    monkeypatch.setenv("AME_PACKAGE_TMPDIR", str(private_root))
    monkeypatch.setenv("PKG_TEST_REPORT", str(report))
    with ame.packaging.open(out, key=bytes(32)) as model:
        # Removed before open returned, not at close.
        assert list(private_root.iterdir()) == []
        seen = json.loads(report.read_text())
        assert seen["root_mode"] == 0o700
        assert seen["file_modes"] == [0o600]
        assert seen["has_mlmodel"] and seen["scale"] == 2.0
        assert Path(seen["root"]).parent == private_root.resolve()
        result = model.predict(files_model.inputs)
        # Nothing on sys.path or in the module cache points into the removed directory.
        assert not any(str(private_root) in p for p in sys.path)
        assert "helper" not in sys.modules
    assert result["hooked"] is True
    expected = (files_model.inputs.to_numpy() * 2.0) @ np.array([0.5, -1.0, 2.0]) + 3.25
    np.testing.assert_allclose(result["predictions"], expected)
    assert list(private_root.iterdir()) == []
    with pytest.raises(PackageError, match="closed"):
        model.predict(files_model.inputs)


def test_failed_load_leaves_no_plaintext(
    files_model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hooks = tmp_path / "bad-hooks"
    hooks.mkdir()
    (hooks / "pre.py").write_text("raise RuntimeError('hook exploded')\n")
    out = tmp_path / "bad.amepkg"
    ame.packaging.build_package(
        files_model.ref,
        out,
        hooks_dir=hooks,
        passphrase="pw",
        tracking_uri=files_model.tracking_uri,
        project_root=files_model.project,
    )
    private_root = tmp_path / "private"
    monkeypatch.setenv("AME_PACKAGE_TMPDIR", str(private_root))
    with pytest.raises(PackageError, match=r"hooks/pre\.py failed to import: hook exploded"):
        ame.packaging.open(out, passphrase="pw")
    assert list(private_root.iterdir()) == []


def test_default_private_dir_is_in_memory_when_available(monkeypatch: pytest.MonkeyPatch) -> None:
    from ame.packaging.opener import temp_root

    monkeypatch.delenv("AME_PACKAGE_TMPDIR", raising=False)
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        assert temp_root() == "/dev/shm"
    else:
        assert temp_root() is None


def test_hooks_dir_without_hooks_is_refused(files_model: Any, tmp_path: Path) -> None:
    empty = tmp_path / "nohooks"
    empty.mkdir()
    (empty / "readme.txt").write_text("no hooks here")
    out = tmp_path / "x.amepkg"
    with pytest.raises(PackageError, match=r"neither pre\.py"):
        ame.packaging.build_package(
            files_model.ref, out, hooks_dir=empty, tracking_uri=files_model.tracking_uri
        )
    assert not out.exists()


def test_failed_build_leaves_nothing(files_model: Any, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "pre.py").write_text("def preprocess(x):\n    return x\n")
    os.symlink("/etc/hostname", hooks / "link.txt")  # refused: only regular files
    with pytest.raises(PackageError, match="only regular files"):
        ame.packaging.build_package(
            files_model.ref,
            out_dir / "m.amepkg",
            hooks_dir=hooks,
            key=bytes(32),
            tracking_uri=files_model.tracking_uri,
            project_root=files_model.project,
        )
    assert list(out_dir.iterdir()) == []
    # A version that does not exist: nothing written either.
    with pytest.raises(ame.errors.AmeError):
        ame.packaging.build_package(
            f"{files_model.name}/999",
            out_dir / "m.amepkg",
            tracking_uri=files_model.tracking_uri,
            project_root=files_model.project,
        )
    assert list(out_dir.iterdir()) == []
    assert stat.S_IMODE(out_dir.stat().st_mode) & 0o700 == 0o700


def test_build_interrupted_mid_write_leaves_no_partial_and_keeps_the_old_package(
    files_model: Any, tmp_path: Path
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "m.amepkg"
    ame.packaging.build_package(
        files_model.ref,
        target,
        key=bytes(32),
        tracking_uri=files_model.tracking_uri,
        project_root=files_model.project,
    )
    good = target.read_bytes()
    calls: list[tuple[int, int]] = []

    def fail_after_first_bytes(done: int, total: int) -> None:
        # Called after each chunk has been written to the partial file.
        calls.append((done, total))
        if len(calls) == 2:
            raise RuntimeError("disk pulled out")

    with pytest.raises(RuntimeError, match="disk pulled out"):
        ame.packaging.build_package(
            files_model.ref,
            target,
            key=bytes(range(32)),
            chunk_size=4096,
            tracking_uri=files_model.tracking_uri,
            project_root=files_model.project,
            progress=fail_after_first_bytes,
        )
    # The failure happened with bytes already written, not before the first one.
    assert len(calls) == 2 and 0 < calls[0][0] < calls[0][1]
    assert [p.name for p in out_dir.iterdir()] == ["m.amepkg"]  # no .partial left behind
    assert target.read_bytes() == good
    assert len(ame.packaging.verify_package(target, key=bytes(32))) >= 5
