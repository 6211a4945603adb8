"""The ame.yml schema and the typed, normalised form of a project: one set of classes.

Whatever generation of spelling a file uses (AME's docs, AME's code, its older
demo repositories), ``ame.spec.normalise`` maps it onto the current keys, and
these classes validate it: each field's type, bounds, pattern and units are
declared once, here. ``What`` says in words what a field holds, for messages.
Legacy spellings of a key are declared on the class that owns the key
(``legacy``), so adding or renaming a key means changing one class. The loader
then merges templates, follows ``taskRef``s and validates the resolved project
with the same classes. Everything downstream (tasks, lifecycle, serving) reads
only this, never raw YAML.

Field names are snake_case in Python and camelCase in JSON (``by_alias``), so
``Project.model_dump(mode="json", by_alias=True)`` is the canonical current
form and loads back with ``Project.model_validate``.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Optional, Union, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)

from ame.spec import units
from ame.spec.types import (
    EMPTY,
    ENV_NAME_PATTERN,
    NAME_PATTERN,
    PYTHON_VERSION_PATTERN,
    URL_PATH_PATTERN,
    Units,
    What,
    fail,
    refuse,
)

ExecutorKind = Literal["poetry", "pip", "pipenv", "custom", "mlflow", "uv"]
EXECUTOR_KINDS: tuple[str, ...] = get_args(ExecutorKind)
BackendKind = Literal["local", "ray", "kubernetes"]
MODEL_TYPES = ("mlflow",)

# The value types of fields, each declared once.
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
EnvName = Annotated[str, Field(pattern=ENV_NAME_PATTERN), What("a variable name")]
Bytes = Annotated[int, Units(units.parse_bytes, "a size such as 10G or 512Mi")]
Seconds = Annotated[float, Units(units.parse_duration, "a duration such as 30s, 5m or 1h")]
Texts = list[str]


class _Base(BaseModel):
    """Every ame.yml class: unknown keys refused, legacy spellings listed, a name in words.

    ``what`` names the mapping in "expected ..., got ..." messages; ``legacy``
    maps each older spelling of a key to the current one (the normaliser reads
    it, so a legacy key never reaches the model).
    """

    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=False, defer_build=True)
    what: ClassVar[str] = "a mapping"
    legacy: ClassVar[dict[str, str]] = {}
    # The field a lone value stands for (``schedule: "0 2 * * *"`` is
    # ``{cron: ...}``); the normaliser spells it out, a model validator below
    # does the same for values given in code.
    short: ClassVar[Optional[str]] = None


class Resources(_Base):
    """What a task or a deployment needs; every quantity already parsed to a number."""

    what = "resources (a mapping)"
    legacy = {"gpu": "nvidia.com/gpu"}

    cpu: Annotated[Optional[float], Units(units.parse_cpu, "CPU cores such as 4 or 500m")] = Field(
        default=None, description="CPU cores (500m -> 0.5)."
    )
    memory: Optional[Bytes] = Field(default=None, description="Bytes (10G, 512Mi...).")
    storage: Optional[Bytes] = Field(default=None, description="Bytes.")
    gpu: Optional[int] = Field(default=None, ge=0, alias="nvidia.com/gpu", description="GPU count.")


class Executor(_Base):
    """How a task's Python environment is made and what it runs (the YAML tag is ``kind``).

    The kinds are one class each (``PipExecutor``...), picked by ``kind``: a
    key that one kind does not use is an error on the others, never ignored.
    ``Executor(kind=...)`` makes the class of that kind, so code can build one
    without knowing the classes.
    """

    what = "an executor such as !poetry {command: ...}"

    kind: ExecutorKind
    python_version: Annotated[Optional[str], What("a Python version such as 3.11")] = Field(
        default=None, alias="pythonVersion", pattern=PYTHON_VERSION_PATTERN
    )
    command: Annotated[Optional[str], What("a command")] = None

    if TYPE_CHECKING:
        # Fields of one kind, read on any: the others answer "none" (see __getattr__).
        @property
        def packages(self) -> list[str]: ...

        @property
        def entry_point(self) -> Optional[str]: ...

    def __new__(cls, *args: Any, **kwargs: Any) -> "Executor":
        if cls is Executor:
            cls = EXECUTOR_CLASSES.get(kwargs.get("kind", "custom"), CustomExecutor)
        return super().__new__(cls)

    def __getattr__(self, item: str) -> Any:
        # Code that handles every kind asks any executor for its packages or
        # entry point; a kind that takes none has none.
        if item in _OTHER_KINDS_FIELDS:
            return _OTHER_KINDS_FIELDS[item]()
        return super().__getattr__(item)  # type: ignore[misc]


class PoetryExecutor(Executor):
    """``!poetry``: pyproject.toml and poetry.lock beside ame.yml."""

    kind: Literal["poetry"] = "poetry"


def _one_or_many(value: Any) -> Any:
    """A list of strings may be given as one string."""
    return [value] if isinstance(value, str) else value


class PipExecutor(Executor):
    """``!pip``: requirements.txt beside ame.yml, or ``packages`` inline (never both)."""

    kind: Literal["pip"] = "pip"
    packages: Annotated[Texts, BeforeValidator(_one_or_many), What("a list of packages")] = Field(
        default_factory=list,
        description="!pip requirements given inline, instead of a requirements.txt.",
    )
    # requirements.txt and packages exclude each other: that is a fact about the
    # directory, checked by the loader (at the line) and the environment builder.


class PipenvExecutor(Executor):
    """``!pipEnv``/``!pipenv``: Pipfile.lock beside ame.yml."""

    kind: Literal["pipenv"] = "pipenv"


class CustomExecutor(Executor):
    """``!custom``: the command runs in ame's own environment."""

    kind: Literal["custom"] = "custom"


class MlflowExecutor(Executor):
    """``!mlflow``: an MLproject; ``entryPoint`` picks the entry point to run."""

    kind: Literal["mlflow"] = "mlflow"
    entry_point: Optional[str] = Field(default=None, alias="entryPoint")


class UvExecutor(Executor):
    """``!uv``: pyproject.toml and uv.lock beside ame.yml."""

    kind: Literal["uv"] = "uv"


_OTHER_KINDS_FIELDS: dict[str, Any] = {"packages": list, "entry_point": lambda: None}
EXECUTOR_CLASSES: dict[str, type[Executor]] = {
    "poetry": PoetryExecutor,
    "pip": PipExecutor,
    "pipenv": PipenvExecutor,
    "custom": CustomExecutor,
    "mlflow": MlflowExecutor,
    "uv": UvExecutor,
}


# Picked by ``kind`` natively; an executor written without one is ``custom``
# (the normaliser and the resolver say so before validating).
AnyExecutor = Annotated[
    Union[PoetryExecutor, PipExecutor, PipenvExecutor, CustomExecutor, MlflowExecutor, UvExecutor],
    Field(discriminator="kind"),
]


class SecretRef(_Base):
    """A secret from ame's local secret store, injected as an environment variable."""

    what = "a secret {key, injectAs}"
    legacy = {"inject_as": "injectAs"}

    key: Annotated[str, What("a secret name")]
    inject_as: EnvName = Field(alias="injectAs")


class EnvItem(_Base):
    """AME's list form of ``env``: ``[{key: K, val: V}]`` (the normaliser makes a mapping)."""

    what = "a {key, val} pair"
    legacy = {"value": "val"}

    key: EnvName
    val: str


class ArtifactConfig(_Base):
    """Files a task run keeps as MLflow run artifacts."""

    what = "paths (or a mapping {paths, saveChangedFiles})"
    legacy = {"save_changed_files": "saveChangedFiles"}
    short = "paths"

    paths: Annotated[Texts, BeforeValidator(_one_or_many), What("a list of paths")] = Field(
        default_factory=list
    )
    save_changed_files: bool = Field(default=False, alias="saveChangedFiles")

    @model_validator(mode="before")
    @classmethod
    def _paths_only(cls, data: Any) -> Any:
        """``artifacts: [paths...]`` (or one path) is short for ``{paths: [...]}``."""
        if isinstance(data, (list, str)):
            return {"paths": data}
        return data


def _cron(value: object) -> str:
    return units.check_cron(str(value))


class Schedule(_Base):
    """When a job fires: a cron expression read in a time zone (UTC unless told).

    Every schedule key of ame.yml (a task's ``triggers.schedule``,
    ``monitoring.schedule``, ``batchInference.schedule``) takes a bare cron
    string or this mapping; both become this one type, so the scheduler and
    the Kubernetes renderer read ``cron``/``timezone`` the same way.
    """

    what = "a cron schedule (a string, or a mapping {cron, timezone, catchUp})"
    legacy = {"timeZone": "timezone", "catch_up": "catchUp"}
    short = "cron"

    cron: Annotated[str, Units(_cron, "a cron schedule")] = Field(
        description="Five cron fields or a macro such as @daily."
    )
    timezone: Annotated[
        str, Units(lambda v: units.check_timezone(str(v)), "a time zone such as Europe/Berlin")
    ] = Field(default="UTC", description="An IANA zone, e.g. Europe/Berlin.")
    catch_up: bool = Field(
        default=False, alias="catchUp", description="Run once after downtime missed fires."
    )

    @model_validator(mode="before")
    @classmethod
    def _bare_cron(cls, data: Any) -> Any:
        if isinstance(data, (dict, BaseModel)):
            return data
        from ame.spec.types import converted

        return {"cron": converted(data, _cron, cls.what)}

    def __str__(self) -> str:
        return self.cron if self.timezone == "UTC" else f"{self.cron} ({self.timezone})"


def _poll(value: object) -> float:
    seconds = units.parse_duration(value)
    if seconds < 1:
        raise ValueError(f"must be at least 1 second, got {seconds:g}s")
    return seconds


class AutoTrain(_Base):
    """``deployment.autoTrain: {poll: 60}``: retrain on a new commit or changed training data."""

    what = "autoTrain settings (a mapping)"

    # At least a second: fire records are named to the second.
    poll: Annotated[float, Units(_poll, "a duration such as 60 or 5m")] = Field(
        default=60.0, description="Seconds between checks."
    )


class Triggers(_Base):
    """When a task runs by itself."""

    what = "triggers (a mapping)"

    schedule: Optional[Schedule] = None


class Ref(_Base):
    """A reference to a task, template or dataset, possibly in another project."""

    what = "a name (or {name, project})"

    name: Name
    project: Annotated[Optional[Name], What("a project name")] = None

    @model_validator(mode="before")
    @classmethod
    def _bare(cls, data: Any) -> Any:
        """``x`` or ``project.x`` as written (the resolver decides which), or ``{name, ...}``."""
        if isinstance(data, str):
            return {"name": data}
        return data

    def __str__(self) -> str:
        return f"{self.project}.{self.name}" if self.project else self.name


class Task(_Base):
    """A task: templates merged, references followed, units parsed (once resolved).

    In a file a task also takes, where a task is used, ``taskRef``; and AME's
    ``runcommand``/``taskType``, which the normaliser folds into the executor.
    """

    what = "a task (a mapping)"
    legacy = {
        "dataSet": "dataSets",
        "templateRef": "fromTemplate",
        "artifactCfg": "artifacts",
        "projectid": "project",
    }
    file_only: ClassVar[tuple[str, ...]] = ("runcommand", "taskType", "taskRef")

    name: Annotated[Name, What("a task name")]
    executor: AnyExecutor = Field(default_factory=CustomExecutor)
    resources: Resources = Field(default_factory=Resources)
    env: Annotated[
        dict[EnvName, str], What("a list of {key, val} pairs (or a mapping of variables)")
    ] = Field(default_factory=dict)
    secrets: Annotated[list[SecretRef], What("a list of secrets ({key, injectAs})")] = Field(
        default_factory=list
    )
    data_sets: Annotated[list[Ref], What("a list of dataset names")] = Field(
        default_factory=list, alias="dataSets"
    )
    from_template: Optional[Ref] = Field(default=None, alias="fromTemplate")
    artifacts: Optional[ArtifactConfig] = None
    triggers: Optional[Triggers] = None
    timeout: Optional[Seconds] = Field(default=None, description="Seconds.")
    image: Annotated[Optional[str], What("an image name")] = Field(
        default=None, description="Container image on a cluster."
    )
    # The project the task's files live in (a template or a task from another
    # project still runs in the directory of the project that defines it).
    project: Annotated[Optional[Name], What("a project name")] = None


class Batching(_Base):
    """Adaptive batching of concurrent requests in the inference server."""

    what = "batching settings (a mapping)"

    max_batch_size: int = Field(default=32, alias="maxBatchSize", ge=1)
    max_latency_ms: float = Field(default=5.0, alias="maxLatencyMs", ge=0)


class Autoscaling(_Base):
    """Replicas that follow load: a HorizontalPodAutoscaler on Kubernetes, Serve's on Ray."""

    what = "autoscaling settings (a mapping)"

    min_replicas: int = Field(default=1, alias="minReplicas", ge=1)
    max_replicas: int = Field(alias="maxReplicas", ge=1)
    target_cpu_utilization: Optional[int] = Field(
        default=None, alias="targetCpuUtilization", ge=1, le=100
    )
    target_ongoing_requests: Optional[float] = Field(
        default=None, alias="targetOngoingRequests", gt=0
    )

    @model_validator(mode="after")
    def _bounds(self) -> "Autoscaling":
        if self.min_replicas > self.max_replicas:
            fail(
                f"minReplicas ({self.min_replicas}) is more than maxReplicas ({self.max_replicas})",
                at="minReplicas",
            )
        return self


def _auto_train_tag(value: Any) -> str:
    return "settings" if isinstance(value, (dict, AutoTrain)) else "flag"


class Deployment(_Base):
    """How a model's promoted version is served."""

    what = "deployment settings (a mapping)"
    legacy = {
        "deploy": "autoDeploy",
        "auto_deploy": "autoDeploy",
        "auto_train": "autoTrain",
        "enable_tls": "enableTls",
    }

    resources: Resources = Field(default_factory=Resources)
    replicas: int = Field(default=1, ge=1)
    image: Annotated[Optional[str], What("an image name")] = None
    ingress_annotations: Annotated[dict[str, str], What("annotations (a mapping)")] = Field(
        default_factory=dict, alias="ingressAnnotations"
    )
    auto_deploy: bool = Field(default=False, alias="autoDeploy")
    # ``true``/``false``, or the mapping with its poll interval: see ``auto_train_poll``.
    auto_train: Annotated[
        Union[Annotated[bool, Tag("flag")], Annotated[AutoTrain, Tag("settings")]],
        Discriminator(_auto_train_tag),
    ] = Field(default=False, alias="autoTrain")
    enable_tls: bool = Field(default=False, alias="enableTls")
    batching: Optional[Batching] = None
    port: Optional[int] = Field(default=None, ge=1, le=65535)
    host: Annotated[Optional[str], What("a host name")] = Field(
        default=None, description="The Ingress host name."
    )
    path: Annotated[Optional[str], What("a URL path such as /models/iris")] = Field(
        default=None, pattern=URL_PATH_PATTERN, description="The Ingress path prefix."
    )
    autoscaling: Optional[Autoscaling] = None

    def auto_train_poll(self) -> Optional[float]:
        """Seconds between autoTrain's checks, or None when autoTrain is off."""
        if isinstance(self.auto_train, AutoTrain):
            return self.auto_train.poll
        return AutoTrain().poll if self.auto_train else None


class ModelTask(_Base):
    """A model's training or validation step: the resolved task it runs."""

    what = "settings {task: ...}"

    task: Task


class PayloadLog(_Base):
    """Payload logging in the server: which requests are kept, and when a log file rotates."""

    what = "payload log settings (a mapping)"

    sample_rate: float = Field(default=1.0, alias="sampleRate", ge=0, le=1)
    max_bytes: Annotated[int, Units(units.parse_bytes, "a size such as 64Mi")] = Field(
        default=64 * 1024 * 1024, alias="maxBytes", description="Bytes per log file."
    )

    @model_validator(mode="before")
    @classmethod
    def _on(cls, data: Any) -> Any:
        """``log:`` with nothing after it means payload logging on, with defaults."""
        return {} if data is EMPTY else data


class Thresholds(_Base):
    """When a drift check fails (exit 1): a PSI above ``psi`` or a p-value below ``pValue``."""

    what = "drift thresholds (a mapping)"

    psi: Optional[float] = Field(default=0.2, ge=0)
    p_value: Optional[float] = Field(default=0.05, alias="pValue", ge=0, le=1)


class Monitoring(_Base):
    """How a deployed model is watched: payload logs, its reference, the drift check's gates.

    ``task`` replaces the built-in drift check; ``schedule`` says when it runs.
    """

    what = "monitoring settings (a mapping)"

    task: Optional[Task] = None
    schedule: Optional[Schedule] = None
    log: Optional[PayloadLog] = None
    reference: Optional[Ref] = Field(default=None, description="A dataset to compare with.")
    thresholds: Thresholds = Field(default_factory=Thresholds)


class BatchInference(_Base):
    """A task that scores a dataset with the champion version, run on a schedule."""

    what = "batchInference settings (a mapping)"
    legacy = {"dataSets": "dataSet"}

    task: Optional[Task] = None
    schedule: Optional[Schedule] = None
    data_set: Optional[Ref] = Field(default=None, alias="dataSet")
    # What to score when there is no dataset: a file, directory or glob, relative
    # to the project (``dataSet`` and ``input`` exclude each other).
    input: Annotated[Optional[str], What("a path")] = None
    output: Annotated[Optional[str], What("a path")] = Field(
        default=None, description="Where predictions go, relative to the project."
    )

    @model_validator(mode="after")
    def _one_input(self) -> "BatchInference":
        if self.input is not None and self.data_set is not None:
            fail("give 'dataSet' or 'input' (what to score), not both", at="input")
        return self


def _model_type(value: object) -> Any:
    """AME's ``type: Mlflow`` in any case."""
    if value is None or value is EMPTY or not isinstance(value, str):
        return value if value is None else refuse("a model type")
    if value.lower() not in MODEL_TYPES:
        fail(f"unknown model type {value!r}; valid: {', '.join(MODEL_TYPES)}")
    return value.lower()


class Model(_Base):
    """A model: how it is trained, validated, promoted and deployed."""

    what = "a model (a mapping)"
    legacy = {"validationTask": "validation", "batch_inference": "batchInference"}

    name: Annotated[Name, What("a model name")]
    description: Optional[str] = None
    type: Annotated[Optional[str], BeforeValidator(_model_type)] = Field(
        default=None, description="Legacy AME model type, e.g. mlflow."
    )
    training: Optional[ModelTask] = None
    validation: Optional[ModelTask] = None
    deployment: Optional[Deployment] = None
    monitoring: Optional[Monitoring] = None
    batch_inference: Optional[BatchInference] = Field(default=None, alias="batchInference")
    champion_alias: Annotated[Name, What("an alias")] = Field(
        default="champion", alias="championAlias"
    )


class DataSet(_Base):
    """A dataset produced by a task (or already on disk at ``path``)."""

    what = "a dataset (a mapping)"

    name: Annotated[Name, What("a dataset name")]
    path: Annotated[Optional[str], What("a path")] = None
    task: Optional[Task] = None
    size: Annotated[Optional[int], Units(units.parse_bytes, "a size such as 50Gi")] = Field(
        default=None, description="Bytes."
    )


class RayBackend(_Base):
    """The Ray cluster the ray backend submits to."""

    what = "ray settings"

    address: Optional[str] = None
    namespace: Optional[str] = None


class KubernetesBackend(_Base):
    """The cluster the kubernetes backend applies to (kubeconfig context and namespace)."""

    what = "kubernetes settings"

    context: Optional[str] = None
    namespace: Optional[str] = None
    image: Optional[str] = Field(default=None, description="Default image for tasks.")


class BackendConfig(_Base):
    """Where the project's tasks and deployments run unless ``--backend`` says otherwise."""

    what = "backend settings (a mapping)"

    kind: Annotated[
        BackendKind,
        What(
            "a backend kind",
            unknown="unknown backend kind {text}; valid: " + ", ".join(get_args(BackendKind)),
        ),
    ] = "local"
    ray: Optional[RayBackend] = None
    kubernetes: Optional[KubernetesBackend] = None


class Project(_Base):
    """A whole ame.yml, normalised and resolved.

    In the file the name is ``project:`` (``name``/``projectid`` in AME's
    older files); ``root`` and ``file`` come from where it was read.
    """

    what = "a mapping starting with 'project: <name>'"
    legacy = {"projectid": "project", "name": "project", "dataSet": "dataSets"}
    # The file writes the name as ``project:``; root and file are not written at all.
    written: ClassVar[dict[str, str]] = {"name": "project"}
    internal: ClassVar[tuple[str, ...]] = ("root", "file")

    name: Annotated[Name, What("a project name")]
    root: Path = Field(description="The directory holding the ame.yml.")
    file: Path = Field(description="The ame.yml itself.")
    models: Annotated[list[Model], What("a list of models")] = Field(default_factory=list)
    tasks: Annotated[list[Task], What("a list of tasks")] = Field(default_factory=list)
    templates: Annotated[list[Task], What("a list of templates")] = Field(default_factory=list)
    data_sets: Annotated[list[DataSet], What("a list of dataSets")] = Field(
        default_factory=list, alias="dataSets"
    )
    template_sources: Annotated[
        Texts, BeforeValidator(_one_or_many), What("a list of directories")
    ] = Field(default_factory=list, alias="templateSources")
    backend: Optional[BackendConfig] = None

    def task(self, name: str) -> Task:
        """The task called ``name``, including models' inline tasks; KeyError if none."""
        for task in self.all_tasks():
            if task.name == name:
                return task
        raise KeyError(name)

    def model(self, name: str) -> Model:
        """The model called ``name``; KeyError if none."""
        for model in self.models:
            if model.name == name:
                return model
        raise KeyError(name)

    def data_set(self, name: str) -> DataSet:
        """The dataset called ``name``; KeyError if none."""
        for ds in self.data_sets:
            if ds.name == name:
                return ds
        raise KeyError(name)

    def all_tasks(self) -> list[Task]:
        """Top-level tasks plus the inline tasks of models and datasets, each once."""
        seen: dict[str, Task] = {t.name: t for t in self.tasks}
        for model in self.models:
            for slot in (model.training, model.validation):
                if slot is not None:
                    seen.setdefault(slot.task.name, slot.task)
            for extra in (model.monitoring, model.batch_inference):
                if extra is not None and extra.task is not None:
                    seen.setdefault(extra.task.name, extra.task)
        for ds in self.data_sets:
            if ds.task is not None:
                seen.setdefault(ds.task.name, ds.task)
        return list(seen.values())
