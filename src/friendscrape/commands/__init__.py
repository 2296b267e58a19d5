"""Each command's work, given Settings: one module, or one package, per command. The CLI
parses arguments and calls these; nothing here parses arguments or decides the process's
exit. A command's helpers live in its package (``run/progressbar.py``,
``status/table.py``); ``progress/`` is not a command but the read model of a job's
progress that ``status``, ``estimate`` and ``report`` share."""
