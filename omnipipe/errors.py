"""User-facing errors: each renders as one clear line (the CLI prints it without a traceback)."""


class OmnipipeError(Exception):
    """Base class of every error caused by user input (a spec, a plugin, a file)."""


class SpecError(OmnipipeError):
    """A spec file that cannot be read or does not validate."""


class PluginError(OmnipipeError):
    """A plugin that cannot be imported, fails its hook, or registers something invalid."""


class RegistryError(OmnipipeError):
    """A component lookup or registration that cannot be honoured."""
