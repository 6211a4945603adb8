"""The kubernetes backend: the same ame.yml as cluster objects (render, validate, apply).

``render`` turns a ``Project`` into Jobs, CronJobs, Deployments, Services,
Ingresses, PodDisruptionBudgets and HorizontalPodAutoscalers (or KServe
InferenceServices); ``validate`` checks each object against the official
schemas offline; ``apply`` hands them to the official ``kubernetes`` client.
``keys`` is the one list of ame.yml keys that only mean something on a cluster.

Import-light: nothing here imports ``kubernetes`` or ``kubernetes_validate``
until a function that needs them runs.
"""
