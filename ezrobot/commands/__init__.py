"""The ``ezrobot`` sub-commands: each module parses its arguments and calls the library (``main(args) -> exit
status``). Nothing below this package imports it."""

COMMANDS = ("train", "finetune", "eval", "video", "bench", "tasks")
