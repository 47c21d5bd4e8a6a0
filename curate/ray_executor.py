"""The Ray executor: the same stage objects as the sequential executor, spread over a cluster.

With no address it starts a local cluster sized to the machine (or to ``workers``); with an
address (``--ray-address``, ``RAY_ADDRESS``) it joins a running cluster. Stages become actor
pools (:func:`plan_pools`): the extract stages that run on CPUs are fused into one pool of
workers, each loading every model once; a stage that can use a GPU gets its own pool on the
cluster's GPUs (or on CPUs when asked in ``[ray] own_pool``). Work is spread per clip: the
driver sends small work records, never media; workers read the media from the shared dataset
root and commit their rows themselves, in batches, and all of them when the run ends. A worker killed mid-clip is restarted and its clip
retried; a clip that keeps killing its worker is recorded as ``worker_lost``.
"""

from __future__ import annotations

import functools
import heapq
import math
import os
import re
import socket
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from curate.cores import claim_core
from curate.pipeline import (
    ClipOutcome,
    ClipWork,
    DuplicateInputs,
    ExtractStage,
    Pipeline,
    VideoWork,
    peak_rss_mb,
)
from extractors.base import Resources
from ingest.probe import uri_id
from manifests.schema import error_text
from settings.config import RayConfig
from settings.errors import EnvironmentRefused, one_line

T = TypeVar("T")
R = TypeVar("R")

#: Jobs queued per worker beyond the one it runs, so it never waits for the driver.
QUEUE_PER_WORKER = 1
#: Clips prepared ahead per worker, so a worker that falls idle has one to take.
READY_PER_WORKER = 4
#: Videos open at once per worker (prepared or being prepared, with clips not yet committed).
OPEN_PER_WORKER = 8


@dataclass(frozen=True)
class PoolPlan:
    """One actor pool: the extract stages its workers run and what each worker asks for.

    The first pool of a plan (``main``) also probes, segments and commits.
    """

    stages: tuple[str, ...]
    actors: int
    cpus: float
    gpus: float = 0.0


def plan_pools(
    stages: list[tuple[str, Resources]],
    cluster_cpus: float,
    cluster_gpus: float,
    workers: int | None = None,
    own_pool: Iterable[str] = (),
) -> list[PoolPlan]:
    """Divide the cluster between actor pools; the first is the main pool.

    A stage that declares ``gpus`` gets its own pool when the cluster has GPUs (as many workers
    as the GPUs hold); a stage named in ``own_pool`` gets its own one-worker CPU pool; the
    other stages share the main pool, one worker per remaining CPU (``workers`` caps the CPUs
    used). When the CPUs cannot hold one worker per pool, workers get a fraction of a CPU.
    """
    own = set(own_pool)
    slots = min(float(workers), cluster_cpus) if workers else cluster_cpus
    separate: list[PoolPlan] = []
    for name, res in stages:
        if res.gpus > 0 and cluster_gpus > 0:
            actors = max(1, math.floor(cluster_gpus / res.gpus))
            separate.append(PoolPlan((name,), actors, res.cpus, res.gpus))
        elif name in own:
            separate.append(PoolPlan((name,), 1, res.cpus))
    taken = {n for p in separate for n in p.stages}
    used = sum(p.actors * p.cpus for p in separate)
    main_actors = max(1, math.floor(slots - used))
    main = PoolPlan(tuple(n for n, _ in stages if n not in taken), main_actors, 1.0)
    plans = [main, *separate]
    demand = sum(p.actors * p.cpus for p in plans)
    if demand > slots:
        scale = slots / demand
        plans = [PoolPlan(p.stages, p.actors, p.cpus * scale, p.gpus) for p in plans]
    return plans


def connect_cluster(config: RayConfig) -> None:
    """Join the cluster at ``config.address`` (or ``RAY_ADDRESS``), else start a local one."""
    import ray

    address = cluster_address(config)
    options: dict[str, Any] = {"logging_level": "ERROR", "log_to_driver": False}
    if address:
        _answers(address)
    try:
        if address:
            ray.init(address=address, **options)
        else:
            store = config.object_store_mb
            ray.init(
                address="local",  # a cluster of its own, never one that `ray start` left on this host
                num_cpus=config.workers or os.cpu_count(),
                include_dashboard=False,
                object_store_memory=store * 1024**2 if store else None,
                **options,
            )
    except Exception as exc:  # Ray says "no" in many types (ConnectionError, RuntimeError, TimeoutError...)
        where = f"join the Ray cluster at {address}" if address else "start a local Ray cluster"
        raise ClusterUnavailable(f"could not {where}: {one_line(exc)}") from exc


def cluster_address(config: RayConfig) -> str | None:
    """The cluster to join: ``config.address``, else ``RAY_ADDRESS``; ``None``: start a local one."""
    return config.address or os.environ.get("RAY_ADDRESS") or None


#: Seconds to wait for a named cluster's head to accept a connection (Ray itself retries for minutes).
HEAD_CONNECT_TIMEOUT_S = 10.0


def _answers(address: str) -> None:
    """Raise :class:`ClusterUnavailable` at once when ``address`` (``host:port``, or
    ``ray://host:port``) names a head that accepts no connection; other forms (``auto``) are
    left to Ray."""
    match = re.fullmatch(r"(?:ray://)?\[?([^\[\]/]+?)\]?:(\d+)", address.strip())
    if match is None:
        return
    host, port = match.group(1), int(match.group(2))
    try:
        socket.create_connection((host, port), timeout=HEAD_CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ClusterUnavailable(
            f"could not join the Ray cluster at {address}: nothing accepts a connection there ({exc})"
        ) from None


class ClusterUnavailable(EnvironmentRefused):
    """The Ray cluster named could not be joined, or a local one could not start."""


def node_name() -> str:
    """Where this Ray worker runs: its host and the first 8 characters of its node id."""
    import ray

    return f"{socket.gethostname()}:{ray.get_runtime_context().get_node_id()[:8]}"


def _located(fn: Callable[[T], R], item: T) -> tuple[str, R]:
    """``fn(item)`` with the node that ran it (the body of a :class:`RayMap` task)."""
    return node_name(), fn(item)


class RayMap:
    """A ``map`` that runs ``fn`` on each item as a Ray task of one CPU, yielding results as they
    finish (any order); at most two tasks per CPU are queued, so the items can be a long stream.
    Each call joins or starts the cluster and leaves it at the end. A task whose worker or node
    died is retried by Ray on another (its job must be safe to run twice). ``nodes``: the tasks
    each node finished, over every call."""

    def __init__(self, config: RayConfig) -> None:
        self.config = config
        self.nodes: Counter[str] = Counter()

    def __call__(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        import ray

        connect_cluster(self.config)
        try:
            task: Any = ray.remote(num_cpus=1)(_located)
            limit = 2 * max(1, int(ray.cluster_resources().get("CPU", 1)))
            pending: list[Any] = []
            for item in items:
                pending.append(task.remote(fn, item))
                while len(pending) >= limit:
                    done, pending = ray.wait(pending, num_returns=1)
                    yield self._take(done[0])
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                yield self._take(done[0])
        finally:
            ray.shutdown()

    def _take(self, ref: Any) -> Any:
        import ray

        node, result = ray.get(ref)
        self.nodes[node] += 1
        return result


def ray_map(config: RayConfig) -> RayMap:
    """The ``map`` of independent jobs on ``config``'s cluster (:class:`RayMap`)."""
    return RayMap(config)


def _busy(method: Callable[..., R]) -> Callable[..., R]:
    """Count the wall seconds a worker spends in ``method`` in its ``busy_s``."""

    @functools.wraps(method)
    def timed(self: StageWorker, *args: Any, **kwargs: Any) -> R:
        started = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            self.busy_s += time.perf_counter() - started

    return timed


class StageWorker:
    """One worker process of a pool: the pipeline plus the extract stages it runs, set up once."""

    def __init__(self, pipeline: Pipeline, stages: tuple[str, ...], pin_core: bool):

        if pin_core:
            claim_core()  # before any model starts its threads
        self.busy_s = 0.0  # wall seconds spent in jobs
        self.pipeline = pipeline
        self.stages: list[ExtractStage] = [s for s in pipeline.clip_stages if s.name in stages]
        for stage in self.stages:
            stage.setup()
        self.node = node_name()

    @_busy
    def prepare(self, work: VideoWork) -> VideoWork:
        return self.pipeline.prepare(work)

    @_busy
    def extract(self, work: ClipWork) -> ClipWork:
        return self._extract(work)

    def _extract(self, work: ClipWork) -> ClipWork:
        for stage in self.stages:
            work = stage(work)
        return work

    @_busy
    def run_clip(self, work: ClipWork, upstream: list[tuple[tuple[str, ...], Any]]) -> ClipOutcome:
        """Run this worker's stages, merge what other pools computed (``upstream``: their stage
        names and result refs), commit the clip."""
        import ray
        from ray.exceptions import RayActorError, WorkerCrashedError

        work = self._extract(work)
        for names, ref in upstream:
            try:
                work.merge(ray.get(ref), names)
            except (RayActorError, WorkerCrashedError) as exc:
                self._lost(work, names, _lost(exc))
        return self.pipeline.commit_clip(work, self.node)

    @_busy
    def commit_lost(self, work: ClipWork, stages: tuple[str, ...], detail: str) -> ClipOutcome:
        """Commit a clip whose extraction kept killing its worker, with ``worker_lost`` recorded."""
        return self.pipeline.commit_clip(self._lost(work, stages, detail), self.node)

    def _lost(self, work: ClipWork, stages: tuple[str, ...], detail: str) -> ClipWork:
        for stage in self.pipeline.clip_stages:
            if stage.name in stages:
                stage.fail(work, "worker_lost", detail)
        return work

    @_busy
    def commit_video(self, work: VideoWork) -> VideoWork:
        return self.pipeline.commit_video(work)

    @_busy
    def flush(self) -> str | None:
        return self.pipeline.flush()

    def stats(self) -> tuple[float, float]:
        """Peak resident memory (MiB) and seconds spent in jobs so far."""
        return peak_rss_mb(), self.busy_s


class NodeLost(EnvironmentRefused, RuntimeError):
    """A worker of the run became unreachable: its node left the cluster (or the network to it
    failed). The run stops; what was committed stays, and the same command resumes."""


#: Seconds every worker of a run has to start and load its models.
STARTUP_TIMEOUT_S = 300


def _started(actors: list[Any]) -> None:
    """Wait until every worker has its models loaded; raise :class:`NodeLost` when some could not
    start in :data:`STARTUP_TIMEOUT_S` (the cluster still counts the CPUs of a node that left)."""
    import ray

    refs = [a.stats.remote() for a in actors]
    ready, waiting = ray.wait(refs, num_returns=len(refs), timeout=STARTUP_TIMEOUT_S)
    if waiting:
        raise NodeLost(
            f"{len(waiting)} of {len(refs)} workers did not start in {STARTUP_TIMEOUT_S} s: the cluster "
            "counts CPUs it cannot place them on (a node that left and is not yet marked dead?); "
            "run the same command again once `ray status` shows the nodes that are up"
        )
    ray.get(ready)


#: Seconds a worker has to commit the finished clips it holds when a run stops.
FLUSH_TIMEOUT_S = 300


def _flush(actors: list[Any]) -> None:
    """Have every reachable worker commit the finished clips it holds. A worker that cannot be
    reached (its node gone) is passed over: its clips were not committed, and a rerun redoes them.
    Raises :class:`NodeLost` after the others have committed when one was passed over."""
    import ray
    from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError

    refs = [a.flush.remote() for a in actors]
    unreachable = 0
    for ref in refs:
        try:
            ray.get(ref, timeout=FLUSH_TIMEOUT_S)
        except (ActorUnavailableError, GetTimeoutError):
            unreachable += 1
        except RayActorError:
            continue  # a worker process that died and was restarted holds nothing
    if unreachable:
        raise NodeLost(
            f"{unreachable} worker(s) of the run could not be reached when it ended (a node left the "
            "cluster?): the clips they held were not committed; run the same command again to redo them"
        )


def _lost(exc: BaseException) -> str:
    return f"its worker process died on it, retries exhausted ({type(exc).__name__})"


class _Pool:
    """Actors of one pool, each with a count of the jobs sent to it and not yet finished, and of
    the clips among them."""

    def __init__(self, actors: list[Any]):
        self.actors = actors
        self.load = [0] * len(actors)
        self.clips = [0] * len(actors)

    def least_loaded(self) -> int:
        return min(range(len(self.actors)), key=self.load.__getitem__)

    def free(self, clip: bool) -> int | None:
        """The least-loaded actor that can take one more job without it waiting behind more
        than ``QUEUE_PER_WORKER`` others, and, for a clip, that runs no clip already (a clip
        queued behind another could not move to a worker that falls idle); ``None``: none can."""
        room = [i for i, n in enumerate(self.load) if n <= QUEUE_PER_WORKER and not (clip and self.clips[i])]
        return min(room, key=self.load.__getitem__, default=None)

    def submit(self, index: int, clip: bool, method: str, *args: Any) -> Any:
        self.load[index] += 1
        self.clips[index] += clip
        return getattr(self.actors[index], method).remote(*args)

    def done(self, index: int, clip: bool) -> None:
        self.load[index] -= 1
        self.clips[index] -= clip


class RayExecutor:
    """Run a pipeline on Ray: a local cluster by default, or the cluster at ``config.address``."""

    name = "ray"

    def __init__(self, config: RayConfig):
        self.config = config
        address = cluster_address(config)
        if address:
            _answers(address)  # before the run writes anything: a head that is not there is named at once
        self._peak_rss_mb = 0.0
        self.pools: list[PoolPlan] = []
        self.startup_s = 0.0  # seconds to start or join the cluster and load every worker's models
        self.shutdown_s = 0.0  # seconds from the last video done to the cluster stopped
        self.busy_share: float | None = None  # share of the time in between that workers spent in jobs

    def run(self, pipeline: Pipeline, works: Iterable[VideoWork]) -> Iterator[VideoWork]:
        import ray

        started = time.perf_counter()
        ending: float | None = None  # when the last video was done
        connect_cluster(self.config)
        try:
            cluster = ray.cluster_resources()
            self.pools = plan_pools(
                [(s.name, s.resources) for s in pipeline.clip_stages],
                cluster.get("CPU", 0.0),
                cluster.get("GPU", 0.0),
                self.config.workers,
                self.config.own_pool,
            )
            remote = ray.remote(StageWorker)
            pools = [
                _Pool(
                    [
                        remote.options(  # type: ignore[attr-defined]
                            num_cpus=plan.cpus,
                            num_gpus=plan.gpus,
                            max_restarts=-1,
                            max_task_retries=self.config.task_retries,
                        ).remote(pipeline, plan.stages, self.config.pin_cores and plan.cpus == 1)
                        for _ in range(plan.actors)
                    ]
                )
                for plan in self.pools
            ]
            try:
                _started([a for pool in pools for a in pool.actors])
                self.startup_s = time.perf_counter() - started
                yield from _Scheduler(pipeline, pools, self.pools).run(works)
                stats = ray.get([a.stats.remote() for pool in pools for a in pool.actors])
                span = time.perf_counter() - started - self.startup_s
                self._peak_rss_mb = max(rss for rss, _ in stats)
                self.busy_share = sum(busy for _, busy in stats) / len(stats) / span
            finally:
                ending = time.perf_counter()
                # The main pool's workers hold finished clips: commit them, also when stopped early.
                _flush(pools[0].actors)
                for pool in pools:
                    for actor in pool.actors:
                        ray.kill(actor)
        finally:
            ray.shutdown()
            if ending is not None:
                self.shutdown_s = time.perf_counter() - ending

    def peak_worker_rss_mb(self) -> float:
        return self._peak_rss_mb


@dataclass
class _Open:
    """A video whose clips are in flight (``remaining`` is -1 until it is prepared)."""

    work: VideoWork
    remaining: int


@dataclass
class _Job:
    """A job sent to a main-pool worker: which video (``key``), which clip, which queue slots."""

    method: str
    key: int
    clip: ClipWork | None = None
    slots: list[tuple[_Pool, int]] = field(default_factory=list)  # (pool, actor index) it occupies

    @property
    def extracts(self) -> bool:
        """Whether the job runs the extractors (the long jobs; the others probe or commit)."""
        return self.method == "run_clip"


class _Scheduler:
    """The driver loop: keeps every worker busy with video commits first, then clips, longest
    first, then new videos to prepare.

    A worker runs one clip at a time with at most one short job (prepare, commit) queued behind
    it, so a worker that falls idle always finds the next clip still unassigned, and the run
    ends with both workers busy until close to the end. Videos are prepared ahead until
    ``READY_PER_WORKER`` clips per worker wait, so the longest of them can go first. At most
    ``OPEN_PER_WORKER x workers`` videos are open at once, so the driver's memory does not grow
    with the number of inputs; it holds only work records and clip outcomes.
    """

    def __init__(self, pipeline: Pipeline, pools: list[_Pool], plans: list[PoolPlan]):
        self.pipeline = pipeline
        self.main, self.others = pools[0], list(zip(plans[1:], pools[1:], strict=True))
        self.duplicates = DuplicateInputs()
        self.ready: list[tuple[float, int, int, ClipWork]] = []  # heap: -duration, order, video key, clip
        self.queued = 0  # clips put in ``ready`` so far (their order among equals)
        self.inputs: Iterator[VideoWork] | None = None  # the videos not yet opened; None: no more
        self.commits: deque[int] = deque()
        self.open: dict[int, _Open] = {}
        self.opened = 0
        self.preparing = 0
        self.inflight: dict[Any, _Job] = {}

    def run(self, works: Iterable[VideoWork]) -> Iterator[VideoWork]:
        import ray

        self.inputs = iter(works)
        while True:
            while self._send_one():
                pass
            if not self.inflight:
                return
            (ref,), _ = ray.wait(list(self.inflight), num_returns=1)
            job = self.inflight.pop(ref)
            for pool, index in job.slots:
                pool.done(index, job.extracts)
            done = self._finish(job, ref)
            if done is not None:
                yield done

    def _send_one(self) -> bool:
        """Send the most urgent job a worker can take now; whether there was one."""
        workers = len(self.main.actors)
        if self.commits and (index := self.main.free(clip=False)) is not None:
            key = self.commits.popleft()
            self._submit(_Job("commit_video", key), self.open[key].work, index=index)
        elif self.ready and (index := self.main.free(clip=True)) is not None:
            _, _, key, clip = heapq.heappop(self.ready)
            self._submit_clip(key, clip, index)
        elif (
            self.inputs is not None
            and len(self.ready) + self.preparing < READY_PER_WORKER * workers
            and len(self.open) < OPEN_PER_WORKER * workers
            and (index := self.main.free(clip=False)) is not None
        ):
            work = next(self.inputs, None)
            if work is None:
                self.inputs = None
                return True
            self.opened += 1
            self.open[self.opened] = _Open(work, -1)
            self.preparing += 1
            self._submit(_Job("prepare", self.opened), work, index=index)
        else:
            return False
        return True

    def _submit(self, job: _Job, *args: Any, index: int | None = None) -> None:
        """Send ``job`` to main-pool worker ``index`` (the least loaded when ``None``)."""
        index = self.main.least_loaded() if index is None else index
        ref = self.main.submit(index, job.extracts, job.method, *args)
        job.slots.append((self.main, index))
        self.inflight[ref] = job

    def _submit_clip(self, key: int, clip: ClipWork, index: int) -> None:
        """Send the clip to the other pools first; main-pool worker ``index`` merges their
        results and commits."""
        job, upstream = _Job("run_clip", key, clip), []
        for plan, pool in self.others:
            other = pool.least_loaded()
            upstream.append((plan.stages, pool.submit(other, True, "extract", clip)))
            job.slots.append((pool, other))
        self._submit(job, clip, upstream, index=index)

    def _finish(self, job: _Job, ref: Any) -> VideoWork | None:
        """Take a finished job's result; returns the video when it is committed."""
        import ray
        from ray.exceptions import ActorUnavailableError, RayActorError, WorkerCrashedError

        try:
            result = ray.get(ref)
        except ActorUnavailableError as exc:  # its node is gone: the clip is not the cause
            raise NodeLost(
                f"a worker of the run became unreachable (a node left the cluster?) during {job.method}: "
                f"the run stops; every committed clip is kept, and the same command finishes the rest ({exc.__class__.__name__})"
            ) from exc
        except (RayActorError, WorkerCrashedError) as exc:
            if job.method == "run_clip":
                stages = tuple(s.name for s in self.pipeline.clip_stages)
                self._submit(_Job("commit_lost", job.key), job.clip, stages, _lost(exc))
                return None
            if job.method != "prepare":
                raise
            result = _video_lost(self.open[job.key].work, _lost(exc))
        if job.method == "prepare":
            work = self.duplicates.check(result)
            clips = self.pipeline.pending_clips(work)
            self.preparing -= 1
            self.open[job.key] = _Open(work, len(clips))
            for clip in clips:
                self.queued += 1
                heapq.heappush(self.ready, (-float(clip.clip["duration_s"]), self.queued, job.key, clip))
            if not clips:
                self.commits.append(job.key)
        elif job.method in ("run_clip", "commit_lost"):
            entry = self.open[job.key]
            entry.work.outcomes.append(result)
            entry.remaining -= 1
            if entry.remaining == 0:
                self.commits.append(job.key)
        else:
            del self.open[job.key]
            return result
        return None


def _video_lost(work: VideoWork, detail: str) -> VideoWork:
    """The record of a video whose probe or segmentation kept killing its worker."""
    work.video = {
        "uri": work.uri,
        "source_tags": work.tags,
        "run_id": work.run_id,
        "video_id": uri_id(work.uri),
        "errors": {"segment": error_text("worker_lost", f"{Path(work.uri).name}: {detail}")},
        "n_clips": 0,
    }
    work.fatal = True
    return work
