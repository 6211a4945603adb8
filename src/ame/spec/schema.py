"""The ame.yml schema as a walk over the YAML node tree.

Each ``read_*`` function knows one section: the keys it accepts (the current
spelling and every legacy one, mapped to one canonical name), the type of each
value and its units. It produces plain dicts keyed like the pydantic aliases
of ``ame.spec.model``, plus the references (templates, task references,
datasets) still to be followed, each with the node it was written at. Legacy
spellings disappear here; nothing downstream sees them.
"""

from __future__ import annotations

from typing import Any

from yaml.nodes import Node

from ame.spec import units
from ame.spec.raw import RawDataSet, RawModel, RawProject
from ame.spec.reader import Reader, join
from ame.spec.task_schema import read_ref, read_resources, read_schedule, read_task, spellings

PROJECT_KEYS = spellings(
    "project", "models", "tasks", "templates", "dataSets", "templateSources",
    name="project", projectid="project", dataSet="dataSets",
)  # fmt: skip
MODEL_KEYS = spellings(
    "name", "description", "type", "training", "validation", "deployment", "monitoring",
    "batchInference", "championAlias",
    validationTask="validation", batch_inference="batchInference",
)  # fmt: skip
SLOT_KEYS = spellings("task")
MONITORING_KEYS = spellings("task", "schedule")
BATCH_KEYS = spellings("task", "schedule", "dataSet", dataSets="dataSet")
DEPLOYMENT_KEYS = spellings(
    "resources", "replicas", "image", "ingressAnnotations", "autoDeploy", "autoTrain",
    "enableTls", "batching", "port",
    deploy="autoDeploy", auto_train="autoTrain", enable_tls="enableTls",
    auto_deploy="autoDeploy",
)  # fmt: skip
BATCHING_KEYS = spellings("maxBatchSize", "maxLatencyMs")
DATASET_KEYS = spellings("name", "path", "task", "size")
MODEL_TYPES = ("mlflow",)


# --- project -----------------------------------------------------------------


def read_project(r: Reader, root: Node) -> RawProject:
    """Read the top-level mapping of an ame.yml."""
    raw = RawProject()
    entries = r.mapping(
        root, "", PROJECT_KEYS, "a mapping starting with 'project: <name>'", extensions=True
    )
    if entries is None:
        raw.broken.update(("tasks", "templates", "dataSets", "models"))
        return raw
    if r.require(entries, root, "", "project"):
        entry = entries["project"]
        raw.name = r.name(entry.value, entry.spelling, "a project name")
        raw.name_node = entry.value
    for section in ("tasks", "templates", "models", "dataSets"):
        if section not in entries:
            continue
        entry = entries[section]
        items = r.sequence(entry.value, entry.spelling, section)
        if items is None:
            raw.broken.add(section)
            continue
        for i, item in enumerate(items):
            path = join(entry.spelling, i)
            if section == "tasks":
                task = read_task(r, item, path)
                if task is not None:
                    raw.tasks.append(task)
            elif section == "templates":
                task = read_task(r, item, path, what="a template (a mapping)")
                if task is not None:
                    raw.templates.append(task)
            elif section == "models":
                model = read_model(r, item, path)
                if model is not None:
                    raw.models.append(model)
            else:
                ds = read_data_set(r, item, path)
                if ds is not None:
                    raw.data_sets.append(ds)
    if "templateSources" in entries:
        entry = entries["templateSources"]
        raw.template_sources = r.string_list(entry.value, entry.spelling, "directories") or []
    return raw


# --- models --------------------------------------------------------------------


def read_model(r: Reader, node: Node, path: str) -> RawModel | None:
    """Read one model: its tasks (inline or referenced), deployment and schedules."""
    entries = r.mapping(node, path, MODEL_KEYS, "a model (a mapping)")
    if entries is None:
        return None
    raw = RawModel(name=None, node=node, path=path)
    if r.require(entries, node, path, "name"):
        raw.name = r.name(entries["name"].value, join(path, "name"), "a model name")
        raw.name_node = entries["name"].value
    label = raw.name or f"model{path}"
    if "description" in entries:
        text = r.string(entries["description"].value, join(path, "description"))
        if text is not None:
            raw.data["description"] = text
    if "type" in entries:
        type_node = entries["type"].value
        text = r.string(type_node, join(path, "type"), "a model type")
        if text is not None:
            if text.lower() in MODEL_TYPES:
                raw.data["type"] = text.lower()
            else:
                r.issue(
                    type_node,
                    join(path, "type"),
                    f"unknown model type {text!r}; valid: {', '.join(MODEL_TYPES)}",
                )
    if "championAlias" in entries:
        alias = r.name(entries["championAlias"].value, join(path, "championAlias"), "an alias")
        if alias is not None:
            raw.data["championAlias"] = alias
    for slot in ("training", "validation"):
        if slot not in entries:
            continue
        entry = entries[slot]
        slot_path = join(path, entry.spelling)
        if entry.spelling == "validationTask":
            # AME's code: the task itself, not wrapped in {task: ...}.
            task_node, task_path = entry.value, slot_path
        else:
            fields = r.mapping(entry.value, slot_path, SLOT_KEYS, f"{slot} settings {{task: ...}}")
            if fields is None or not r.require(fields, entry.value, slot_path, "task"):
                continue
            task_node, task_path = fields["task"].value, join(slot_path, "task")
        task = read_task(r, task_node, task_path, default_name=f"{label}.{slot}", allow_ref=True)
        if task is not None:
            raw.slots[slot] = task
    if "deployment" in entries:
        deployment = read_deployment(r, entries["deployment"].value, join(path, "deployment"))
        if deployment is not None:
            raw.data["deployment"] = deployment
    if "monitoring" in entries:
        _read_scheduled(r, raw, entries["monitoring"].value, join(path, "monitoring"),
                        "monitoring", MONITORING_KEYS, label)  # fmt: skip
    if "batchInference" in entries:
        entry = entries["batchInference"]
        _read_scheduled(r, raw, entry.value, join(path, entry.spelling),
                        "batchInference", BATCH_KEYS, label)  # fmt: skip
    return raw


def _read_scheduled(
    r: Reader, raw: RawModel, node: Node, path: str, slot: str, keys: dict[str, str], label: str
) -> None:
    entries = r.mapping(node, path, keys, f"{slot} settings (a mapping)")
    if entries is None:
        return
    data: dict[str, Any] = {}
    if "task" in entries:
        task = read_task(
            r, entries["task"].value, join(path, "task"), default_name=f"{label}.{slot}",
            allow_ref=True,
        )  # fmt: skip
        if task is not None:
            raw.slots[slot] = task
    if "schedule" in entries:
        schedule = read_schedule(r, entries["schedule"].value, join(path, "schedule"))
        if schedule is not None:
            data["schedule"] = schedule
    if "dataSet" in entries:
        entry = entries["dataSet"]
        raw.batch_data_set = read_ref(r, entry.value, join(path, entry.spelling), "a dataset")
    raw.data[slot] = data


def read_deployment(r: Reader, node: Node, path: str) -> dict[str, Any] | None:
    """Deployment settings; ``deploy``/``auto_train``/``enable_tls`` are AME's old spellings."""
    entries = r.mapping(node, path, DEPLOYMENT_KEYS, "deployment settings (a mapping)")
    if entries is None:
        return None
    out: dict[str, Any] = {}
    for canonical, entry in entries.items():
        key_path = join(path, entry.spelling)
        value: Any = None
        if canonical == "resources":
            value = read_resources(r, entry.value, key_path)
        elif canonical == "replicas":
            value = r.integer(entry.value, key_path, minimum=1)
        elif canonical == "port":
            value = r.integer(entry.value, key_path, minimum=1, maximum=65535)
        elif canonical == "image":
            value = r.string(entry.value, key_path, "an image name")
        elif canonical == "ingressAnnotations":
            value = r.string_map(entry.value, key_path, "annotations (a mapping)")
        elif canonical in ("autoDeploy", "autoTrain", "enableTls"):
            value = r.boolean(entry.value, key_path)
        elif canonical == "batching":
            value = _read_batching(r, entry.value, key_path)
        if value is not None:
            out[canonical] = value
    return out


def _read_batching(r: Reader, node: Node, path: str) -> dict[str, Any] | None:
    entries = r.mapping(node, path, BATCHING_KEYS, "batching settings (a mapping)")
    if entries is None:
        return None
    out: dict[str, Any] = {}
    if "maxBatchSize" in entries:
        size = r.integer(entries["maxBatchSize"].value, join(path, "maxBatchSize"), minimum=1)
        if size is not None:
            out["maxBatchSize"] = size
    if "maxLatencyMs" in entries:
        latency = r.number(entries["maxLatencyMs"].value, join(path, "maxLatencyMs"), minimum=0)
        if latency is not None:
            out["maxLatencyMs"] = latency
    return out


def read_data_set(r: Reader, node: Node, path: str) -> RawDataSet | None:
    """A dataset: name, path, the task that makes it, its size."""
    entries = r.mapping(node, path, DATASET_KEYS, "a dataset (a mapping)")
    if entries is None:
        return None
    raw = RawDataSet(name=None, node=node, path=path)
    if r.require(entries, node, path, "name"):
        raw.name = r.name(entries["name"].value, join(path, "name"), "a dataset name")
        raw.name_node = entries["name"].value
    if "path" in entries:
        text = r.string(entries["path"].value, join(path, "path"), "a path")
        if text is not None:
            raw.data["path"] = text
    if "size" in entries:
        size = r.converted(
            entries["size"].value, join(path, "size"), units.parse_bytes, "a size such as 50Gi"
        )
        if size is not None:
            raw.data["size"] = size
    if "task" in entries:
        raw.task = read_task(
            r, entries["task"].value, join(path, "task"),
            default_name=f"{raw.name or 'dataset' + path}.dataset", allow_ref=True,
        )  # fmt: skip
    return raw
