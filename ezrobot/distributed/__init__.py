"""Scale-out on Ray: self-play actors, reanalyze workers, the replay owner and the learner as separate
processes (``distributed.backend=ray``). The embedded single-process trainer (``ezrobot.trainer``) stays the
default; this package imports Ray only when a distributed run starts.

Modules: ``config`` (the ``distributed`` config group), ``owner`` (the replay and the counters), ``workers``
(self-play actors and reanalyze workers), ``trainer`` (the learner, which also evaluates and checkpoints),
``launch`` (starting or joining Ray and placing the roles).
"""
