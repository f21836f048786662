"""The subcommands of ``airwater``, one module per job: each adds its parser (``add_parser``)
next to the handler that runs it; ``airwater.cli`` puts them together."""
