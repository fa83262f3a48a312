"""Integrations with other frameworks; each submodule imports its framework, nothing here does.

``bindu_storage.integrations.bindu`` runs an unchanged upstream Bindu agent server on
bindu-storage (``pip install 'bindu-storage[bindu]'``, Python >= 3.12).
"""
