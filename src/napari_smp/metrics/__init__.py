"""napari_smp.metrics"""

__all__: list[str] = []
