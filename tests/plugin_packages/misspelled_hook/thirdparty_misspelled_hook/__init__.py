"""A plugin whose hook name is misspelled: it would silently never run without check_pending()."""
import omnipipe


@omnipipe.hookimpl
def omnipipe_regster(registry: omnipipe.Registry) -> None:
    raise AssertionError("never called")
