"""Cluster execution: the profiles build the DAG, and the workflow runs through a real SLURM.

The SLURM test starts a one-node SLURM cluster on this machine (Debian's slurm-wlm and munge,
installed with apt-get when missing; needs root), runs `snakemake --profile profiles/slurm` on
configs/test.yaml, and checks that every job went through sbatch and that the results equal a
local run's. It skips only where the scheduler cannot be installed or started (no apt-get, not
root, no network for apt, daemons refusing to start); set MP2V_REQUIRE_SLURM=1 to make those
cases fail instead. Every daemon it starts runs in the foreground as its child and is stopped
by process id at the end of the session; all state lives in a pytest temporary directory.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from snakemake_runner import snakemake

ROOT = Path(__file__).resolve().parents[1]
TEST_CONFIG = ROOT / "configs/test.yaml"
PROFILES = sorted(p.parent.name for p in (ROOT / "profiles").glob("*/config.yaml"))
SLURM_TOOLS = ["slurmctld", "slurmd", "munged", "sbatch", "srun", "squeue", "sinfo", "scancel"]
PARTITION = "mp2v4rec"
# Everything configs/test.yaml defines, so every rule runs once under SLURM.
TARGETS = ["all"]


# --- dry runs: every profile builds the DAG (no scheduler needed) ---------------------------


@pytest.mark.slow
@pytest.mark.parametrize("profile", PROFILES)
def test_profile_dry_run_builds_dag(profile, tmp_path):
    proc = snakemake(
        tmp_path,
        "all",
        "-n",
        "--profile",
        str(ROOT / "profiles" / profile),
        "--configfile",
        str(TEST_CONFIG),
        timeout=300,
    )
    log = proc.stdout + proc.stderr
    assert "Job stats:" in log and "This was a dry-run" in log, log[-3000:]
    assert "metrics_table" in log


def test_slurm_and_default_profiles_exist():
    assert {"default", "slurm"} <= set(PROFILES)


@pytest.mark.slow
def test_slurm_profile_passes_rule_resources(tmp_path):
    """Threads, mem_mb and runtime come from the rules; partition/account from SBATCH_*."""
    env = {**os.environ, "SBATCH_PARTITION": "somepart"}
    env.pop("SBATCH_ACCOUNT", None)
    proc = snakemake(
        tmp_path,
        "all",
        "-n",
        "--profile",
        str(ROOT / "profiles/slurm"),
        "--configfile",
        str(TEST_CONFIG),
        env=env,
        timeout=300,
    )
    log = proc.stdout + proc.stderr
    resources = {}
    for rule, line in re.findall(r"^rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", log, re.M):
        resources[rule] = dict(item.split("=", 1) for item in line.split(", "))
    assert {"train", "evaluate", "metrics_table"} <= set(resources), sorted(resources)
    for rule, res in resources.items():
        assert res["slurm_partition"] == "somepart" and res["slurm_account"] == "", (rule, res)
        # input-size-scaled values show as <TBD> until the inputs exist
        assert res["mem_mb"] and res["runtime"], (rule, res)
    # rules with their own runtime keep it; the profile's runtime=30 only fills the gaps
    assert {r["runtime"] for r in resources.values()} - {"30"}, resources


# --- a real one-node SLURM cluster ----------------------------------------------------------


def _unavailable(reason):
    if os.environ.get("MP2V_REQUIRE_SLURM"):
        pytest.fail(f"SLURM required (MP2V_REQUIRE_SLURM) but: {reason}")
    pytest.skip(reason)


def _tail(path, n=3000):
    try:
        return Path(path).read_text(errors="replace")[-n:]
    except OSError:
        return ""


def _install_slurm():
    """apt-get install slurm-wlm munge when any tool is missing; returns a reason on failure."""
    missing = [t for t in SLURM_TOOLS if shutil.which(t) is None]
    if not missing:
        return None
    if shutil.which("apt-get") is None:
        return f"SLURM tools {missing} missing and apt-get is not available"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    steps = [
        (["apt-get", "update", "-qq"], 300),
        (["apt-get", "install", "-y", "-qq", "--no-install-recommends", "slurm-wlm", "munge"], 900),
    ]
    for cmd, timeout in steps:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            return f"`{' '.join(cmd)}` timed out after {timeout} s"
        if proc.returncode != 0:
            return f"`{' '.join(cmd)}` failed: {proc.stderr.strip()[-800:]}"
    missing = [t for t in SLURM_TOOLS if shutil.which(t) is None]
    return f"still missing after apt-get install: {missing}" if missing else None


def _free_ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _real_memory_mb():
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            total = int(line.split()[1]) // 1024
            return max(total - min(4096, total // 4), 1024)
    return 4096


def _slurm_conf(base, host, ctld_port, slurmd_port):
    return f"""\
# one-node test cluster written by tests/test_slurm.py; no accounting, no cgroups
ClusterName=mp2v4rectest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={base}/munge/munge.socket
StateSaveLocation={base}/state
SlurmdSpoolDir={base}/spool
SlurmctldPidFile={base}/slurmctld.pid
SlurmdPidFile={base}/slurmd.pid
SlurmctldLogFile={base}/log/slurmctld.log
SlurmdLogFile={base}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
SlurmdParameters=config_overrides
MinJobAge=900
KillWait=5
InactiveLimit=0
NodeName={host} NodeAddr=127.0.0.1 CPUs=2 RealMemory={_real_memory_mb()} State=UNKNOWN
PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def _stop(proc, name, timeout=20):
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    if not sys.platform.startswith("linux"):
        _unavailable("the SLURM test needs Linux")
    if os.geteuid() != 0:
        _unavailable("the SLURM test installs and starts slurmctld/slurmd/munged: needs root")
    reason = _install_slurm()
    if reason:
        _unavailable(reason)

    base = tmp_path_factory.mktemp("slurm")
    base.chmod(0o700)
    for sub in ("munge", "state", "spool", "log", "bin"):
        (base / sub).mkdir()
        (base / sub).chmod(0o700)
    host = socket.gethostname().split(".")[0]
    conf = base / "slurm.conf"
    conf.write_text(_slurm_conf(base, host, *_free_ports(2)))
    # A private munge key and socket: nothing under /etc or /run is touched.
    key = base / "munge/munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    # snakemake-executor-plugin-slurm-jobstep removes every SLURM_* variable, SLURM_CONF
    # included, before its inner `srun`; a cluster whose slurm.conf is not at the default
    # path then cannot be found. This wrapper puts SLURM_CONF back for srun.
    srun = base / "bin/srun"
    srun.write_text(f'#!/bin/sh\nSLURM_CONF="{conf}" exec {shutil.which("srun")} "$@"\n')
    srun.chmod(0o755)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_"))},
        "SLURM_CONF": str(conf),
        "PATH": f"{base / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    }

    daemons = []

    def start(name, cmd):
        out = open(base / f"log/{name}.out", "wb")
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        out.close()
        daemons.append((name, proc))
        return proc

    def fail(what):
        logs = "\n".join(
            f"--- {p.name}:\n{_tail(p, 1500)}" for p in sorted((base / "log").glob("*"))
        )
        _unavailable(f"{what}; logs in {base}/log:\n{logs}")

    def wait_for(check, seconds, what):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if check():
                return
            dead = [n for n, p in daemons if p.poll() is not None]
            if dead:
                fail(f"{', '.join(dead)} exited while waiting for {what}")
            time.sleep(0.5)
        fail(f"timed out after {seconds} s waiting for {what}")

    def node_state():
        try:
            proc = subprocess.run(
                ["sinfo", "-h", "-n", host, "-o", "%t"],
                capture_output=True,
                text=True,
                env=env,
                timeout=10,
            )
        except subprocess.TimeoutExpired:
            return ""
        return proc.stdout.strip()

    try:
        start(
            "munged",
            [
                "munged",
                "--foreground",
                "--force",
                f"--key-file={key}",
                f"--socket={base}/munge/munge.socket",
                f"--pid-file={base}/munge/munged.pid",
                f"--log-file={base}/log/munged.log",
                f"--seed-file={base}/munge/munged.seed",
            ],
        )
        wait_for(lambda: (base / "munge/munge.socket").exists(), 20, "the munge socket")
        start("slurmctld", ["slurmctld", "-D", "-f", str(conf)])
        wait_for(lambda: node_state() != "", 60, "slurmctld to answer sinfo")
        start("slurmd", ["slurmd", "-D", "-f", str(conf), "-N", host])
        wait_for(lambda: node_state() == "idle", 90, f"node {host} to become idle")
        yield SimpleNamespace(env=env, conf=conf, base=base, host=host)
    finally:
        if any(n == "slurmctld" and p.poll() is None for n, p in daemons):
            # Cancel whatever is left of our jobs (this controller only knows ours) and give
            # slurmd the chance to clean up their steps before it stops.
            subprocess.run(["scancel", "--partition", PARTITION], env=env, timeout=30, check=False)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                out = subprocess.run(
                    ["squeue", "-h", "-t", "PD,R,CG", "-o", "%i"],
                    capture_output=True,
                    text=True,
                    env=env,
                    timeout=10,
                ).stdout
                if not out.strip():
                    break
                time.sleep(1)
        for name, proc in reversed(daemons):
            _stop(proc, name)


def _submissions(workdir):
    """(snakemake job id, SLURM job id) pairs, and the rules of the jobs that were submitted."""
    logs = sorted((workdir / ".snakemake/log").glob("*.snakemake.log"))
    assert logs, "no snakemake log"
    text = logs[-1].read_text()
    submitted = re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", text)
    # "rule x:" opens a job that is submitted, "localrule x:" one that runs in snakemake itself
    remote_rules = re.findall(r"^rule (\w+):$", text, flags=re.M)
    return submitted, remote_rules


@pytest.mark.slow
@pytest.mark.slurm
def test_workflow_runs_through_slurm(slurm_cluster, tmp_path):
    local, cluster = tmp_path / "local", tmp_path / "slurm"
    snakemake(local, *TARGETS, "--cores", "2", "--configfile", str(TEST_CONFIG))

    started = time.monotonic()
    snakemake(
        cluster,
        *TARGETS,
        "--profile",
        str(ROOT / "profiles/slurm"),
        # check job states every few seconds rather than the profile's cluster-friendly 20 s
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--slurm-keep-successful-logs",
        "--configfile",
        str(TEST_CONFIG),
        env=slurm_cluster.env,
        timeout=1200,
    )
    elapsed = time.monotonic() - started

    submitted, remote_rules = _submissions(cluster)
    slurm_ids = [slurm_id for _, slurm_id in submitted]
    # every job that is not a localrule went through sbatch (a retry is a second submission)
    assert remote_rules and len(submitted) == len(remote_rules), (submitted, remote_rules)
    assert len(set(slurm_ids)) == len(slurm_ids)
    for rule in ("synthesize_kuairec", "preprocess_kuairec", "train", "evaluate"):
        assert rule in remote_rules, rule
    # fanned-out stages are separate SLURM jobs (two per walk set / run); their merges local
    for rule in ("walk_shard", "recommend"):
        assert remote_rules.count(rule) % 2 == 0 and remote_rules.count(rule) > 2, rule
    assert "merge_recs" not in remote_rules and "walk_corpus" not in remote_rules
    # SLURM knows these jobs (MinJobAge keeps finished jobs visible to squeue), and each
    # snakemake job has exactly one completed SLURM job
    states = subprocess.run(
        ["squeue", "-h", "-t", "all", "-o", "%i|%T"],
        capture_output=True,
        text=True,
        env=slurm_cluster.env,
        timeout=30,
        check=True,
    ).stdout
    state_of = dict(line.split("|") for line in states.split())
    completed = [job for job, slurm_id in submitted if state_of.get(slurm_id) == "COMPLETED"]
    assert sorted(completed) == sorted({job for job, _ in submitted}), (submitted, state_of)
    # sbatch's own logs, one per job, named by its SLURM job id
    slurm_logs = {p.stem for p in (cluster / ".snakemake/slurm_logs").rglob("*.log")}
    assert set(slurm_ids) <= slurm_logs, (slurm_ids, slurm_logs)

    # same results as the local run, to the byte (configs/test.yaml trains single-threaded)
    rel = "results/tiny/tables/metrics.tsv"
    assert (cluster / rel).read_bytes() == (local / rel).read_bytes()
    local_metrics = sorted(
        p.relative_to(local) for p in local.glob("results/tiny/metrics/**/*.tsv")
    )
    assert local_metrics
    for path in local_metrics:
        assert (cluster / path).read_bytes() == (local / path).read_bytes(), path
    print(f"SLURM run: {len(slurm_ids)} sbatch jobs in {elapsed:.0f} s")
