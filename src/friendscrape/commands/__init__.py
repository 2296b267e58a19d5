"""Each command's work, given Settings: one module per command. The CLI parses arguments
and calls these; nothing here parses arguments or decides the process's exit."""
