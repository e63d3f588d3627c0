"""nerbatch: batch named-entity recognition with Dask, Keras and Prefect."""

__version__ = "0.1.0"
