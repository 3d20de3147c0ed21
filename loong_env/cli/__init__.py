"""Every `loong` command and the options they share; the library never imports this package."""

from loong_env.cli.main import main

__all__ = ["main"]
