"""``ame ui``'s pages: Starlette routes rendering Jinja2 templates, plain forms, no JavaScript.

Each handler reads its form (bounded, CSRF-checked), makes the one library
call the matching CLI command makes, and answers with a page. A refusal is
shown on the page as one line, with the form as it was, and nothing is
written: the library calls are all-or-nothing, and uploaded files live in a
temporary folder that is removed whatever happens. Successful posts redirect
(post/redirect/get), except the one that shows a generated key, which must
be shown once and is never kept.

MLflow's own UI stays reachable from the same server under ``/mlflow/`` (its
ASGI app mounted, see ``ame.ui.mlflow_app``) for an embedded store, or is
linked for a remote one.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional
from urllib.parse import quote, urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ame.errors import AmeError, VersionInUseError
from ame.registry.alias_inputs import has_validation_task
from ame.registry.logged_runs import runs_with_models
from ame.registry.registration import pick_source, register_new_version
from ame.ui import actions
from ame.ui.security import CSRF_COOKIE, CSRF_FIELD, Csrf
from ame.ui.uploads import (
    DEFAULT_MAX_UPLOAD,
    BadFormError,
    UploadTooLargeError,
    close_form,
    read_form,
    save_uploads,
    scratch,
    uploads,
)

if TYPE_CHECKING:
    from ame.registry.facade import Registry
    from ame.registry.registration import VersionSource
    from ame.registry.store import Store

logger = logging.getLogger(__name__)

HERE = Path(__file__).parent
MLFLOW_PREFIX = "/mlflow"


class CsrfError(AmeError):
    """A form came without the CSRF token this browser was given."""


@dataclass
class UiConfig:
    """What one UI server works on and how it guards itself."""

    store: Store
    project_root: Optional[Path] = None
    max_upload: int = DEFAULT_MAX_UPLOAD
    # Where MLflow's own UI is: "/mlflow" when mounted here, a server's URL, or None.
    mlflow_url: Optional[str] = None
    csrf: Csrf = field(default_factory=Csrf)


def one_line(exc: BaseException) -> str:
    """The error as the single line a page shows (MLflow's long messages cut to their first)."""
    text = str(getattr(exc, "message", None) or exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= 400 else line[:397] + "..."


# The library's refusals name the CLI's way out; on a page the way out is a control.
_CLI_HINTS = (
    (", or pass --force to move it anyway", ", or tick “move it anyway” to move it regardless"),
    ("; move or delete those first, or use --force", "; move or delete those first"),
)


def for_page(message: str) -> str:
    """A library message as the page says it (the CLI's ``--force`` hints made the UI's)."""
    for cli, page in _CLI_HINTS:
        message = message.replace(cli, page)
    return message


def _status_for(exc: BaseException) -> int:
    if isinstance(exc, CsrfError):
        return 403
    if isinstance(exc, UploadTooLargeError):
        return 413
    if isinstance(exc, VersionInUseError):
        return 409
    return 400


def _strings(form: FormData, key: str) -> list[str]:
    """The text values posted under ``key`` (file parts under the same name are ignored)."""
    return [v for v in form.getlist(key) if isinstance(v, str)]


def _text_values(form: Optional[FormData], secret: str = "") -> dict[str, str]:
    """A refused form's text fields, to fill it in again (never the ``secret`` one)."""
    return {k: v for k, v in (form or {}).items() if isinstance(v, str) and k != secret}


def _uploaded_or_picked(
    root: Optional[Path], form: FormData, uploaded: Optional[Path], field: str, what: str
) -> Optional[Path]:
    """One path given by upload or picked from the project under ``field``; never both."""
    picked = actions.picked_paths(root, [str(form.get(field, ""))])
    if not picked:
        return uploaded
    if uploaded is not None:
        raise BadFormError(f"give {what} by upload or from the project, not both")
    return picked[0]


class Pages:
    """The routes, sharing one config, one registry and one traffic meter."""

    def __init__(self, config: UiConfig) -> None:
        from ame.registry.facade import Registry

        self.config = config
        self.registry: Registry = Registry(config.store)
        self.meter = actions.TrafficMeter()
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.globals["mlflow_url"] = config.mlflow_url
        self.templates.env.filters["when"] = lambda d: d.strftime("%Y-%m-%d %H:%M") if d else ""

    # --- rendering -----------------------------------------------------------------

    def _nonce(self, request: Request) -> tuple[str, bool]:
        nonce = request.cookies.get(CSRF_COOKIE)
        if nonce:
            return nonce, False
        return self.config.csrf.new_nonce(), True

    def render(
        self,
        request: Request,
        template: str,
        context: dict[str, Any],
        status: int = 200,
        *,
        no_store: bool = False,
    ) -> Response:
        """A page, with this browser's CSRF token in its forms (and its cookie set if new)."""
        nonce, fresh = self._nonce(request)
        context = {
            "csrf_field": CSRF_FIELD,
            "csrf_token": self.config.csrf.token_for(nonce),
            "notice": self._notice(request),
            "error": None,
            **context,
        }
        response = self.templates.TemplateResponse(request, template, context, status_code=status)
        if fresh:
            response.set_cookie(CSRF_COOKIE, nonce, httponly=True, samesite="strict", path="/")
        if no_store:
            response.headers["cache-control"] = "no-store"
        return response

    def _sign(self, text: str) -> str:
        return hmac.new(
            self.config.csrf.token_for("notice").encode(), text.encode(), hashlib.sha256
        ).hexdigest()[:32]

    def redirect(self, path: str, notice: Optional[str] = None) -> RedirectResponse:
        """Post/redirect/get, carrying a signed one-line notice (so no one can forge one)."""
        if notice:
            path += ("&" if "?" in path else "?") + urlencode(
                {"notice": notice, "n": self._sign(notice)}
            )
        return RedirectResponse(path, status_code=303)

    def _notice(self, request: Request) -> Optional[str]:
        text = request.query_params.get("notice")
        sig = request.query_params.get("n", "")
        if text and hmac.compare_digest(self._sign(text), sig):
            return text
        return None

    async def form(self, request: Request) -> FormData:
        """The posted form, size-capped, refused without this browser's CSRF token."""
        form = await read_form(request, self.config.max_upload)
        token = form.get(CSRF_FIELD)
        if not self.config.csrf.check(
            request.cookies.get(CSRF_COOKIE), token if isinstance(token, str) else None
        ):
            close_form(form)
            raise CsrfError(
                "this form was refused: its CSRF token is missing or stale; reload the page "
                "and send it again"
            )
        return form

    async def guarded(
        self,
        request: Request,
        action: Callable[[FormData], Awaitable[Response]],
        on_error: Callable[[str, int, Optional[FormData]], Awaitable[Response]],
    ) -> Response:
        """Run a form's action; any refusal becomes its page again with one line of error."""
        form: Optional[FormData] = None
        try:
            form = await self.form(request)
            return await action(form)
        except Exception as exc:
            if not isinstance(exc, AmeError):
                from mlflow.exceptions import MlflowException

                if not isinstance(exc, MlflowException):
                    logger.exception("ame ui: %s %s failed", request.method, request.url.path)
            return await on_error(for_page(one_line(exc)), _status_for(exc), form)
        finally:
            close_form(form)

    # --- models ----------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        return RedirectResponse("/models", status_code=307)

    async def models(self, request: Request) -> Response:
        query = request.query_params.get("q", "")
        error = None
        rows: list[actions.ModelRow] = []
        try:
            deps = await run_in_threadpool(
                actions.deployments, self.config.project_root, self.config.store
            )
            rows = await run_in_threadpool(
                actions.model_rows, self.registry, self.config.project_root, deps, query
            )
        except Exception as exc:
            error = one_line(exc)
        return self.render(request, "models.html", {"rows": rows, "q": query, "error": error})

    async def new_model(self, request: Request) -> Response:
        if request.method == "GET":
            return self.render(request, "new_model.html", {"values": {}})

        async def create(form: FormData) -> Response:
            name = str(form.get("name", "")).strip()
            description = str(form.get("description", "")).strip() or None
            model = await run_in_threadpool(self.registry.create_model, name, description)
            return self.redirect(f"/models/{quote(model.name)}", f"created model {model.name}")

        async def failed(message: str, status: int, form: Optional[FormData]) -> Response:
            values = _text_values(form)
            return self.render(
                request, "new_model.html", {"values": values, "error": message}, status
            )

        return await self.guarded(request, create, failed)

    def _model_context(self, name: str) -> dict[str, Any]:
        model = self.registry.get_model(name)
        versions = list(self.registry.iter_versions(name))
        champion = actions.champion_alias(self.config.project_root, name)
        return {
            "model": model,
            "versions": versions,
            "champion": champion,
            "types": {v.version: actions.version_type(v) for v in versions},
            "sources": {v.version: actions.version_source(v) for v in versions},
            "states": {v.version: actions.validation_state(v) for v in versions},
        }

    async def model_page(
        self,
        request: Request,
        *,
        error: Optional[str] = None,
        status: int = 200,
        extra: Optional[dict[str, Any]] = None,
    ) -> Response:
        name = request.path_params["name"]
        try:
            context = await run_in_threadpool(self._model_context, name)
        except Exception as exc:
            return self.render(
                request, "error.html", {"error": one_line(exc)}, 404 if status == 200 else status
            )
        context.update({"error": error, "alias_form": {}, **(extra or {})})
        return self.render(request, "model.html", context, status)

    async def model(self, request: Request) -> Response:
        return await self.model_page(request)

    async def alias(self, request: Request) -> Response:
        name = request.path_params["name"]

        async def move(form: FormData) -> Response:
            alias = str(form.get("alias", "")).strip()
            version = str(form.get("version", "")).strip()
            force = form.get("force") == "yes"
            if not alias or not version:
                raise AmeError("give the alias and the version it should point at")
            root = self.config.project_root
            needs = (
                None if root is None else await run_in_threadpool(has_validation_task, name, root)
            )
            await run_in_threadpool(
                lambda: self.registry.set_alias(
                    name, alias, version, validation_task=needs, force=force
                )
            )
            return self.redirect(f"/models/{quote(name)}", f"{name}@{alias} → version {version}")

        async def failed(message: str, status: int, form: Optional[FormData]) -> Response:
            values = _text_values(form)
            warn = "refusing to move an alias" in message
            return await self.model_page(
                request,
                error=message,
                status=status,
                extra={"alias_form": values, "alias_warning": warn},
            )

        return await self.guarded(request, move, failed)

    async def tags(self, request: Request) -> Response:
        name, version = request.path_params["name"], request.path_params["version"]

        async def edit(form: FormData) -> Response:
            tags = actions.parse_tags(str(form.get("set", "")))
            remove = [str(k).strip() for k in form.getlist("delete") if str(k).strip()]
            if not tags and not remove:
                raise AmeError("give KEY=VALUE pairs to set, or tick tags to remove")

            def apply() -> None:
                if tags:
                    self.registry.set_version_tags(name, version, tags)
                for key in remove:
                    self.registry.delete_version_tag(name, version, key)

            await run_in_threadpool(apply)
            return self.redirect(f"/models/{quote(name)}", f"tagged {name} version {version}")

        async def failed(message: str, status: int, form: Optional[FormData]) -> Response:
            return await self.model_page(request, error=message, status=status)

        return await self.guarded(request, edit, failed)

    async def delete_version(self, request: Request) -> Response:
        name, version = request.path_params["name"], request.path_params["version"]

        async def delete(form: FormData) -> Response:
            typed = str(form.get("confirm", "")).strip()
            # The library checks existence and use first, then asks; the form's
            # answer is the typed number (``ame model delete`` asks on the terminal).
            deleted = await run_in_threadpool(
                lambda: self.registry.delete(
                    name,
                    version,
                    confirm=lambda _q: typed == version,
                    in_use=actions.deployment_users(self.config.project_root, self.config.store),
                )
            )
            if not deleted:
                raise AmeError(
                    f"type the version number ({version}) to confirm deleting {name} "
                    f"version {version}; nothing was deleted"
                )
            return self.redirect(f"/models/{quote(name)}", f"deleted {name} version {version}")

        async def failed(message: str, status: int, form: Optional[FormData]) -> Response:
            return await self.model_page(request, error=message, status=status)

        return await self.guarded(request, delete, failed)

    # --- new versions ----------------------------------------------------------------

    async def _new_version_context(self, name: str, kind: str) -> dict[str, Any]:
        model = await run_in_threadpool(self.registry.get_model, name)
        context: dict[str, Any] = {"model": model, "kind": kind, "values": {}}
        if kind == "run":
            context["runs"] = await run_in_threadpool(runs_with_models, self.registry)
        else:
            context["files"] = actions.project_files(self.config.project_root)
        context["max_upload_mb"] = max(1, self.config.max_upload // (1024 * 1024))
        return context

    async def new_version(self, request: Request) -> Response:
        name = request.path_params["name"]
        kind = request.query_params.get("from", "files")
        if kind not in ("files", "run", "encrypted"):
            kind = "files"
        try:
            context = await self._new_version_context(name, kind)
        except Exception as exc:
            return self.render(request, "error.html", {"error": one_line(exc)}, 404)
        return self.render(request, "new_version.html", context)

    async def _version_failed(
        self, request: Request, kind: str, message: str, status: int, form: Optional[FormData]
    ) -> Response:
        name = request.path_params["name"]
        try:
            context = await self._new_version_context(name, kind)
        except Exception as exc:
            return self.render(request, "error.html", {"error": one_line(exc)}, 404)
        context["values"] = _text_values(form, secret="passphrase")
        context["error"] = message
        return self.render(request, "new_version.html", context, status)

    async def _version_form(
        self,
        request: Request,
        kind: str,
        action: Callable[[str, FormData], Awaitable[Response]],
    ) -> Response:
        """A new-version form's post: ``action(name, form)``, or the form again if refused."""
        name = request.path_params["name"]

        async def failed(message: str, status: int, form: Optional[FormData]) -> Response:
            return await self._version_failed(request, kind, message, status, form)

        return await self.guarded(request, lambda form: action(name, form), failed)

    async def _register_from(
        self,
        request: Request,
        kind: str,
        source_of: Callable[[FormData, Path], Awaitable[VersionSource]],
    ) -> Response:
        """Register what ``source_of(form, scratch folder)`` names, as ``ame model register``."""

        async def register(name: str, form: FormData) -> Response:
            description = str(form.get("description", "")).strip() or None
            tags = actions.parse_tags(str(form.get("tags", "")))
            with scratch() as work:
                source = await source_of(form, work)
                version = await run_in_threadpool(
                    lambda: register_new_version(
                        self.registry, name, source, description=description, tags=tags
                    )
                )
            return self.redirect(
                f"/models/{quote(name)}", f"registered {name} version {version.version}"
            )

        return await self._version_form(request, kind, register)

    async def create_from_files(self, request: Request) -> Response:
        async def source(form: FormData, work: Path) -> VersionSource:
            paths = await save_uploads(uploads(form, "files"), work / "upload")
            paths += actions.picked_paths(self.config.project_root, _strings(form, "picked"))
            if not paths:
                raise BadFormError("choose files to upload or pick some from the project")
            return pick_source(files=paths)

        return await self._register_from(request, "files", source)

    async def create_from_run(self, request: Request) -> Response:
        async def source(form: FormData, work: Path) -> VersionSource:
            run_id = str(form.get("run", "")).strip()
            if not run_id:
                raise BadFormError("choose the run whose model becomes the version")
            run_id, _, artifact = run_id.partition("/")
            return pick_source(run=run_id, artifact_path=artifact or None)

        return await self._register_from(request, "run", source)

    async def create_encrypted(self, request: Request) -> Response:
        async def register(name: str, form: FormData) -> Response:
            root = self.config.project_root
            method = str(form.get("key", "generate"))
            passphrase = str(form.get("passphrase", ""))
            if method == "passphrase" and not passphrase:
                raise BadFormError("give the passphrase the key is derived from")
            if method != "passphrase":
                passphrase = ""
            description = str(form.get("description", "")).strip() or None
            with scratch() as work:
                # Uploaded model files are the package's ``models/`` folder (as
                # ``ame package build --files models/`` names them), or the folder
                # that was picked whole in the browser.
                models = await save_uploads(uploads(form, "model_files"), work / "m" / "models")
                if models:
                    models = (
                        [models[0]]
                        if len(models) == 1 and models[0].is_dir()
                        else [work / "m" / "models"]
                    )
                models += actions.picked_paths(root, _strings(form, "model_picked"))
                if not models:
                    raise BadFormError("the model files tab is empty: upload or pick model files")
                hook_uploads = uploads(form, "hook_files")
                hooks_dir: Optional[Path] = None
                if hook_uploads:
                    await save_uploads(hook_uploads, work / "hooks")
                    hooks_dir = work / "hooks"
                    # A picked ``hooks/`` folder uploads as hooks/pre.py: keep pre.py on top.
                    inner = [p for p in hooks_dir.iterdir() if p.is_dir()]
                    if len(inner) == 1 and not any(p.is_file() for p in hooks_dir.iterdir()):
                        hooks_dir = inner[0]
                hooks_dir = _uploaded_or_picked(root, form, hooks_dir, "hooks_picked", "hook files")
                manifest: Optional[Path] = None
                manifest_upload = uploads(form, "manifest")
                if manifest_upload:
                    manifest = (await save_uploads(manifest_upload[:1], work / "manifest"))[0]
                manifest = _uploaded_or_picked(
                    root, form, manifest, "manifest_picked", "the manifest"
                )
                (work / "out").mkdir()
                result = await run_in_threadpool(
                    lambda: actions.register_encrypted(
                        self.registry,
                        name,
                        work / "out",
                        model_paths=models,
                        hooks_dir=hooks_dir,
                        manifest=manifest,
                        passphrase=passphrase or None,
                        description=description,
                    )
                )
            if result.generated_key is None:
                return self.redirect(
                    f"/models/{quote(name)}",
                    f"registered {name} version {result.version.version} (packaged-encrypted, "
                    f"key from your passphrase, key id {result.key_id})",
                )
            return self.render(
                request,
                "key_once.html",
                {"result": result, "model_name": name},
                no_store=True,
            )

        return await self._version_form(request, "encrypted", register)

    # --- deployments and runs -----------------------------------------------------------

    async def deployments(self, request: Request) -> Response:
        error = None
        rows: list[tuple[Any, actions.Traffic]] = []
        try:
            deps = await run_in_threadpool(
                actions.deployments, self.config.project_root, self.config.store
            )
            for dep in deps:
                traffic = (
                    await run_in_threadpool(self.meter.read, dep.url)
                    if dep.state == "ready"
                    else actions.Traffic(error=dep.state)
                )
                rows.append((dep, traffic))
        except Exception as exc:
            error = one_line(exc)
        return self.render(request, "deployments.html", {"rows": rows, "error": error})

    async def runs(self, request: Request) -> Response:
        error = None
        runs: list[dict[str, Any]] = []
        experiment: Optional[str] = None
        try:
            runs = await run_in_threadpool(actions.task_runs, self.config.store)
            found = await run_in_threadpool(
                self.registry.client.get_experiment_by_name, self.config.store.experiment_name
            )
            experiment = found.experiment_id if found is not None else None
        except Exception as exc:
            error = one_line(exc)
        return self.render(
            request, "runs.html", {"runs": runs, "error": error, "experiment_id": experiment}
        )

    async def run_log(self, request: Request) -> Response:
        from ame.tasks.history import read_log

        run_id = request.path_params["run_id"]
        try:
            text = await run_in_threadpool(read_log, self.config.store, run_id)
        except Exception as exc:
            return self.render(request, "error.html", {"error": one_line(exc)}, 404)
        link = None
        if self.config.mlflow_url:
            link = await run_in_threadpool(
                actions.mlflow_run_link, self.config.mlflow_url, self.config.store, run_id
            )
        return self.render(
            request, "run_log.html", {"run_id": run_id, "log": text, "mlflow_link": link}
        )

    async def health(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    async def not_found(self, request: Request, exc: Exception) -> Response:
        return self.render(request, "error.html", {"error": f"no page {request.url.path}"}, 404)

    async def server_error(self, request: Request, exc: Exception) -> Response:
        logger.error("ame ui: %s failed: %s", request.url.path, exc)
        return HTMLResponse(
            f"<!doctype html><title>ame ui</title><p>error: {type(exc).__name__}</p>", 500
        )


def create_app(config: UiConfig, mlflow_app: Any = None) -> Any:
    """The UI as an ASGI app; with ``mlflow_app``, MLflow's UI answers under ``/mlflow``."""
    pages = Pages(config)
    routes = [
        Route("/", pages.home),
        Route("/_health", pages.health),
        Route("/models", pages.models),
        Route("/models/new", pages.new_model, methods=["GET", "POST"]),
        Route("/models/{name}", pages.model),
        Route("/models/{name}/alias", pages.alias, methods=["POST"]),
        Route("/models/{name}/versions/new", pages.new_version),
        Route("/models/{name}/versions/files", pages.create_from_files, methods=["POST"]),
        Route("/models/{name}/versions/run", pages.create_from_run, methods=["POST"]),
        Route("/models/{name}/versions/encrypted", pages.create_encrypted, methods=["POST"]),
        Route("/models/{name}/versions/{version}/tags", pages.tags, methods=["POST"]),
        Route("/models/{name}/versions/{version}/delete", pages.delete_version, methods=["POST"]),
        Route("/deployments", pages.deployments),
        Route("/runs", pages.runs),
        Route("/runs/{run_id}/log", pages.run_log),
        Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={404: pages.not_found, 500: pages.server_error},
    )
    app.state.pages = pages
    if mlflow_app is None:
        return app
    return PrefixDispatch(app, mlflow_app, MLFLOW_PREFIX)


class PrefixDispatch:
    """Send ``/mlflow...`` to MLflow's app (whose routes carry that prefix), the rest to ame's."""

    def __init__(self, app: Any, other: Any, prefix: str) -> None:
        self.app = app
        self.other = other
        self.prefix = prefix

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] in ("http", "websocket") else ""
        if path == self.prefix or path.startswith(self.prefix + "/"):
            await self.other(scope, receive, send)
        else:
            await self.app(scope, receive, send)
