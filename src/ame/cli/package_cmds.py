"""``ame package``: build, inspect, verify, register and serve model packages.

Only presentation lives here (options, Rich tables and progress bars, JSON);
the work is done by ``ame.packaging``, imported inside each command so that
``ame --help`` never loads cryptography or MLflow. Keys are never printed:
commands show key ids, and take keys from files or environment variables only
(never as arguments, which would show up in process listings and shell history).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ame.cli.common import JsonOption, TrackingUriOption, console, err_console, print_json
from ame.errors import PackageError

if TYPE_CHECKING:
    from ame.packaging.keys import Secret

package_app = typer.Typer(
    name="package",
    help="Build, inspect, verify, register and serve (encrypted) model packages.",
    no_args_is_help=True,
)

KeyFileOption = Annotated[
    Optional[Path],
    typer.Option(
        "--key-file", help="File holding the package key (hex, as generated).", show_default=False
    ),
]
PassphraseEnvOption = Annotated[
    Optional[str],
    typer.Option(
        "--passphrase-env",
        help="Name of the environment variable holding the passphrase.",
        show_default=False,
    ),
]


def _human(size: int) -> str:
    from ame._system import format_bytes

    return format_bytes(int(size))


def _passphrase_from_env(var: str) -> str:
    value = os.environ.get(var)
    if value is None:
        raise PackageError(f"environment variable {var} (named by --passphrase-env) is not set")
    if not value:
        raise PackageError(
            f"environment variable {var} (named by --passphrase-env) is empty: "
            "a passphrase cannot be empty"
        )
    return value


def _secret(key_file: Optional[Path], passphrase_env: Optional[str]) -> Optional[Secret]:
    from ame.packaging.keys import Secret, read_key_file

    if key_file is not None and passphrase_env is not None:
        raise PackageError("give --key-file or --passphrase-env, not both")
    if key_file is not None:
        return Secret(key=read_key_file(key_file))
    if passphrase_env is not None:
        return Secret(passphrase=_passphrase_from_env(passphrase_env))
    return None


class _Bar:
    """A Rich progress bar on stderr fed by the library's (done, total) callback."""

    def __init__(self, label: str) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TransferSpeedColumn,
        )

        self._progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            console=err_console,
            transient=True,
        )
        self._task = self._progress.add_task(label, total=None)

    def __enter__(self) -> _Bar:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def __call__(self, done: int, total: int) -> None:
        self._progress.update(self._task, completed=done, total=total)


def build(
    output: Annotated[Path, typer.Option("-o", "--output", help="The package file to write.")],
    model: Annotated[
        Optional[list[str]],
        typer.Argument(
            metavar="[MODEL | PATH...]",
            help="NAME/VERSION, NAME@ALIAS or an MLflow model directory; "
            "after --files, more files or folders.",
            show_default=False,
        ),
    ] = None,
    files: Annotated[
        Optional[list[Path]],
        typer.Option(
            "--files",
            help="Plain model files or folders, instead of MODEL (more may follow).",
            show_default=False,
        ),
    ] = None,
    hooks: Annotated[
        Optional[Path],
        typer.Option(
            "--hooks", help="Directory with pre.py (preprocess) and/or post.py (postprocess)."
        ),
    ] = None,
    manifest: Annotated[
        Optional[Path],
        typer.Option(
            "--manifest",
            help="Your manifest.json, kept in the package (its entry_point loads --files).",
            show_default=False,
        ),
    ] = None,
    label: Annotated[
        Optional[str],
        typer.Option(
            "--name",
            help="The model name a package of --files reports (default: the file's).",
            show_default=False,
        ),
    ] = None,
    encrypt: Annotated[
        bool, typer.Option("--encrypt", help="Encrypt the package (AES-256-GCM).")
    ] = False,
    passphrase_env: PassphraseEnvOption = None,
    key_file: KeyFileOption = None,
    generate_key: Annotated[
        Optional[Path],
        typer.Option(
            "--generate-key",
            help="Create a new random key in this file (mode 0600).",
            show_default=False,
        ),
    ] = None,
    tracking_uri: TrackingUriOption = None,
) -> None:
    """Package a model version, or plain model files, into one file, optionally encrypted.

    Examples:
      ame package build churn/3 -o churn-3.amepkg --hooks hooks --encrypt --generate-key churn.key
      ame package build --files models --hooks hooks --manifest manifest.json \
        -o stock.amepkg --encrypt --generate-key stock.key
    """
    from ame.packaging.build import build_package
    from ame.packaging.keys import generate_key_file, read_key_file

    # ``--files a b c``: the words after the option are more files, as for
    # ``ame model register --files``; without --files the one word is the model.
    source: Optional[str] = None
    if files:
        files = [*files, *(Path(p) for p in model or [])]
    elif model:
        if len(model) > 1:
            raise PackageError(f"give one model, not {len(model)} (or --files PATH...)")
        source = model[0]
    methods = [m for m in (passphrase_env, key_file, generate_key) if m is not None]
    if len(methods) > 1:
        raise PackageError("give only one of --passphrase-env, --key-file and --generate-key")
    if encrypt and not methods:
        raise PackageError("--encrypt needs --passphrase-env VAR, --key-file F or --generate-key F")
    if methods and not encrypt:
        # Refused rather than implied: a command line without --encrypt must never
        # be read as "plain" by one person and "encrypted" by the tool.
        raise PackageError(
            "--passphrase-env, --key-file and --generate-key go with --encrypt; "
            "add --encrypt (or drop the key option for a plain package)"
        )
    key: Optional[bytes] = None
    passphrase: Optional[str] = None
    created_key: Optional[Path] = None
    if passphrase_env is not None:
        passphrase = _passphrase_from_env(passphrase_env)
    elif key_file is not None:
        key = read_key_file(key_file)
    elif generate_key is not None:
        key = generate_key_file(generate_key)
        created_key = generate_key
    try:
        with _Bar(f"packaging {output.name}") as bar:
            result = build_package(
                source,
                output,
                files=files,
                hooks_dir=hooks,
                manifest_file=manifest,
                name=label,
                key=key,
                passphrase=passphrase,
                tracking_uri=tracking_uri,
                progress=bar,
            )
    except BaseException:
        # A key that never encrypted anything is useless; do not leave it behind.
        if created_key is not None:
            created_key.unlink(missing_ok=True)
        raise
    m = result.manifest
    what = f"{m['model']['name']}/{m['model']['version']}"
    console.print(
        f"built {result.path} from {what}: {len(m['files'])} files, {_human(result.size)}"
    )
    if m.get("user_manifest"):
        console.print(f"your manifest is kept as {m['user_manifest']}")
    if result.key_id:
        how = "passphrase (scrypt)" if passphrase is not None else "key"
        console.print(f"encrypted with AES-256-GCM, {how}, key id {result.key_id}")
        if created_key is not None:
            console.print(
                f"new key written to {created_key} (mode 0600): keep it safe, "
                "it is not stored anywhere else"
            )
    else:
        console.print("not encrypted")


def inspect(
    package: Annotated[Path, typer.Argument(help="The package file.")],
    json_out: JsonOption = False,
) -> None:
    """Show a package's manifest (no key needed; nothing is authenticated).

    Example: ame package inspect churn-3.amepkg --json
    """
    from ame.cli import output
    from ame.packaging.inspect import inspect_package

    manifest = inspect_package(package)
    if json_out:
        print_json(manifest)
        return
    model = manifest["model"]
    enc = manifest.get("encryption")
    console.print(
        f"[bold]{package}[/bold]  format {manifest['format']} v{manifest['format_version']}"
    )
    console.print(
        f"model      {model['name']}/{model['version']} ({model['flavor']}) from {model['source']}"
    )
    console.print(f"created    {manifest['created']}")
    console.print(f"package id {manifest['package_id']}")
    if enc:
        kdf = enc["kdf"]
        how = (
            f"scrypt n={kdf['n']} r={kdf['r']} p={kdf['p']}"
            if kdf.get("name") == "scrypt"
            else "random key"
        )
        console.print(
            f"encryption {enc['algorithm']}, {_human(enc['chunk_size'])} chunks, {how}, "
            f"key id {enc['key_id']}"
        )
    else:
        console.print("encryption none")
    hooks = [h for h in (manifest["hooks"].get("pre"), manifest["hooks"].get("post")) if h]
    console.print(f"hooks      {', '.join(hooks) if hooks else 'none'}")
    console.print(f"user manifest {manifest.get('user_manifest') or 'none'}")
    console.print(f"signature  {'yes' if model.get('signature') else 'none'}")
    output.table(
        ("file", "size", "sha256"),
        [(e["path"], _human(e["size"]), e["sha256"]) for e in manifest["files"]],
    )


def verify(
    package: Annotated[Path, typer.Argument(help="The package file.")],
    key_file: KeyFileOption = None,
    passphrase_env: PassphraseEnvOption = None,
    json_out: JsonOption = False,
) -> None:
    """Check the key, the manifest's authenticity and every file's tags and SHA-256.

    Example: ame package verify churn-3.amepkg --key-file churn.key
    """
    from ame.packaging.reader import PackageReader

    secret = _secret(key_file, passphrase_env)
    with PackageReader(package) as reader:
        reader.unlock(secret)
        total = sum(f.size for f in reader.manifest.files)
        done = 0
        with _Bar(f"verifying {package.name}") as bar:

            def advance(n: int) -> None:
                nonlocal done
                done += n
                bar(done, total)

            checks = reader.verify(advance)
        encrypted = reader.manifest.encrypted
    if json_out:
        print_json({"ok": True, "encrypted": encrypted, "files": [c.__dict__ for c in checks]})
        return
    what = (
        "authenticated and digests match"
        if encrypted
        else "digests match (unencrypted: not authenticated)"
    )
    console.print(f"ok: {len(checks)} files, {_human(total)}, {what}")


def register_cmd(
    package: Annotated[Path, typer.Argument(help="The package file.")],
    name: Annotated[str, typer.Argument(help="Registered model to add the version to.")],
    description: Annotated[
        Optional[str], typer.Option("--description", help="Version description.")
    ] = None,
    tracking_uri: TrackingUriOption = None,
) -> None:
    """Register a package as a new model version of type packaged-encrypted (no key needed).

    Example: ame package register churn-3.amepkg churn-shipped
    Load it with AME_PACKAGE_KEY_FILE (or AME_PACKAGE_KEY / AME_PACKAGE_PASSPHRASE) set.
    """
    from ame.packaging.register import register_package

    result = register_package(package, name, tracking_uri=tracking_uri, description=description)
    console.print(f"registered {result.name}/{result.version} ({result.model_type})")


def serve(
    package: Annotated[Path, typer.Argument(help="The package file.")],
    key_file: KeyFileOption = None,
    passphrase_env: PassphraseEnvOption = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8080,
    workers: Annotated[int, typer.Option("--workers", help="Worker processes.")] = 1,
    max_batch_size: Annotated[int, typer.Option("--max-batch-size", help="Largest batch.")] = 32,
    max_latency_ms: Annotated[float, typer.Option("--max-latency-ms", help="Batching wait.")] = 5.0,
) -> None:
    """Serve a package over HTTP (MLflow scoring and open inference protocol v2).

    Example: ame package serve churn-3.amepkg --key-file churn.key --port 8080
    """
    from ame.packaging.keys import KEY_FILE_ENV, PASSPHRASE_ENV
    from ame.packaging.reader import PackageReader
    from ame.packaging.serving import RESOLVER_TARGET
    from ame.serving import register_resolver
    from ame.serving import serve as serve_source

    path = package.expanduser().resolve()
    secret = _secret(key_file, passphrase_env)
    # Check the key here, once, so a wrong key is one clear line, not a worker crash.
    with PackageReader(path) as reader:
        reader.unlock(secret)
        reader.check_members()
    # Workers (and their restarts) find the key the way a registered version does:
    # in the environment they inherit, never on a command line.
    if key_file is not None:
        os.environ[KEY_FILE_ENV] = str(key_file.expanduser().resolve())
    elif passphrase_env is not None:
        os.environ[PASSPHRASE_ENV] = _passphrase_from_env(passphrase_env)
    register_resolver("package", RESOLVER_TARGET)
    serve_source(
        f"package:{path}",
        host=host,
        port=port,
        workers=workers,
        max_batch_size=max_batch_size,
        max_latency_ms=max_latency_ms,
    )


def predict(
    package: Annotated[Path, typer.Argument(help="The package file.")],
    input_path: Annotated[
        Path, typer.Option("--input", "-i", help="JSON input: records, a column dict, or a list.")
    ],
    key_file: KeyFileOption = None,
    passphrase_env: PassphraseEnvOption = None,
) -> None:
    """Open a package and predict once on a JSON input (a quick check that it works).

    Example: ame package predict churn-3.amepkg --key-file churn.key -i rows.json
    """
    import json

    from ame.packaging.opener import open_package

    secret = _secret(key_file, passphrase_env)
    try:
        data: Any = json.loads(input_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PackageError(f"cannot read input {input_path}: {exc}") from exc
    import pandas as pd

    frame = pd.DataFrame(data) if isinstance(data, (list, dict)) else data
    with open_package(package, secret=secret) as model:
        result = model.predict(frame)
    if hasattr(result, "to_dict"):
        result = result.to_dict(orient="records") if hasattr(result, "columns") else result.tolist()
    elif hasattr(result, "tolist"):
        result = result.tolist()
    print_json({"predictions": result})


def _sweep_stale_plaintext() -> None:
    """Before any package command: remove decrypted files that killed processes left behind."""
    from ame.packaging.scratch import sweep_stale

    sweep_stale()


package_app.callback()(_sweep_stale_plaintext)
package_app.command("build")(build)
package_app.command("inspect")(inspect)
package_app.command("verify")(verify)
package_app.command("register")(register_cmd)
package_app.command("serve")(serve)
package_app.command("predict")(predict)
