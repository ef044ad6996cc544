"""napari_smp.engine"""

__all__: list[str] = []
