"""napari_smp._widgets"""

__all__: list[str] = []
