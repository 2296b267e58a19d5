"""Each command's work, given Settings: one module, or one package, per command. The CLI
parses arguments and calls these; nothing here parses arguments or decides the process's
exit. A command's options are a light module of their own (``run/options.py``,
``export_options.py``) that the CLI mounts for every command line, so they import nothing
heavy; its work (``run/command.py``, ``export.py``) is imported only when it runs. A
command's helpers live in its package (``run/progressbar.py``, ``status/table.py``);
``progress/`` is not a command but the read model of a job's progress that ``status``,
``estimate`` and ``report`` share."""
