"""The typed, normalised form of an ame.yml project.

Whatever generation of spelling a file uses (AME's docs, AME's code, its older
demo repositories), the loader turns it into these classes: legacy keys mapped,
templates merged, ``taskRef``s followed, units parsed to numbers. Everything
downstream (tasks, lifecycle, serving) reads only this, never raw YAML.

Field names are snake_case in Python and camelCase in JSON (``by_alias``), so
``Project.model_dump(mode="json", by_alias=True)`` is the canonical current
form and loads back with ``Project.model_validate``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

ExecutorKind = Literal["poetry", "pip", "pipenv", "custom", "mlflow", "uv"]


class _Base(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=False, defer_build=True)


class Resources(_Base):
    """What a task or a deployment needs; every quantity already parsed to a number."""

    cpu: Optional[float] = Field(default=None, description="CPU cores (500m -> 0.5).")
    memory: Optional[int] = Field(default=None, description="Bytes (10G, 512Mi...).")
    storage: Optional[int] = Field(default=None, description="Bytes.")
    gpu: Optional[int] = Field(default=None, alias="nvidia.com/gpu", description="GPU count.")


class Executor(_Base):
    """How a task's Python environment is made and what it runs (the YAML tag is ``kind``)."""

    kind: ExecutorKind
    python_version: Optional[str] = Field(default=None, alias="pythonVersion")
    command: Optional[str] = None
    # !pip names its requirements inline *or* in a requirements.txt beside
    # ame.yml, never both: ``ame validate`` refuses the pair at the line, and
    # the environment builder refuses it again for projects made in code.
    packages: list[str] = Field(
        default_factory=list,
        description="!pip requirements given inline, instead of a requirements.txt.",
    )
    # !mlflow: the MLproject entry point to run.
    entry_point: Optional[str] = Field(default=None, alias="entryPoint")


class SecretRef(_Base):
    """A secret from ame's local secret store, injected as an environment variable."""

    key: str
    inject_as: str = Field(alias="injectAs")


class ArtifactConfig(_Base):
    """Files a task run keeps as MLflow run artifacts."""

    paths: list[str] = Field(default_factory=list)
    save_changed_files: bool = Field(default=False, alias="saveChangedFiles")


class Schedule(_Base):
    """When a job fires: a cron expression read in a time zone (UTC unless told).

    Every schedule key of ame.yml (a task's ``triggers.schedule``,
    ``monitoring.schedule``, ``batchInference.schedule``) takes a bare cron
    string or this mapping; the loader turns both into this one type, so the
    scheduler and the Kubernetes renderer read ``cron``/``timezone`` the same way.
    """

    cron: str = Field(description="Five cron fields or a macro such as @daily.")
    timezone: str = Field(default="UTC", description="An IANA zone, e.g. Europe/Berlin.")
    catch_up: bool = Field(
        default=False, alias="catchUp", description="Run once after downtime missed fires."
    )

    def __str__(self) -> str:
        return self.cron if self.timezone == "UTC" else f"{self.cron} ({self.timezone})"


class AutoTrain(_Base):
    """``deployment.autoTrain: {poll: 60}``: retrain on a new commit or changed training data."""

    # At least a second: fire records are named to the second.
    poll: float = Field(default=60.0, ge=1, description="Seconds between checks.")


class Triggers(_Base):
    """When a task runs by itself."""

    schedule: Optional[Schedule] = None


class Ref(_Base):
    """A reference to a task, template or dataset, possibly in another project."""

    name: str
    project: Optional[str] = None

    def __str__(self) -> str:
        return f"{self.project}.{self.name}" if self.project else self.name


class Task(_Base):
    """A resolved task: templates merged, references followed, units parsed."""

    name: str
    executor: Executor = Field(default_factory=lambda: Executor(kind="custom"))
    resources: Resources = Field(default_factory=Resources)
    env: dict[str, str] = Field(default_factory=dict)
    secrets: list[SecretRef] = Field(default_factory=list)
    data_sets: list[Ref] = Field(default_factory=list, alias="dataSets")
    from_template: Optional[Ref] = Field(default=None, alias="fromTemplate")
    artifacts: Optional[ArtifactConfig] = None
    triggers: Optional[Triggers] = None
    timeout: Optional[float] = Field(default=None, description="Seconds.")
    image: Optional[str] = Field(default=None, description="Container image on a cluster.")
    # The project the task's files live in (a template or a task from another
    # project still runs in the directory of the project that defines it).
    project: Optional[str] = None


class Batching(_Base):
    """Adaptive batching of concurrent requests in the inference server."""

    max_batch_size: int = Field(default=32, alias="maxBatchSize", ge=1)
    max_latency_ms: float = Field(default=5.0, alias="maxLatencyMs", ge=0)


class Autoscaling(_Base):
    """Replicas that follow load: a HorizontalPodAutoscaler on Kubernetes, Serve's on Ray."""

    min_replicas: int = Field(default=1, alias="minReplicas", ge=1)
    max_replicas: int = Field(alias="maxReplicas", ge=1)
    target_cpu_utilization: Optional[int] = Field(
        default=None, alias="targetCpuUtilization", ge=1, le=100
    )
    target_ongoing_requests: Optional[float] = Field(
        default=None, alias="targetOngoingRequests", gt=0
    )


class Deployment(_Base):
    """How a model's promoted version is served."""

    resources: Resources = Field(default_factory=Resources)
    replicas: int = Field(default=1, ge=1)
    image: Optional[str] = None
    ingress_annotations: dict[str, str] = Field(default_factory=dict, alias="ingressAnnotations")
    auto_deploy: bool = Field(default=False, alias="autoDeploy")
    # ``true``/``false``, or the mapping with its poll interval: see ``auto_train_poll``.
    auto_train: bool | AutoTrain = Field(default=False, alias="autoTrain")
    enable_tls: bool = Field(default=False, alias="enableTls")
    batching: Optional[Batching] = None
    port: Optional[int] = None
    host: Optional[str] = Field(default=None, description="The Ingress host name.")
    path: Optional[str] = Field(default=None, description="The Ingress path prefix.")
    autoscaling: Optional[Autoscaling] = None

    def auto_train_poll(self) -> Optional[float]:
        """Seconds between autoTrain's checks, or None when autoTrain is off."""
        if isinstance(self.auto_train, AutoTrain):
            return self.auto_train.poll
        return AutoTrain().poll if self.auto_train else None


class ModelTask(_Base):
    """A model's training or validation step: the resolved task it runs."""

    task: Task


class PayloadLog(_Base):
    """Payload logging in the server: which requests are kept, and when a log file rotates."""

    sample_rate: float = Field(default=1.0, alias="sampleRate", ge=0, le=1)
    max_bytes: int = Field(
        default=64 * 1024 * 1024, alias="maxBytes", ge=1, description="Bytes per log file."
    )


class Thresholds(_Base):
    """When a drift check fails (exit 1): a PSI above ``psi`` or a p-value below ``pValue``."""

    psi: Optional[float] = Field(default=0.2, ge=0)
    p_value: Optional[float] = Field(default=0.05, alias="pValue", ge=0, le=1)


class Monitoring(_Base):
    """How a deployed model is watched: payload logs, its reference, the drift check's gates.

    ``task`` replaces the built-in drift check; ``schedule`` says when it runs.
    """

    task: Optional[Task] = None
    schedule: Optional[Schedule] = None
    log: Optional[PayloadLog] = None
    reference: Optional[Ref] = Field(default=None, description="A dataset to compare with.")
    thresholds: Thresholds = Field(default_factory=Thresholds)


class BatchInference(_Base):
    """A task that scores a dataset with the champion version, run on a schedule."""

    task: Optional[Task] = None
    schedule: Optional[Schedule] = None
    data_set: Optional[Ref] = Field(default=None, alias="dataSet")
    # What to score when there is no dataset: a file, directory or glob, relative
    # to the project (``dataSet`` and ``input`` exclude each other).
    input: Optional[str] = None
    output: Optional[str] = Field(
        default=None, description="Where predictions go, relative to the project."
    )


class Model(_Base):
    """A model: how it is trained, validated, promoted and deployed."""

    name: str
    description: Optional[str] = None
    type: Optional[str] = Field(default=None, description="Legacy AME model type, e.g. mlflow.")
    training: Optional[ModelTask] = None
    validation: Optional[ModelTask] = None
    deployment: Optional[Deployment] = None
    monitoring: Optional[Monitoring] = None
    batch_inference: Optional[BatchInference] = Field(default=None, alias="batchInference")
    champion_alias: str = Field(default="champion", alias="championAlias")


class DataSet(_Base):
    """A dataset produced by a task (or already on disk at ``path``)."""

    name: str
    path: Optional[str] = None
    task: Optional[Task] = None
    size: Optional[int] = Field(default=None, description="Bytes.")


BackendKind = Literal["local", "ray", "kubernetes"]


class RayBackend(_Base):
    """The Ray cluster the ray backend submits to."""

    address: Optional[str] = None
    namespace: Optional[str] = None


class KubernetesBackend(_Base):
    """The cluster the kubernetes backend applies to (kubeconfig context and namespace)."""

    context: Optional[str] = None
    namespace: Optional[str] = None
    image: Optional[str] = Field(default=None, description="Default image for tasks.")


class BackendConfig(_Base):
    """Where the project's tasks and deployments run unless ``--backend`` says otherwise."""

    kind: BackendKind = "local"
    ray: Optional[RayBackend] = None
    kubernetes: Optional[KubernetesBackend] = None


class Project(_Base):
    """A whole ame.yml, normalised and resolved."""

    name: str
    root: Path = Field(description="The directory holding the ame.yml.")
    file: Path = Field(description="The ame.yml itself.")
    models: list[Model] = Field(default_factory=list)
    tasks: list[Task] = Field(default_factory=list)
    templates: list[Task] = Field(default_factory=list)
    data_sets: list[DataSet] = Field(default_factory=list, alias="dataSets")
    template_sources: list[str] = Field(default_factory=list, alias="templateSources")
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
