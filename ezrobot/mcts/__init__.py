"""ezrobot."""
