"""What ame.yml's deployment keys become on Ray Serve, and how replicas' metrics add up.

No cluster needed: ``serve_settings`` and ``merge_metrics`` are plain functions;
the end-to-end behaviour is ``test_serve.py``'s.
"""

from __future__ import annotations

from ame.backends.ray.replica import merge_metrics
from ame.backends.ray.serve import DEFAULT_REPLICA_CPUS, app_name, default_route, serve_settings
from ame.spec.model import Deployment


def _deployment(**data: object) -> Deployment:
    return Deployment.model_validate(data)


def test_replicas_resources_and_batching_become_serve_options() -> None:
    settings = serve_settings(
        "iris",
        _deployment(
            replicas=3,
            resources={"cpu": "250m", "memory": "512Mi", "nvidia.com/gpu": 1},
            batching={"maxBatchSize": 16, "maxLatencyMs": 3},
            path="/models/iris/",
        ),
    )
    assert settings.deployment["num_replicas"] == 3
    assert "autoscaling_config" not in settings.deployment
    assert settings.deployment["ray_actor_options"] == {
        "num_cpus": 0.25,
        "memory": 512 * 1024**2,
        "num_gpus": 1.0,
    }
    assert (settings.max_batch_size, settings.max_latency_ms) == (16, 3.0)
    assert settings.route_prefix == "/models/iris"
    assert settings.ignored == []


def test_autoscaling_is_serves_autoscaler_with_replicas_as_the_start() -> None:
    settings = serve_settings(
        "iris",
        _deployment(
            replicas=9,
            autoscaling={"minReplicas": 1, "maxReplicas": 4, "targetOngoingRequests": 2.5},
        ),
    )
    assert "num_replicas" not in settings.deployment
    assert settings.deployment["autoscaling_config"] == {
        "min_replicas": 1,
        "max_replicas": 4,
        "initial_replicas": 4,  # replicas, clipped to the range
        "target_ongoing_requests": 2.5,
    }


def test_keys_without_a_serve_meaning_are_each_one_line() -> None:
    settings = serve_settings(
        "iris",
        _deployment(
            image="repo/iris:1",
            enableTls=True,
            ingressAnnotations={"a": "b"},
            host="iris.example.com",
            port=9000,
            resources={"storage": "1G"},
            autoscaling={"minReplicas": 1, "maxReplicas": 2, "targetCpuUtilization": 70},
        ),
    )
    keys = [line.split(":", 1)[0] for line in settings.ignored]
    assert keys == [
        "models[iris].deployment.resources.storage",
        "models[iris].deployment.autoscaling.targetCpuUtilization",
        "models[iris].deployment.image",
        "models[iris].deployment.ingressAnnotations",
        "models[iris].deployment.enableTls",
        "models[iris].deployment.host",
        "models[iris].deployment.port",
    ]
    assert all("ray" in line.lower() or "serve" in line.lower() for line in settings.ignored)


def test_no_deployment_section_is_one_small_replica() -> None:
    settings = serve_settings("iris", None)
    assert settings.deployment["num_replicas"] == 1
    assert settings.deployment["ray_actor_options"] == {"num_cpus": DEFAULT_REPLICA_CPUS}
    assert settings.route_prefix is None
    assert app_name("ame", "iris") == "ame-iris" and default_route("ame", "iris") == "/iris"
    assert app_name("team", "a/b") == "ame-team-a_b" and default_route("team", "x") == "/team/x"


REPLICA_A = """\
# HELP ame_requests_total HTTP requests answered, by route and status code.
# TYPE ame_requests_total counter
ame_requests_total{route="/invocations",status="200"} 5.0
ame_requests_total{route="/invocations",status="400"} 1.0
ame_requests_created{route="/invocations",status="200"} 1.7e9
# HELP ame_request_duration_seconds Time from receiving a request to sending its response.
# TYPE ame_request_duration_seconds histogram
ame_request_duration_seconds_bucket{le="0.01",route="/invocations"} 4.0
ame_request_duration_seconds_bucket{le="+Inf",route="/invocations"} 6.0
ame_request_duration_seconds_count{route="/invocations"} 6.0
ame_request_duration_seconds_sum{route="/invocations"} 0.5
# HELP ame_model_info 1 for the model version a worker is serving.
# TYPE ame_model_info gauge
ame_model_info{model="iris",version="1"} 0.0
ame_model_info{model="iris",version="2"} 1.0
"""

REPLICA_B = """\
# HELP ame_requests_total HTTP requests answered, by route and status code.
# TYPE ame_requests_total counter
ame_requests_total{route="/invocations",status="200"} 7.0
# HELP ame_request_duration_seconds Time from receiving a request to sending its response.
# TYPE ame_request_duration_seconds histogram
ame_request_duration_seconds_bucket{le="0.01",route="/invocations"} 7.0
ame_request_duration_seconds_bucket{le="+Inf",route="/invocations"} 7.0
ame_request_duration_seconds_count{route="/invocations"} 7.0
ame_request_duration_seconds_sum{route="/invocations"} 0.25
# HELP ame_model_info 1 for the model version a worker is serving.
# TYPE ame_model_info gauge
ame_model_info{model="iris",version="1"} 1.0
"""


def _samples(text: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}"] = sample.value
    return found


def test_counters_and_histograms_add_up_gauges_are_the_live_maximum() -> None:
    merged = _samples(merge_metrics([REPLICA_A, REPLICA_B]))
    assert merged["ame_requests_total{route=/invocations,status=200}"] == 12.0
    assert merged["ame_requests_total{route=/invocations,status=400}"] == 1.0
    assert merged["ame_request_duration_seconds_bucket{le=0.01,route=/invocations}"] == 11.0
    assert merged["ame_request_duration_seconds_count{route=/invocations}"] == 13.0
    assert merged["ame_request_duration_seconds_sum{route=/invocations}"] == 0.75
    assert merged["ame_model_info{model=iris,version=1}"] == 1.0
    assert merged["ame_model_info{model=iris,version=2}"] == 1.0
    assert not any("_created" in name for name in merged)


def test_a_retired_replica_keeps_its_counts_but_not_its_gauges() -> None:
    merged = _samples(merge_metrics([REPLICA_A], retired=[REPLICA_B]))
    assert merged["ame_requests_total{route=/invocations,status=200}"] == 12.0
    # B served version 1 before it was replaced: only A, serving 2, is live.
    assert merged["ame_model_info{model=iris,version=1}"] == 0.0
    assert merged["ame_model_info{model=iris,version=2}"] == 1.0
