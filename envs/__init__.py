"""Environment adapters: ``make_env(task, cfg, seed=, train=) -> (env, EnvSpec)``."""
from .spec import EnvConfig, EnvError, EnvSpec

__all__ = ["EnvConfig", "EnvError", "EnvSpec"]
