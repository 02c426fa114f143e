"""Start or join Ray and place the roles of a distributed run: the replay owner (no CPU reserved: it only
answers calls), the self-play actors and the reanalyze workers (one CPU each). Actors and workers are
restarted by Ray when their process dies, and the call they were running is retried on the new process."""
from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass, field
from typing import Any, List

from ezrobot.config import Config, ConfigError, Derived, start_transitions
from ezrobot.distributed.owner import ReplayOwner
from ezrobot.distributed.workers import ReanalyzeWorker, SelfPlayWorker
from ezrobot.envs.spec import EnvSpec
from ezrobot.factory import replay_kwargs
from ezrobot.replay.config import ReplayConfig


def import_ray():
    """The ``ray`` module, or a one-line error naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise ConfigError("distributed=ray needs Ray, which is not installed; pip install 'ezrobot[ray]'") from None
    return ray


def connect(cfg: Config) -> bool:
    """Join ``distributed.address`` or start a local Ray instance with one CPU per actor and reanalyze worker
    (at least 2). Returns True when this call started Ray (the run then shuts it down)."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    d = cfg.distributed
    check_address(d.address)
    options = {"include_dashboard": False, "logging_level": "ERROR", "configure_logging": True}
    try:
        if d.address:
            ray.init(address=d.address, **options)
        else:  # Ray starts workers at niceness 15: on an oversubscribed machine the learner then starves them
            os.environ.setdefault("RAY_worker_niceness", "0")
            ray.init(num_cpus=max(2, d.num_actors + d.num_reanalyzers), **options)
    except ConnectionError as err:
        raise ConfigError(f"distributed.address={d.address!r}: no Ray cluster there ({err}); start one with "
                          "`ray start --head` or leave the address empty for a local instance") from None
    return True


def check_address(address: str) -> None:
    """A ``HOST:PORT`` address must accept a connection within 5 s (Ray itself retries for minutes)."""
    if not address or address == "auto":
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"distributed.address={address!r} is not allowed; use auto or HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as err:
        raise ConfigError(f"distributed.address={address!r}: no Ray cluster there ({err}); start one with "
                          "`ray start --head` or leave the address empty for a local instance") from None


@dataclass
class Roles:
    """Handles of a distributed run's Ray actors.

    Attributes:
        owner: The replay owner.
        actors: The self-play actors.
        reanalyzers: The reanalyze workers.
        actor_runs: The ``run`` calls of the actors (done when the budget is spent).
    """

    owner: Any
    actors: List[Any] = field(default_factory=list)
    reanalyzers: List[Any] = field(default_factory=list)
    actor_runs: List[Any] = field(default_factory=list)

    def shutdown(self) -> None:
        """Kill every role (their processes end; nothing they hold is needed after a checkpoint)."""
        ray = import_ray()
        for handle in self.actors + self.reanalyzers + [self.owner]:
            try:
                ray.kill(handle, no_restart=True)
            except Exception as err:  # noqa: BLE001 - a role already gone: nothing left to stop
                print(f"ezrobot: warning: {err}", file=sys.stderr)


def start_owner(cfg: Config, spec: EnvSpec, derived: Derived, replay_cfg: ReplayConfig) -> Roles:
    """The replay owner, sized for every actor's environments."""
    ray = import_ray()
    d = cfg.distributed
    owner_cls = ray.remote(num_cpus=0, max_restarts=0)(ReplayOwner)
    owner = owner_cls.remote(replay_cfg, spec, replay_kwargs(cfg, spec, cfg.train.num_envs * d.num_actors),
                             cfg.train.num_envs, derived.agent_steps, start_transitions(cfg),
                             cfg.train.replay_ratio, d.lead(cfg.train.num_envs), cfg.seed + 3)
    return Roles(owner)


def start_workers(roles: Roles, cfg: Config, derived: Derived) -> None:
    """Create the reanalyze workers and the self-play actors, and start the actors' collection."""
    ray = import_ray()
    restartable = {"num_cpus": 1, "max_restarts": -1, "max_task_retries": -1}
    reanalyzer_cls = ray.remote(**restartable)(ReanalyzeWorker)
    actor_cls = ray.remote(**restartable)(SelfPlayWorker)
    roles.reanalyzers = [reanalyzer_cls.remote(cfg, derived, i, roles.owner)
                         for i in range(cfg.distributed.num_reanalyzers)]
    roles.actors = [actor_cls.remote(cfg, derived, i, roles.owner) for i in range(cfg.distributed.num_actors)]
    roles.actor_runs = [actor.run.remote() for actor in roles.actors]
