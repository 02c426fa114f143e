"""The ``ezrobot`` sub-commands: each module parses its arguments and calls the library (``main(args) -> exit
status``). Nothing below this package imports it."""

COMMANDS = ("train", "eval", "video", "bench", "tasks")
