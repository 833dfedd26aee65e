"""The pipeline across several Ray nodes on one machine (``ray.cluster_utils.Cluster``, every
node on 127.0.0.1), and a node lost mid-run: during phase 1 (a shard read) and during phase 2
(a dedup task). Every output must be byte-identical to a run on one node.

The head node has no CPUs (it only hosts the driver), so every shard task runs on one of two
one-CPU worker nodes. Inputs come from a loopback HTTP server that records which process read
each file; a process's parent raylet tells which node it belongs to. A phase-2 task is caught
by turning one of the files it reads into a FIFO (``_phase_faults.FifoTrap``).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from _crawl_fixtures import FaultyFileServer, executions, manifest_core, output_digest, write_shards
from _phase_faults import FifoTrap, PhaseHooks, pick

from dataproc.config import build_config
from dataproc.runner.driver import run_pipeline
from dataproc.runner.phases import Phase

pytestmark = pytest.mark.ray

NUM_SHARDS = 4
NODE_ARGS = {
    "num_cpus": 1,
    "node_ip_address": "127.0.0.1",
    "object_store_memory": 80 * 1024 * 1024,
    "include_dashboard": False,
}


@pytest.fixture(scope="module")
def one_node(ray_cluster, server, tmp_path_factory):
    """The same run on the session's one-node cluster, before the multi-node one starts."""
    _, urls, _ = server
    out = tmp_path_factory.mktemp("mn-one-node") / "out"
    result = _run(urls, out)
    assert result.ok, result.failures
    return out, output_digest(out)


@pytest.fixture(scope="module")
def cluster(one_node):
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # before ray binds anything
    import ray
    from ray.cluster_utils import Cluster

    had_session = ray.is_initialized()
    if had_session:
        ray.shutdown()  # the session's single-node cluster; restored below
    c = Cluster(initialize_head=True, head_node_args=dict(NODE_ARGS, num_cpus=0))
    for _ in range(2):
        c.add_node(**NODE_ARGS)
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False, configure_logging=False)
    try:
        yield c
    finally:
        ray.shutdown()
        c.shutdown()
        if had_session:  # restore the session cluster exactly as tests/conftest.py starts it
            from conftest import start_session_ray

            start_session_ray()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    paths = write_shards(tmp_path_factory.mktemp("multinode-in"), NUM_SHARDS)
    with FaultyFileServer({p.name: p.read_bytes() for p in paths}) as srv:
        yield srv, [srv.url(p.name) for p in paths], [p.name for p in paths]


def _run(urls: list[str], out: Path, progress=None):
    config = build_config({"inputs": urls, "output": str(out), "execution": {"progress": "none"}})
    return run_pipeline(config, progress=progress)


def _raylet_pids(cluster) -> dict[int, object]:
    from ray._private import ray_constants

    out = {}
    for node in cluster.list_all_nodes():
        for info in node.all_processes.get(ray_constants.PROCESS_TYPE_RAYLET, []):
            out[info.process.pid] = node
    return out


def _node_of(pid: int, cluster) -> object | None:
    import psutil

    raylets = _raylet_pids(cluster)
    try:
        for parent in psutil.Process(pid).parents():
            if parent.pid in raylets:
                return raylets[parent.pid]
    except psutil.NoSuchProcess:
        return None
    return None


@pytest.fixture(scope="module")
def reference(cluster, server, tmp_path_factory):
    srv, urls, names = server
    out = tmp_path_factory.mktemp("mn-ref") / "out"
    result = _run(urls, out)
    assert result.ok, result.failures
    # Which node read each shard: both worker nodes must have taken a share of the shards.
    nodes = {name: _node_of(srv.client_pids[name][-1], cluster) for name in names}
    return out, output_digest(out), nodes


def test_every_server_of_the_cluster_listens_on_loopback_only(cluster):
    import ipaddress

    import psutil

    assert len(_raylet_pids(cluster)) == 3
    pids = {
        info.process.pid
        for node in cluster.list_all_nodes()
        for infos in node.all_processes.values()
        for info in infos
    }
    listening = 0
    for pid in pids:
        for conn in psutil.Process(pid).net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN:
                ip = ipaddress.ip_address(conn.laddr.ip)
                ip = getattr(ip, "ipv4_mapped", None) or ip  # ::ffff:127.0.0.1 is loopback too
                assert ip.is_loopback, (pid, conn)
                listening += 1
    assert listening >= 3  # not vacuous: GCS and every raylet listen somewhere


def _ensure_worker_nodes(cluster, n: int) -> None:
    """Add one-CPU worker nodes until ``n`` are alive (an earlier test may have removed one)."""
    alive = [node for node in cluster.worker_nodes if node.remaining_processes_alive()]
    for _ in range(n - len(alive)):
        cluster.add_node(**NODE_ARGS)
    cluster.wait_for_nodes()


def test_pipeline_runs_across_nodes(reference, one_node):
    out, digest, nodes = reference
    assert any(k.startswith("tokens/") for k in digest)
    assert digest == one_node[1]  # byte-identical to the one-node run
    assert None not in nodes.values(), nodes  # every shard was read by a worker of a node
    assert len({id(n) for n in nodes.values()}) == 2, "shards did not spread over both nodes"
    assert executions(out) == dict.fromkeys(range(NUM_SHARDS), 1)


def test_node_lost_mid_run(cluster, server, reference, tmp_path):
    srv, urls, names = server
    ref_out, ref_digest, _ = reference
    srv.faults.clear()
    srv.stalled.clear()
    srv.fail(names[2], f"stall:{len(srv.files[names[2]]) // 2}")
    removed: list[object] = []

    def remove_node_when_stalled() -> None:
        assert srv.stalled.wait(timeout=120)
        node = _node_of(srv.client_pids[names[2]][-1], cluster)
        assert node is not None and node is not cluster.head_node
        cluster.remove_node(node, allow_graceful=False)  # raylet and its workers die at once
        removed.append(node)
        srv.release()  # the other worker node (1 CPU) takes over the lost node's shard

    t = threading.Thread(target=remove_node_when_stalled, daemon=True)
    t.start()
    result = _run(urls, tmp_path / "out")
    t.join(timeout=60)
    assert removed, "no node was removed"
    assert result.ok, result.failures
    assert output_digest(tmp_path / "out") == ref_digest
    assert manifest_core(tmp_path / "out") == manifest_core(ref_out)
    counts = executions(tmp_path / "out")
    # The shard in flight on the lost node normally runs again elsewhere (2 starts). On a
    # heavily loaded machine the stalled read can be retried by the client and finish before
    # the node is gone (1 start); either way no *finished* shard may run twice, and the
    # output must equal a clean run's (checked above).
    assert counts[2] in (1, 2), counts
    assert all(counts[i] == 1 for i in range(NUM_SHARDS) if i != 2), counts


def test_node_lost_during_dedup(cluster, server, one_node, tmp_path):
    """A node dies while one of its workers runs a phase-2 task: Ray reruns the task on the
    other node, and the output equals the one-node run's."""
    srv, urls, _ = server
    srv.faults.clear()
    _ensure_worker_nodes(cluster, 2)
    out = tmp_path / "out"
    removed: list[object] = []
    traps: list[FifoTrap] = []

    def remove_node_of(pid: int) -> None:
        if removed:  # one node only: a reader on the other node is released by the trap
            return
        node = _node_of(pid, cluster)
        assert node is not None and node is not cluster.head_node
        cluster.remove_node(node, allow_graceful=False)  # raylet and its workers die at once
        removed.append(node)

    def on_end(phase: str) -> None:
        # Phase 1 is over: the first kind of phase-2 task will read the band keys.
        if phase == Phase.FILTER and not traps:
            rel = pick(hooks.written[phase], "bands")
            assert rel is not None, hooks.written[phase]
            trap = FifoTrap(
                out / "_work" / rel, tmp_path, remove_node_of, lambda: hooks.current_phase
            )
            traps.append(trap)

    hooks = PhaseHooks(out, on_end)
    try:
        result = _run(urls, out, progress=hooks)
    finally:
        for t in traps:
            t.close()
    (trap,) = traps
    assert removed, "no node was removed"
    assert trap.phases and Phase.of(str(trap.phases[0])).is_dedup, trap.phases
    assert result.ok, result.failures
    assert output_digest(out) == one_node[1]
    assert manifest_core(out) == manifest_core(one_node[0])
