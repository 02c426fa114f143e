"""Adaptation: a run initialised from another run's checkpoint (``init_from``), its parts reused, frozen or
trained at their own learning rates, and the source's replay reused with relabelled rewards."""
