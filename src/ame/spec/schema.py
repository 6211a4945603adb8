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

from yaml.nodes import MappingNode, Node

from ame.spec import units
from ame.spec.raw import RawDataSet, RawModel, RawProject
from ame.spec.reader import Reader, join
from ame.spec.task_schema import read_ref, read_resources, read_schedule, read_task, spellings

PROJECT_KEYS = spellings(
    "project", "models", "tasks", "templates", "dataSets", "templateSources", "backend",
    name="project", projectid="project", dataSet="dataSets",
)  # fmt: skip
MODEL_KEYS = spellings(
    "name", "description", "type", "training", "validation", "deployment", "monitoring",
    "batchInference", "championAlias",
    validationTask="validation", batch_inference="batchInference",
)  # fmt: skip
SLOT_KEYS = spellings("task")
MONITORING_KEYS = spellings("task", "schedule", "log", "reference", "thresholds")
MONITORING_LOG_KEYS = spellings("sampleRate", "maxBytes")
THRESHOLD_KEYS = spellings("psi", "pValue")
BATCH_KEYS = spellings("task", "schedule", "dataSet", "input", "output", dataSets="dataSet")
DEPLOYMENT_KEYS = spellings(
    "resources", "replicas", "image", "ingressAnnotations", "autoDeploy", "autoTrain",
    "enableTls", "batching", "port", "host", "path", "autoscaling",
    deploy="autoDeploy", auto_train="autoTrain", enable_tls="enableTls",
    auto_deploy="autoDeploy",
)  # fmt: skip
BATCHING_KEYS = spellings("maxBatchSize", "maxLatencyMs")
AUTO_TRAIN_KEYS = spellings("poll")
AUTOSCALING_KEYS = spellings(
    "minReplicas", "maxReplicas", "targetCpuUtilization", "targetOngoingRequests"
)
BACKEND_KEYS = spellings("kind", "ray", "kubernetes")
RAY_BACKEND_KEYS = spellings("address", "namespace")
KUBERNETES_BACKEND_KEYS = spellings("context", "namespace", "image")
BACKEND_KINDS = ("local", "ray", "kubernetes")
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
    if "backend" in entries:
        raw.backend = read_backend(r, entries["backend"].value, "backend")
    return raw


def read_backend(r: Reader, node: Node, path: str) -> dict[str, Any] | None:
    """``backend: {kind, ray: {address, namespace}, kubernetes: {context, namespace, image}}``."""
    entries = r.mapping(node, path, BACKEND_KEYS, "backend settings (a mapping)")
    if entries is None:
        return None
    out: dict[str, Any] = {}
    if "kind" in entries:
        kind_node = entries["kind"].value
        kind = r.string(kind_node, join(path, "kind"), "a backend kind")
        if kind is not None and kind not in BACKEND_KINDS:
            r.issue(
                kind_node,
                join(path, "kind"),
                f"unknown backend kind {kind!r}; valid: {', '.join(BACKEND_KINDS)}",
            )
        elif kind is not None:
            out["kind"] = kind
    for section, keys in (("ray", RAY_BACKEND_KEYS), ("kubernetes", KUBERNETES_BACKEND_KEYS)):
        if section not in entries:
            continue
        section_path = join(path, section)
        fields = r.mapping(entries[section].value, section_path, keys, f"{section} settings")
        if fields is None:
            continue
        values: dict[str, Any] = {}
        for key, entry in fields.items():
            text = r.string(entry.value, join(section_path, key))
            if text is not None:
                values[key] = text
        out[section] = values
    return out


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
    for key in ("input", "output"):
        if key in entries:
            text = r.string(entries[key].value, join(path, key), "a path")
            if text is not None:
                data[key] = text
    if "input" in entries and "dataSet" in entries:
        r.issue(entries["input"].value, join(path, "input"),
                "give 'dataSet' or 'input' (what to score), not both")  # fmt: skip
    if "reference" in entries:
        entry = entries["reference"]
        raw.monitoring_reference = read_ref(r, entry.value, join(path, "reference"), "a dataset")
    if "log" in entries:
        log = _read_payload_log(r, entries["log"].value, join(path, "log"))
        if log is not None:
            data["log"] = log
    if "thresholds" in entries:
        thresholds = _read_thresholds(r, entries["thresholds"].value, join(path, "thresholds"))
        if thresholds is not None:
            data["thresholds"] = thresholds
    raw.data[slot] = data


def _read_payload_log(r: Reader, node: Node, path: str) -> dict[str, Any] | None:
    """``monitoring.log``: payload logging in the server; ``{}`` means on with defaults."""
    if getattr(node, "tag", "") == "tag:yaml.org,2002:null":
        return {}
    entries = r.mapping(node, path, MONITORING_LOG_KEYS, "payload log settings (a mapping)")
    if entries is None:
        return None
    out: dict[str, Any] = {}
    if "sampleRate" in entries:
        rate_node = entries["sampleRate"].value
        rate = r.number(rate_node, join(path, "sampleRate"), minimum=0)
        if rate is not None and rate > 1:
            r.issue(rate_node, join(path, "sampleRate"), f"must be at most 1, got {rate}")
        elif rate is not None:
            out["sampleRate"] = rate
    if "maxBytes" in entries:
        size = r.converted(
            entries["maxBytes"].value, join(path, "maxBytes"), units.parse_bytes,
            "a size such as 64Mi",
        )  # fmt: skip
        if size is not None:
            out["maxBytes"] = size
    return out


def _read_thresholds(r: Reader, node: Node, path: str) -> dict[str, Any] | None:
    """``monitoring.thresholds``: when the drift check fails (exit code 1)."""
    entries = r.mapping(node, path, THRESHOLD_KEYS, "drift thresholds (a mapping)")
    if entries is None:
        return None
    out: dict[str, Any] = {}
    for key in ("psi", "pValue"):
        if key in entries:
            value_node = entries[key].value
            value = r.number(value_node, join(path, key), minimum=0)
            if value is not None and key == "pValue" and value > 1:
                r.issue(value_node, join(path, key), f"must be at most 1, got {value_node.value}")
            elif value is not None:
                out[key] = value
    return out


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
        elif canonical == "host":
            value = r.string(entry.value, key_path, "a host name")
        elif canonical == "path":
            value = r.string(entry.value, key_path, "a URL path such as /models/iris")
            if value is not None and not value.startswith("/"):
                r.issue(entry.value, key_path, f"a path must start with '/', got {value!r}")
                value = None
        elif canonical == "autoscaling":
            value = _read_autoscaling(r, entry.value, key_path)
        elif canonical == "ingressAnnotations":
            value = r.string_map(entry.value, key_path, "annotations (a mapping)")
        elif canonical == "autoTrain":
            value = _read_auto_train(r, entry.value, key_path)
        elif canonical in ("autoDeploy", "enableTls"):
            value = r.boolean(entry.value, key_path)
        elif canonical == "batching":
            value = _read_batching(r, entry.value, key_path)
        if value is not None:
            out[canonical] = value
    return out


def _read_auto_train(r: Reader, node: Node, path: str) -> bool | dict[str, Any] | None:
    """``true``/``false``, or ``{poll: 60}`` (seconds, or a duration such as 5m)."""
    if not isinstance(node, MappingNode):
        return r.boolean(node, path)
    entries = r.mapping(node, path, AUTO_TRAIN_KEYS, "autoTrain settings (a mapping)")
    if entries is None:
        return None
    out: dict[str, Any] = {}
    if "poll" in entries:
        poll = r.converted(
            entries["poll"].value, join(path, "poll"), units.parse_duration,
            "a duration such as 60 or 5m",
        )  # fmt: skip
        if poll is not None and poll < 1:
            message = f"must be at least 1 second, got {poll:g}s"
            r.issue(entries["poll"].value, join(path, "poll"), message)
            poll = None
        if poll is None:
            return None
        out["poll"] = poll
    return out


def _read_autoscaling(r: Reader, node: Node, path: str) -> dict[str, Any] | None:
    """Replica bounds and the load each replica should carry."""
    entries = r.mapping(node, path, AUTOSCALING_KEYS, "autoscaling settings (a mapping)")
    if entries is None:
        return None
    out: dict[str, Any] = {}
    for key in ("minReplicas", "maxReplicas"):
        if key in entries:
            count = r.integer(entries[key].value, join(path, key), minimum=1)
            if count is not None:
                out[key] = count
    if "targetCpuUtilization" in entries:
        entry = entries["targetCpuUtilization"]
        percent = r.integer(entry.value, join(path, "targetCpuUtilization"), 1, 100)
        if percent is not None:
            out["targetCpuUtilization"] = percent
    if "targetOngoingRequests" in entries:
        entry = entries["targetOngoingRequests"]
        target = r.number(entry.value, join(path, "targetOngoingRequests"), minimum=0)
        if target is not None and target == 0:
            r.issue(entry.value, join(path, "targetOngoingRequests"), "must be more than 0")
        elif target is not None:
            out["targetOngoingRequests"] = target
    if not r.require(entries, node, path, "maxReplicas"):
        return None
    low, high = out.get("minReplicas", 1), out.get("maxReplicas")
    if high is not None and low > high:
        r.issue(
            entries["minReplicas"].value,
            join(path, "minReplicas"),
            f"minReplicas ({low}) is more than maxReplicas ({high})",
        )
        return None
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
