"""Reading and writing volumes with their geometry."""

from .meta import META_KEY, VolumeMeta

__all__ = ["META_KEY", "VolumeMeta"]
