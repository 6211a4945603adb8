"""The task part of the ame.yml schema: tasks, templates, executors and their settings.

Legacy spellings (``runcommand``, ``taskType``, ``templateRef``, ``artifactCfg``,
``dataSet``, ``projectid``, the ``env`` list form) are mapped here to the
current form; values come out parsed (units to numbers, schedules checked).
"""

from __future__ import annotations

import difflib
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode

from ame.spec import units
from ame.spec.raw import RawTask, RefAt
from ame.spec.reader import ENV_NAME_RE, Reader, join
from ame.spec.source import EXECUTOR_TAGS, STANDARD_TAG_PREFIX, is_placeholder

EXECUTOR_KINDS = ("poetry", "pip", "pipenv", "custom", "mlflow", "uv")
STR_TAG = STANDARD_TAG_PREFIX + "str"
_KIND_WORDS = {tag[1:].lower(): tag for tag in EXECUTOR_TAGS if tag != "!pipEnv"}


def spellings(*canonical: str, **legacy: str) -> dict[str, str]:
    """Accepted spellings -> canonical key (legacy spellings given as keyword arguments)."""
    out = {key: key for key in canonical}
    out.update(legacy)
    return out


TASK_KEYS = {
    **spellings(
        "name", "executor", "resources", "env", "secrets", "dataSets", "fromTemplate",
        "artifacts", "triggers", "timeout", "taskRef", "project", "image",
        dataSet="dataSets", templateRef="fromTemplate", artifactCfg="artifacts",
        projectid="project",
    ),
    "runcommand": "runcommand",
    "taskType": "taskType",
}  # fmt: skip
EXECUTOR_KEYS = spellings("kind", "pythonVersion", "command", "packages", "entryPoint")
RESOURCE_KEYS = spellings("cpu", "memory", "storage", "nvidia.com/gpu", gpu="nvidia.com/gpu")
SECRET_KEYS = spellings("key", "injectAs", inject_as="injectAs")
ENV_ITEM_KEYS = spellings("key", "val", value="val")
ARTIFACT_KEYS = spellings("paths", "saveChangedFiles", save_changed_files="saveChangedFiles")
TRIGGER_KEYS = spellings("schedule")
SCHEDULE_KEYS = spellings("cron", "timezone", "catchUp", timeZone="timezone", catch_up="catchUp")
REF_KEYS = spellings("name", "project")


def read_task(
    r: Reader,
    node: Node,
    path: str,
    *,
    default_name: str | None = None,
    allow_ref: bool = False,
    what: str = "a task (a mapping)",
) -> RawTask | None:
    """Read a task, a template, or (where ``allow_ref``) a ``taskRef``."""
    bare_name = isinstance(node, ScalarNode) and node.tag == STR_TAG and not node.style
    if allow_ref and bare_name and not is_placeholder(node):
        r.issue(
            node,
            path,
            f"expected a task (a mapping); to use the task {node.value!r} write "
            f"'taskRef: {node.value}'",
        )
        return None
    entries = r.mapping(node, path, TASK_KEYS, what)
    if entries is None:
        return None
    raw = RawTask(name=default_name, node=node, path=path)
    if "taskRef" in entries:
        ref_entry = entries["taskRef"]
        ref_path = join(path, ref_entry.spelling)
        if not allow_ref:
            r.issue(
                ref_entry.key,
                path,
                "taskRef can only stand where a task is used (a model's training or "
                "validation, a dataset's task); define the task here instead",
            )
            return None
        for canonical, entry in entries.items():
            if canonical != "taskRef":
                r.issue(
                    entry.key,
                    path,
                    f"'{entry.spelling}' cannot be combined with taskRef: set it on the "
                    "referenced task instead",
                )
        raw.task_ref = read_ref(r, ref_entry.value, ref_path, "a task name")
        return raw if raw.task_ref is not None else None

    if "name" in entries:
        raw.name = r.name(entries["name"].value, join(path, "name"), "a task name")
        raw.name_node = entries["name"].value
    elif default_name is None:
        r.issue(node, path, "missing required key 'name'")
    data = raw.data

    executor = _read_executor(r, entries, path)
    if executor:
        data["executor"] = executor
    for canonical, reader in (
        ("resources", read_resources),
        ("env", _read_env),
        ("secrets", _read_secrets),
        ("artifacts", _read_artifacts),
        ("triggers", _read_triggers),
    ):
        if canonical in entries:
            entry = entries[canonical]
            value = reader(r, entry.value, join(path, entry.spelling))
            if value is not None:
                data[canonical] = value
    if "timeout" in entries:
        entry = entries["timeout"]
        seconds = r.converted(
            entry.value, join(path, entry.spelling), units.parse_duration,
            "a duration such as 30s, 5m or 1h",
        )  # fmt: skip
        if seconds is not None:
            data["timeout"] = seconds
    if "image" in entries:
        image = r.string(entries["image"].value, join(path, "image"), "an image name")
        if image is not None:
            data["image"] = image
    if "fromTemplate" in entries:
        entry = entries["fromTemplate"]
        raw.template = read_ref(r, entry.value, join(path, entry.spelling), "a template name")
    if "dataSets" in entries:
        entry = entries["dataSets"]
        ds_path = join(path, entry.spelling)
        items = r.sequence(entry.value, ds_path, "dataset names")
        for i, item in enumerate(items or []):
            ref = read_ref(r, item, join(ds_path, i), "a dataset name")
            if ref is not None:
                raw.data_sets.append(ref)
    if "project" in entries:
        entry = entries["project"]
        owner = r.name(entry.value, join(path, entry.spelling), "a project name")
        if owner is not None:
            raw.project = (owner, entry.value)
    return raw


def _read_executor(r: Reader, entries: dict[str, Any], path: str) -> dict[str, Any]:
    """The executor from ``executor: !tag {...}``, ``taskType`` and ``runcommand``."""
    executor: dict[str, Any] = {}
    kind_node: Node | None = None
    if "executor" in entries:
        entry = entries["executor"]
        node: Node = entry.value
        ex_path = join(path, entry.spelling)
        tag = node.tag or ""
        if tag in EXECUTOR_TAGS:
            executor["kind"] = EXECUTOR_TAGS[tag]
            kind_node = node
            r.source.tags_used.add(id(node))
        if isinstance(node, ScalarNode) and tag in EXECUTOR_TAGS:
            if node.value.strip():
                r.issue(node, ex_path, f"expected settings (a mapping) after {tag}")
        elif id(node) in r.source.reported:
            pass
        elif isinstance(node, ScalarNode) and node.value.strip().lower() in _KIND_WORDS:
            word = node.value.strip()
            r.issue(
                node,
                ex_path,
                f"write the executor as a tag, e.g. 'executor: {_KIND_WORDS[word.lower()]}', "
                f"not the string {word!r}",
            )
        else:
            fields = r.mapping(
                node, ex_path, EXECUTOR_KEYS, "an executor such as !poetry {command: ...}"
            )
            if fields is not None:
                _read_executor_fields(r, fields, ex_path, executor, kind_node)
    if "taskType" in entries:
        entry = entries["taskType"]
        kind = _kind(r, entry.value, join(path, entry.spelling))
        if kind is not None:
            if "kind" in executor and executor["kind"] != kind:
                r.issue(
                    entry.value,
                    join(path, entry.spelling),
                    f"taskType says {kind} but the executor says {executor['kind']}; keep one",
                )
            executor["kind"] = kind
    if "runcommand" in entries:
        entry = entries["runcommand"]
        command = r.string(entry.value, join(path, entry.spelling), "a command")
        if command is not None:
            if "command" in executor:
                r.issue(
                    entry.key,
                    path,
                    "both runcommand and executor.command are set; keep one",
                )
            executor["command"] = command
    return executor


def _read_executor_fields(
    r: Reader, fields: dict[str, Any], path: str, executor: dict[str, Any], tag_node: Node | None
) -> None:
    if "kind" in fields:
        kind = _kind(r, fields["kind"].value, join(path, "kind"))
        if kind is not None and tag_node is not None and executor.get("kind") != kind:
            r.issue(fields["kind"].value, join(path, "kind"), "kind contradicts the tag; keep one")
        elif kind is not None:
            executor["kind"] = kind
    if "pythonVersion" in fields:
        node = fields["pythonVersion"].value
        version = r.string(node, join(path, "pythonVersion"), "a Python version such as 3.11")
        if version is not None:
            if version.replace(".", "").isdigit() and not version.startswith("."):
                executor["pythonVersion"] = version
            else:
                r.issue(
                    node,
                    join(path, "pythonVersion"),
                    f"{version!r} is not a Python version: expected one such as 3.11",
                )
    if "command" in fields:
        command = r.string(fields["command"].value, join(path, "command"), "a command")
        if command is not None:
            executor["command"] = command
    if "packages" in fields:
        packages = r.string_list(fields["packages"].value, join(path, "packages"), "packages")
        if packages is not None:
            executor["packages"] = packages
            _check_one_pip_source(r, fields["packages"].key, path, executor)
    if "entryPoint" in fields:
        entry_point = r.string(fields["entryPoint"].value, join(path, "entryPoint"))
        if entry_point is not None:
            executor["entryPoint"] = entry_point


def _check_one_pip_source(r: Reader, node: Node, path: str, executor: dict[str, Any]) -> None:
    """A !pip task takes requirements.txt or ``packages``, never both (docs/tasks.md).

    Installing both would mix two lists of pins nobody reviewed together; ame
    refuses here, at the line, rather than guessing which one was meant.
    """
    directory = r.source.directory
    if executor.get("kind") != "pip" or directory is None:
        return
    if (directory / "requirements.txt").is_file():
        r.issue(
            node,
            join(path, "packages"),
            "!pip takes requirements.txt or packages, not both: "
            f"{directory / 'requirements.txt'} exists; remove packages or the file",
        )


def _kind(r: Reader, node: Node, path: str) -> str | None:
    """An executor kind from ``taskType: Mlflow`` or ``kind: poetry`` (any case)."""
    text = r.string(node, path, "an executor kind")
    if text is None:
        return None
    kind = text.strip().lower()
    if kind not in EXECUTOR_KINDS:
        close = difflib.get_close_matches(kind, EXECUTOR_KINDS, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        r.issue(
            node, path, f"unknown executor kind {text!r}{hint}; valid: {', '.join(EXECUTOR_KINDS)}"
        )
        return None
    return kind


def read_resources(r: Reader, node: Node, path: str) -> dict[str, Any] | None:
    """cpu in cores, memory and storage in bytes, GPUs as a count."""
    entries = r.mapping(node, path, RESOURCE_KEYS, "resources (a mapping)")
    if entries is None:
        return None
    out: dict[str, Any] = {}
    if "cpu" in entries:
        value = r.converted(
            entries["cpu"].value, join(path, "cpu"), units.parse_cpu, "CPU cores such as 4 or 500m"
        )
        if value is not None:
            out["cpu"] = value
    for key in ("memory", "storage"):
        if key in entries:
            size = r.converted(
                entries[key].value,
                join(path, key),
                units.parse_bytes,
                "a size such as 10G or 512Mi",
            )
            if size is not None:
                out[key] = size
    if "nvidia.com/gpu" in entries:
        entry = entries["nvidia.com/gpu"]
        gpus = r.integer(entry.value, join(path, entry.spelling), minimum=0)
        if gpus is not None:
            out["nvidia.com/gpu"] = gpus
    return out


def _read_env(r: Reader, node: Node, path: str) -> dict[str, str] | None:
    """``env`` as a mapping ``{K: V}`` or AME's list ``[{key: K, val: V}]``."""
    env: dict[str, str] = {}
    if isinstance(node, MappingNode):
        return r.string_map(
            node,
            path,
            "environment variables",
            check_key=lambda key, name: _env_name_ok(r, key, path, name),
        )
    items = r.sequence(node, path, "{key, val} pairs (or a mapping of variables)")
    if items is None:
        return None
    for i, item in enumerate(items):
        item_path = join(path, i)
        entries = r.mapping(item, item_path, ENV_ITEM_KEYS, "a {key, val} pair")
        if entries is None:
            continue
        if not (
            r.require(entries, item, item_path, "key")
            and r.require(entries, item, item_path, "val")
        ):
            continue
        key_node = entries["key"].value
        var = r.string(key_node, join(item_path, "key"), "a variable name")
        text = r.string(entries["val"].value, join(item_path, entries["val"].spelling))
        if var is None or text is None or not _env_name_ok(r, key_node, item_path, var):
            continue
        if var in env:
            r.issue(key_node, item_path, f"environment variable '{var}' is set twice")
            continue
        env[var] = text
    return env


def _env_name_ok(r: Reader, node: Node, path: str, name: str) -> bool:
    if ENV_NAME_RE.match(name):
        return True
    r.issue(node, path, f"{name!r} is not a valid environment variable name")
    return False


def _read_secrets(r: Reader, node: Node, path: str) -> list[dict[str, str]] | None:
    items = r.sequence(node, path, "secrets ({key, injectAs})")
    if items is None:
        return None
    out = []
    for i, item in enumerate(items):
        item_path = join(path, i)
        entries = r.mapping(item, item_path, SECRET_KEYS, "a secret {key, injectAs}")
        if entries is None:
            continue
        if not (
            r.require(entries, item, item_path, "key")
            and r.require(entries, item, item_path, "injectAs")
        ):
            continue
        key = r.string(entries["key"].value, join(item_path, "key"), "a secret name")
        inject = entries["injectAs"]
        inject_as = r.string(inject.value, join(item_path, inject.spelling), "a variable name")
        if key is None or inject_as is None:
            continue
        if _env_name_ok(r, inject.value, join(item_path, inject.spelling), inject_as):
            out.append({"key": key, "injectAs": inject_as})
    return out


def _read_artifacts(r: Reader, node: Node, path: str) -> dict[str, Any] | None:
    if not isinstance(node, MappingNode):
        paths = r.string_list(node, path, "paths (or a mapping {paths, saveChangedFiles})")
        return None if paths is None else {"paths": paths}
    entries = r.mapping(node, path, ARTIFACT_KEYS)
    if entries is None:
        return None
    out: dict[str, Any] = {}
    if "paths" in entries:
        paths = r.string_list(entries["paths"].value, join(path, "paths"), "paths")
        if paths is not None:
            out["paths"] = paths
    if "saveChangedFiles" in entries:
        entry = entries["saveChangedFiles"]
        flag = r.boolean(entry.value, join(path, entry.spelling))
        if flag is not None:
            out["saveChangedFiles"] = flag
    return out


def _read_triggers(r: Reader, node: Node, path: str) -> dict[str, Any] | None:
    entries = r.mapping(node, path, TRIGGER_KEYS, "triggers (a mapping)")
    if entries is None:
        return None
    out: dict[str, Any] = {}
    if "schedule" in entries:
        schedule = read_schedule(r, entries["schedule"].value, join(path, "schedule"))
        if schedule is not None:
            out["schedule"] = schedule
    return out


def read_schedule(r: Reader, node: Node, path: str) -> dict[str, Any] | None:
    """``"0 2 * * *"`` or ``{cron, timezone, catchUp}``, checked by croniter and zoneinfo."""
    what = "a cron schedule (a string, or a mapping {cron, timezone, catchUp})"
    if not isinstance(node, MappingNode):
        cron = r.converted(node, path, lambda v: units.check_cron(str(v)), what)
        return None if cron is None else {"cron": cron}
    entries = r.mapping(node, path, SCHEDULE_KEYS, what)
    if entries is None or not r.require(entries, node, path, "cron"):
        return None
    cron = r.converted(
        entries["cron"].value, join(path, "cron"), lambda v: units.check_cron(str(v)),
        "a cron schedule",
    )  # fmt: skip
    out: dict[str, Any] = {"cron": cron}
    if "timezone" in entries:
        entry = entries["timezone"]
        out["timezone"] = r.converted(
            entry.value, join(path, entry.spelling), lambda v: units.check_timezone(str(v)),
            "a time zone such as Europe/Berlin",
        )  # fmt: skip
    if "catchUp" in entries:
        entry = entries["catchUp"]
        out["catchUp"] = r.boolean(entry.value, join(path, entry.spelling))
    return None if None in out.values() else out


def read_ref(r: Reader, node: Node, path: str, what: str) -> RefAt | None:
    """``x``, ``project.x`` or ``{name: x, project: p}``."""
    if isinstance(node, MappingNode):
        entries = r.mapping(node, path, REF_KEYS)
        if entries is None or not r.require(entries, node, path, "name"):
            return None
        name = r.name(entries["name"].value, join(path, "name"), what)
        project = None
        if "project" in entries:
            project = r.name(entries["project"].value, join(path, "project"), "a project name")
            if project is None:
                return None
        return None if name is None else RefAt(name, project, node, path)
    text = r.name(node, path, f"{what} (or {{name, project}})")
    if text is None:
        return None
    return RefAt(text, None, node, path, dotted="." in text)
