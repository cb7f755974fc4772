"""The COCO library with notes, built once for every search test that needs it."""

from __future__ import annotations

import pytest

from tests.search import coco as coco_library


@pytest.fixture(scope="package")
def coco(tmp_path_factory, tiny_clip_dir, text_model_cache):
    """(catalog, files, captions) of the COCO photos with caption 1 as note; tests copy it to change it."""
    if not coco_library.AVAILABLE:
        pytest.skip("needs shared COCO data")
    return coco_library.build(tmp_path_factory.mktemp("coco"), tiny_clip_dir)
