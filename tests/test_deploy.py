"""deploy/ as written: every manifest against the real schemas, and the settings that make it work.

Schemas (deploy/schemas/SOURCE.md): KubeRay's CRDs (vendored, pinned by sha256), Ray's
cluster-launcher schema from the installed ``ray`` package (plus the same ``prepare_config`` /
``validate_config`` path ``ray up`` takes), and the official Kubernetes client's models for
built-in kinds. Each validator is shown to reject a mutated manifest (unknown field, wrong type),
so a schema that silently accepts everything cannot pass. Nothing here needs Docker or a
Kubernetes cluster; deploy/README.md gives the commands that do.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
RAYJOB = DEPLOY / "kuberay-rayjob.yaml"
LAUNCHER = DEPLOY / "aws-cluster.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
CRD_DIR = DEPLOY / "schemas" / "kuberay-v1.7.0"
CRD_FILES = {"RayJob": "ray.io_rayjobs.yaml", "RayCluster": "ray.io_rayclusters.yaml"}
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the CRDs are ~2 MB of YAML


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.load_all(path.read_text(encoding="utf-8"), Loader=_LOADER) if d]


def _by_kind(path: Path) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in _docs(path)}


def _errors(validator: Any, doc: Any) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(doc)]


# --------------------------------------------------------------------------------------------
# KubeRay CRDs


def _pinned_sha256() -> dict[str, str]:
    """File name -> sha256 from the table in deploy/schemas/SOURCE.md."""
    text = (DEPLOY / "schemas" / "SOURCE.md").read_text(encoding="utf-8")
    return dict(re.findall(r"`kuberay-[\w.]+/([\w.]+\.yaml)` \| \d+ \| `([0-9a-f]{64})`", text))


def _crd_dir() -> Path:
    """The vendored CRDs (deploy/schemas/SOURCE.md)."""
    missing = [f for f in CRD_FILES.values() if not (CRD_DIR / f).is_file()]
    assert not missing, f"KubeRay CRDs missing in {CRD_DIR}: {missing}"
    return CRD_DIR


def _strict(node: Any) -> Any:
    """Unknown fields are errors, as with ``kubectl apply``'s strict field validation."""
    if isinstance(node, dict):
        if (
            "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        for v in node.values():
            _strict(v)
    elif isinstance(node, list):
        for v in node:
            _strict(v)
    return node


@cache
def _crd_validator(kind: str) -> Any:
    path = _crd_dir() / CRD_FILES[kind]
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == _pinned_sha256()[path.name], (
        f"{path} is not the KubeRay release named in deploy/schemas/SOURCE.md"
    )
    crd = yaml.load(data, Loader=_LOADER)
    assert crd["spec"]["names"]["kind"] == kind
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema = _strict(version["schema"]["openAPIV3Schema"])
    return jsonschema.Draft7Validator(schema).iter_errors


def _raycluster_of(rayjob: dict[str, Any]) -> dict[str, Any]:
    """The RayCluster KubeRay creates from a RayJob (same spec, checked by its own CRD)."""
    return {
        "apiVersion": rayjob["apiVersion"],
        "kind": "RayCluster",
        "metadata": {"name": rayjob["metadata"]["name"]},
        "spec": rayjob["spec"]["rayClusterSpec"],
    }


def test_rayjob_matches_kuberay_crds() -> None:
    rayjob = _by_kind(RAYJOB)["RayJob"]
    assert rayjob["apiVersion"] == "ray.io/v1"
    assert _errors(_crd_validator("RayJob"), rayjob) == []
    assert _errors(_crd_validator("RayCluster"), _raycluster_of(rayjob)) == []


@pytest.mark.parametrize(
    ("mutate", "expect"),
    [
        # a typo'd field KubeRay would never read
        (
            lambda j: j["spec"]["rayClusterSpec"]["headGroupSpec"].update(rayStartParam={}),
            "rayStartParam",
        ),
        (lambda j: j["spec"].update(shutdownAfterJobFinished=True), "shutdownAfterJobFinished"),
        # deep inside the pod template (the CRD carries the whole PodSpec)
        (
            lambda j: j["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"][
                "containers"
            ][0].update(resource={}),
            "resource",
        ),
        # wrong types and values
        (
            lambda j: j["spec"]["rayClusterSpec"]["workerGroupSpecs"][0].update(replicas="50"),
            "'50' is not of type 'integer'",
        ),
        (lambda j: j["spec"].update(shutdownAfterJobFinishes="yes"), "is not of type 'boolean'"),
        (
            lambda j: j["spec"]["rayClusterSpec"]["authOptions"].update(mode="on"),
            "'on' is not one of",
        ),
        (lambda j: j["spec"].update(ttlSecondsAfterFinished="1h"), "'1h' is not of type 'integer'"),
    ],
)
def test_kuberay_crd_rejects_a_mutated_rayjob(mutate: Any, expect: str) -> None:
    rayjob = copy.deepcopy(_by_kind(RAYJOB)["RayJob"])
    mutate(rayjob)
    errors = _errors(_crd_validator("RayJob"), rayjob)
    assert any(expect in e for e in errors), errors


# --------------------------------------------------------------------------------------------
# Kubernetes built-in kinds: the official client's models (field names and types)


def _k8s_errors(value: Any, type_name: str, path: str = "") -> Iterator[str]:
    """Unknown fields and wrong types against ``kubernetes.client`` models (OpenAPI-generated)."""
    import kubernetes.client as k8s

    generic = re.fullmatch(
        r"(List|list)\[(.+)\]|(Dict|dict)\[str, (.+)\]|dict\(str, (.+)\)", type_name
    )
    if generic and generic.group(2):
        if not isinstance(value, list):
            yield f"{path}: expected a list, got {type(value).__name__}"
            return
        for i, v in enumerate(value):
            yield from _k8s_errors(v, generic.group(2), f"{path}[{i}]")
    elif generic:
        inner = generic.group(4) or generic.group(5)
        if not isinstance(value, dict):
            yield f"{path}: expected a mapping, got {type(value).__name__}"
            return
        for k, v in value.items():
            yield from _k8s_errors(v, inner, f"{path}.{k}")
    elif type_name in ("str", "bytes", "datetime"):
        if not isinstance(value, str):
            yield f"{path}: expected a string, got {value!r}"
    elif type_name == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            yield f"{path}: expected an integer, got {value!r}"
    elif type_name == "bool":
        if not isinstance(value, bool):
            yield f"{path}: expected a boolean, got {value!r}"
    elif type_name == "object":  # IntOrString, RawExtension
        if not isinstance(value, (str, int, dict)):
            yield f"{path}: unexpected {value!r}"
    else:
        model = getattr(k8s, type_name)
        if not isinstance(value, dict):
            yield f"{path}: expected a {type_name} mapping, got {value!r}"
            return
        json_to_attr = {j: a for a, j in model.attribute_map.items()}
        for key, v in value.items():
            if key not in json_to_attr:
                yield f"{path}.{key}: unknown field of {type_name}"
            else:
                yield from _k8s_errors(v, model.openapi_types[json_to_attr[key]], f"{path}.{key}")


BUILTIN_MODELS = {
    ("networking.k8s.io/v1", "NetworkPolicy"): "V1NetworkPolicy",
    ("v1", "Secret"): "V1Secret",
    ("v1", "ServiceAccount"): "V1ServiceAccount",
}


def _builtin_errors(doc: dict[str, Any]) -> list[str]:
    import kubernetes.client as k8s

    model = BUILTIN_MODELS[(doc["apiVersion"], doc["kind"])]
    errors = list(_k8s_errors(doc, model, doc["kind"]))
    from_dict = getattr(getattr(k8s, model), "from_dict", None)
    if not errors and from_dict is not None:
        # the client's own (pydantic, strict) validation: required fields, value types
        try:
            from_dict(doc)
        except ValueError as e:
            errors.append(f"{doc['kind']}: {e}")
    return errors


def test_every_deploy_manifest_has_a_schema() -> None:
    """A kind added to deploy/ without a validator fails here instead of going unchecked."""
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in _docs(path):
            if path == LAUNCHER:
                assert "provider" in doc  # a launcher config: no apiVersion/kind
                continue
            key = (doc["apiVersion"], doc["kind"])
            assert doc["kind"] in CRD_FILES or key in BUILTIN_MODELS, f"{path.name}: {key}"


def test_builtin_kinds_match_kubernetes_models() -> None:
    docs = [d for d in _docs(RAYJOB) if d["kind"] not in CRD_FILES]
    assert [d["kind"] for d in docs] == ["NetworkPolicy"]
    for doc in docs:
        assert _builtin_errors(doc) == []


@pytest.mark.parametrize(
    ("mutate", "expect"),
    [
        (lambda p: p["spec"].update(podSelectors={}), "unknown field"),
        (lambda p: p["spec"]["ingress"][1]["ports"][0].update(protocol=6), "expected a string"),
        (
            lambda p: p["spec"]["ingress"][0].update({"from": {"podSelector": {}}}),
            "expected a list",
        ),
        (lambda p: p["spec"]["ingress"][1]["ports"][0].update(endport=8266), "unknown field"),
    ],
)
def test_kubernetes_models_reject_a_mutated_networkpolicy(mutate: Any, expect: str) -> None:
    policy = copy.deepcopy(_by_kind(RAYJOB)["NetworkPolicy"])
    mutate(policy)
    errors = _builtin_errors(policy)
    assert any(expect in e for e in errors), errors


# --------------------------------------------------------------------------------------------
# Ray's cluster-launcher schema (from the installed ray package)


def _launcher_errors(config: dict[str, Any]) -> list[str]:
    """The installed Ray's JSON schema, then what ``ray up`` does before it launches anything."""
    import ray.autoscaler
    from ray.autoscaler._private.util import prepare_config, validate_config

    schema_path = Path(ray.autoscaler.__file__).parent / "ray-schema.json"
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    errors = _errors(jsonschema.Draft7Validator(schema).iter_errors, config)
    if not errors:
        try:
            validate_config(prepare_config(copy.deepcopy(config)))
        except (ValueError, RuntimeError, jsonschema.ValidationError) as e:
            errors.append(str(e))
    return errors


def test_launcher_config_matches_ray_schema() -> None:
    assert _launcher_errors(_docs(LAUNCHER)[0]) == []


@pytest.mark.parametrize(
    ("mutate", "expect"),
    [
        (lambda c: c.update(max_worker=5), "'max_worker' was unexpected"),
        (
            lambda c: c["available_node_types"]["ray.worker.cpu"].update(min_workers="50"),
            "is not of type 'integer'",
        ),
        (
            lambda c: c["available_node_types"]["ray.worker.cpu"].update(resource={}),
            "'resource' was unexpected",
        ),
        (lambda c: c["docker"].update(run_option=[]), "'run_option' was unexpected"),
        (lambda c: c.update(head_node_type="ray.head"), "must be one of `available_node_types`"),
    ],
)
def test_ray_schema_rejects_a_mutated_launcher_config(mutate: Any, expect: str) -> None:
    config = copy.deepcopy(_docs(LAUNCHER)[0])
    mutate(config)
    errors = _launcher_errors(config)
    assert any(expect in e for e in errors), errors


# --------------------------------------------------------------------------------------------
# What makes the manifests work: token auth, reachability, the large-task node type, versions


def _ray_pin() -> str:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pins = [d for d in pyproject["project"]["dependencies"] if re.match(r"ray\b", d)]
    assert len(pins) == 1, pins
    m = re.fullmatch(r"ray==(\d+\.\d+\.\d+)", pins[0].replace(" ", ""))
    assert m, f"ray must be pinned to one version (the image's): {pins[0]}"
    extras = pyproject["project"]["optional-dependencies"]
    for name, reqs in extras.items():  # ray[default], ray[data]: the same version
        for r in reqs:
            if re.match(r"ray\[", r):
                assert r.endswith(f"=={m.group(1)}"), f"extra {name}: {r}"
    return m.group(1)


def test_ray_version_is_the_same_everywhere() -> None:
    import ray

    version = _ray_pin()
    froms = re.findall(r"^FROM\s+(\S+)", DOCKERFILE.read_text(encoding="utf-8"), re.M)
    assert froms and all(f == f"rayproject/ray:{version}-py311" for f in froms), froms
    assert _by_kind(RAYJOB)["RayJob"]["spec"]["rayClusterSpec"]["rayVersion"] == version
    assert ray.__version__ == version, "the test venv runs another Ray than the one pinned"
    # the image's Python (py311) is one pyproject allows
    assert sys.version_info >= (3, 10)


def _groups(rayjob: dict[str, Any]) -> list[dict[str, Any]]:
    spec = rayjob["spec"]["rayClusterSpec"]
    return [spec["headGroupSpec"], *spec["workerGroupSpecs"]]


def test_rayjob_has_token_auth_and_a_reachable_job_api() -> None:
    kinds = _by_kind(RAYJOB)
    rayjob, policy = kinds["RayJob"], kinds["NetworkPolicy"]
    cluster = rayjob["spec"]["rayClusterSpec"]
    # KubeRay sets RAY_AUTH_MODE=token + RAY_AUTH_TOKEN from this Secret in every Ray container
    # (so `ray start` finds the token) and sends it when polling the job API.
    assert cluster["authOptions"] == {"mode": "token", "secretName": "dataproc-ray-token"}
    major, minor, _ = (int(x) for x in cluster["rayVersion"].split("."))
    assert (major, minor) >= (2, 52), "KubeRay refuses token auth below Ray 2.52"
    # the operator polls the dashboard through the head Service: not loopback
    head_params = cluster["headGroupSpec"]["rayStartParams"]
    assert head_params.get("dashboard-host", "0.0.0.0") == "0.0.0.0"
    if rayjob["spec"].get("submissionMode") == "SidecarMode":
        assert cluster["headGroupSpec"]["template"]["spec"]["restartPolicy"] == "Never"
    # The NetworkPolicy covers every Ray pod, lets them talk to each other and lets only the
    # operator in on 8265.
    selector = policy["spec"]["podSelector"]["matchLabels"]
    for group in _groups(rayjob):
        labels = group["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), group.get("groupName", "head")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    peers, operator = policy["spec"]["ingress"]
    assert peers == {"from": [{"podSelector": {"matchLabels": selector}}]}
    assert operator["from"][0]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "kuberay-operator"
    }
    assert operator["ports"] == [{"protocol": "TCP", "port": 8265}]
    # the token is never in the repository
    assert "Secret" not in kinds


def test_launcher_has_token_auth_before_ray_start() -> None:
    config = _docs(LAUNCHER)[0]
    run_options = " ".join(config["docker"]["run_options"])
    env = dict(re.findall(r"--env (\w+)=(\S+)", run_options))
    assert env["RAY_AUTH_MODE"] == "token"
    # the token file reaches every node through a directory file mount, before `ray start`
    token_path = Path(env["RAY_AUTH_TOKEN_PATH"])
    mounts = {Path(r.replace("~", "/home/ray")): src for r, src in config["file_mounts"].items()}
    assert token_path.parent in mounts, (token_path, mounts)
    head_start = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=0.0.0.0" in head_start
    assert "127.0.0.1" not in head_start
    # our own security group on every node type (Ray's default one opens SSH to 0.0.0.0/0)
    assert "security_group" not in config["provider"]
    for name, node_type in config["available_node_types"].items():
        assert node_type["node_config"]["SecurityGroupIds"], name


def _memory_gib(quantity: str) -> float:
    m = re.fullmatch(r"(\d+)(Gi|Mi)", quantity)
    assert m, quantity
    return int(m.group(1)) * (1 if m.group(2) == "Gi" else 1 / 1024)


def test_large_tasks_have_a_node_type() -> None:
    rayjob = _by_kind(RAYJOB)["RayJob"]
    workers = {g["groupName"]: g for g in rayjob["spec"]["rayClusterSpec"]["workerGroupSpecs"]}
    mem = {
        name: _memory_gib(g["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"])
        for name, g in workers.items()
    }
    assert mem["highmem"] >= 4 * mem["cpu"], mem
    assert workers["highmem"]["minReplicas"] >= 1
    node_types = _docs(LAUNCHER)[0]["available_node_types"]
    assert node_types["ray.worker.highmem"]["node_config"]["InstanceType"].startswith("r7i.")
    assert node_types["ray.worker.highmem"]["max_workers"] >= 1


# --------------------------------------------------------------------------------------------
# Dockerfile: builds from a clean checkout (checked without a Docker daemon)


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending += " " + stripped
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        word, _, rest = pending.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        pending = ""
    assert not pending, "Dockerfile ends inside a continued line"
    return out


def _tracked_files() -> set[str] | None:
    try:
        out = subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None  # not a git checkout (an sdist): fall back to the file system
    return set(out.splitlines())


def test_dockerfile_builds_from_a_clean_checkout() -> None:
    steps = _instructions(DOCKERFILE.read_text(encoding="utf-8"))
    known = {"FROM", "RUN", "COPY", "ENV", "WORKDIR", "USER", "ARG", "LABEL"}
    assert {word for word, _ in steps} <= known, steps
    stages: list[list[tuple[str, str]]] = []
    for word, args in steps:
        if word == "FROM":
            stages.append([])
        stages[-1].append((word, args))
    assert len(stages) == 2, "a build stage (compiler) and a run stage"
    build, run = stages
    assert build[0][1].endswith(" AS build")
    tracked = _tracked_files()
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    allowed = {line[1:] for line in ignore if line.startswith("!")}
    assert "*" in ignore, "the build context is an allowlist"
    for word, args in build + run:
        if word != "COPY" or "--from=" in args:
            continue
        *sources, _dest = [a for a in shlex.split(args) if not a.startswith("--")]
        for src in sources:
            assert src.rstrip("/") in allowed, (
                f"COPY {src}: not in Dockerfile.dockerignore's allowlist"
            )
            if tracked is None:
                assert (ROOT / src).exists(), src
            else:  # a clean checkout has exactly the tracked files (no symlinked dirs' content)
                assert src in tracked or any(
                    t.startswith(src.rstrip("/") + "/") for t in tracked
                ), src
    build_runs = " ".join(a for w, a in build if w == "RUN")
    assert "build-essential" in build_runs and "pip wheel" in build_runs
    assert build_runs.index("build-essential") < build_runs.index("pip wheel")
    run_runs = " ".join(a for w, a in run if w == "RUN")
    assert "--mount=type=bind,from=build" in run_runs and "--no-index" in run_runs
    assert "build-essential" not in run_runs and "apt-get" not in run_runs
    # the extras the image installs exist
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    for extra in re.findall(r'dataproc\[(\w+)\]|"\.\[(\w+)\]"', build_runs + run_runs):
        name = extra[0] or extra[1]
        assert name in extras, name
