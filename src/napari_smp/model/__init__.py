"""napari_smp.model"""

__all__: list[str] = []
